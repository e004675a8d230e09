"""Seeded mutations of saved model directories, and the verdict of loading each one.

Reliability plan check 4: corrupt every file of a saved model in the ways disks, copies
and attackers do -- flipped bytes, truncation, appended garbage, swapped or missing
files, links -- and, because a checksum catches all of those, also *re-signed* edits an
attacker who can write the directory would make: arrays with NaN, infinite or
out-of-range values, another dtype or shape, missing or extra arrays, config values of
the wrong type or out of bounds, broken manifests and id tables. Each mutated directory
must be refused with a :class:`~lmrec.errors.ModelFileError`, or load into a model that
answers sanely; a traceback or a silently wrong answer (NaN scores, empty lists for a
known user) is a failure.

Used by ``tests/models/test_mutations.py`` (a few hundred in CI) and
``benchmarks/model_mutations.py`` (thousands, every registered model).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.errors import ModelFileError
from lmrec.models.capabilities import FoldInModel, supports
from lmrec.models.files import MANIFEST, sha256_file

__all__ = ["Verdict", "check_loads", "mutate", "resign"]


@dataclass(frozen=True)
class Verdict:
    """What loading a mutated directory did."""

    mutation: str
    outcome: str  # "refused", "loaded", "traceback" or "wrong"
    seconds: float
    detail: str = ""


def resign(model_dir: Path) -> None:
    """Recompute every checksum in the manifest, as an attacker with write access would."""
    mfile = model_dir / MANIFEST
    manifest = json.loads(mfile.read_text())
    manifest["files"] = {
        f: sha256_file(model_dir / f) for f in manifest["files"] if (model_dir / f).is_file()
    }
    mfile.write_text(json.dumps(manifest))


def _files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.iterdir() if p.is_file())


# ---------------------------------------------------------------- raw (unsigned) damage
def _flip(d: Path, rng: np.random.Generator) -> str:
    f = _files(d)[rng.integers(len(_files(d)))]
    data = bytearray(f.read_bytes())
    if not data:
        return f"flip {f.name} (empty)"
    i = int(rng.integers(len(data)))
    data[i] ^= 1 << int(rng.integers(8))
    f.write_bytes(bytes(data))
    return f"flip a bit of {f.name} at {i}"


def _truncate(d: Path, rng: np.random.Generator) -> str:
    f = _files(d)[rng.integers(len(_files(d)))]
    data = f.read_bytes()
    n = int(rng.integers(len(data) + 1))
    f.write_bytes(data[:n])
    return f"truncate {f.name} to {n} bytes"


def _append(d: Path, rng: np.random.Generator) -> str:
    f = _files(d)[rng.integers(len(_files(d)))]
    with open(f, "ab") as fh:
        fh.write(rng.bytes(int(rng.integers(1, 4096))))
    return f"append garbage to {f.name}"


def _swap(d: Path, rng: np.random.Generator) -> str:
    files = _files(d)
    a, b = (files[i] for i in rng.choice(len(files), 2, replace=False))
    ta, tb = a.read_bytes(), b.read_bytes()
    a.write_bytes(tb)
    b.write_bytes(ta)
    return f"swap {a.name} and {b.name}"


def _delete(d: Path, rng: np.random.Generator) -> str:
    f = _files(d)[rng.integers(len(_files(d)))]
    f.unlink()
    return f"delete {f.name}"


def _link(d: Path, rng: np.random.Generator) -> str:
    f = _files(d)[rng.integers(len(_files(d)))]
    outside = d.parent / f".outside-{f.name}"
    shutil.copy(f, outside)
    f.unlink()
    os.symlink(outside, f)
    return f"replace {f.name} by a link outside the directory"


# ---------------------------------------------------------------- re-signed edits
def _edit_array(d: Path, rng: np.random.Generator) -> str:
    from safetensors.numpy import load_file, save_file

    path = d / "arrays.safetensors"
    arrays = load_file(str(path))
    key = sorted(arrays)[rng.integers(len(arrays))]
    a = arrays[key]
    op = ["nan", "inf", "big", "negative", "dtype", "shape", "delete", "add", "empty"][
        rng.integers(9)
    ]
    if op in ("nan", "inf") and a.dtype.kind == "f" and a.size:
        a = a.copy()
        a.flat[rng.integers(a.size)] = np.nan if op == "nan" else np.inf
    elif op in ("big", "negative") and a.size:
        a = a.copy()
        value = (10**9 if a.dtype.itemsize >= 4 else 100) if op == "big" else -7
        a.flat[rng.integers(a.size)] = np.asarray(value, np.int64).astype(a.dtype)
    elif op == "dtype":
        kinds = [np.int8, np.float16, np.float64, np.int64, np.int32, np.float32, np.uint8]
        a = a.astype(kinds[rng.integers(len(kinds))])
    elif op == "shape" and a.size:
        a = a.reshape(-1)[: max(0, a.size - 1)] if a.ndim == 1 else a[:-1]
    elif op == "delete":
        del arrays[key]
        save_file(arrays, str(path))
        resign(d)
        return f"re-signed: delete array {key}"
    elif op == "add":
        arrays["injected"] = rng.normal(size=3).astype(np.float32)
    elif op == "empty":
        a = np.zeros((0,) + a.shape[1:], a.dtype)
    arrays[key] = np.ascontiguousarray(a)
    save_file(arrays, str(path))
    resign(d)
    return f"re-signed: {op} on array {key}"


_ODD_VALUES: list[Any] = [None, -1, 0, 10**12, -1e308, "x", [], {}, True, 1.5, [1, 2], {"a": 1}]


def _edit_json(d: Path, rng: np.random.Generator) -> str:
    name = ["config.json", MANIFEST][rng.integers(2)]
    path = d / name
    doc = json.loads(path.read_text())
    # Walk to a random container and replace or delete one of its entries.
    node: Any = doc
    trail: list[str | int] = []
    desc = "no change"
    for _ in range(int(rng.integers(1, 4))):
        keys = (
            list(node)
            if isinstance(node, dict)
            else list(range(len(node)))
            if isinstance(node, list)
            else []
        )
        if not keys:
            break
        k = keys[rng.integers(len(keys))]
        if isinstance(node[k], dict | list) and rng.random() < 0.6:
            node, trail = node[k], [*trail, k]
            continue
        if rng.random() < 0.3 and isinstance(node, dict):
            del node[k]
            desc = f"delete {'/'.join(map(str, [*trail, k]))}"
        else:
            node[k] = _ODD_VALUES[rng.integers(len(_ODD_VALUES))]
            desc = f"set {'/'.join(map(str, [*trail, k]))} = {node[k]!r}"
        break
    if rng.random() < 0.1:
        doc, desc = [doc], "wrap in a list"
    path.write_text(json.dumps(doc))
    if name != MANIFEST:
        resign(d)
    return f"re-signed: {name}: {desc}"


def _edit_ids(d: Path, rng: np.random.Generator) -> str:
    name = ["user_ids.parquet", "item_ids.parquet"][rng.integers(2)]
    path = d / name
    frame = pd.read_parquet(path)
    col = frame.columns[0]
    op = ["duplicate", "drop", "column", "null", "float"][rng.integers(5)]
    if op == "duplicate" and len(frame) > 1:
        first: Any = frame.iat[0, 0]  # an id of any type
        frame.iat[-1, 0] = first
    elif op == "drop":
        frame = frame.iloc[:-1]
    elif op == "column":
        frame["extra"] = 1
    elif op == "null":
        frame[col] = frame[col].astype(object)
        frame.iloc[0, 0] = None
    elif op == "float":
        frame[col] = np.arange(len(frame), dtype=np.float64) + 0.5
    frame.to_parquet(path)
    resign(d)
    return f"re-signed: {op} in {name}"


MUTATORS: list[Callable[[Path, np.random.Generator], str]] = [
    _flip,
    _truncate,
    _append,
    _swap,
    _delete,
    _link,
    _edit_array,
    _edit_array,
    _edit_array,
    _edit_json,
    _edit_json,
    _edit_ids,
]


def mutate(model_dir: Path, rng: np.random.Generator) -> str:
    """Apply one random mutation to ``model_dir`` in place; returns what was done."""
    return MUTATORS[rng.integers(len(MUTATORS))](model_dir, rng)


def check_loads(model_dir: Path, mutation: str, n_users: int = 3) -> Verdict:
    """Load a mutated directory and judge the result (see the module docstring)."""
    from lmrec.models import load_model

    start = time.perf_counter()
    try:
        model = load_model(model_dir)
    except ModelFileError as e:
        return Verdict(mutation, "refused", time.perf_counter() - start, str(e)[:200])
    except Exception as e:  # noqa: BLE001 - any other exception is the failure being counted
        return Verdict(
            mutation, "traceback", time.perf_counter() - start, f"{type(e).__name__}: {e}"[:300]
        )
    seconds = time.perf_counter() - start
    try:
        users = model._user_ids.ids[:n_users]
        recs = model.recommend(list(users), k=5)
        scores = model.score(list(users))
        problems = []
        if np.isnan(scores).any():
            problems.append("NaN scores")
        unseen = model.n_items - np.diff(model._seen.indptr)[: len(users)]
        if (unseen > 0).any() and recs.empty:
            problems.append("empty lists for known users")
        if supports(model, FoldInModel):
            items = list(model._item_ids.ids[:2])
            model.recommend_for_items(items, k=3)
    except Exception as e:  # noqa: BLE001
        return Verdict(mutation, "traceback", seconds, f"after load: {type(e).__name__}: {e}"[:300])
    if problems:
        return Verdict(mutation, "wrong", seconds, "; ".join(problems))
    return Verdict(mutation, "loaded", seconds)
