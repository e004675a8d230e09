"""Model directories: config + safetensors + id maps + a checksummed manifest. Never pickle.

Layout of a model directory::

    manifest.json      format version, lmrec version, model name, sha256 of every file
    config.json        hyperparameters and JSON metadata of the fitted model
    arrays.safetensors fitted arrays (and the training-interaction pattern for exclusion)
    user_ids.parquet   external user ids in index order
    item_ids.parquet   external item ids in index order

Reading validates everything before a model sees it, in one place shared by the
library, the CLI and the service: the manifest's schema and checksums, that no entry
of the directory is a symbolic link, the config's schema, every id table (one column,
unique, no missing values, the declared length), and the training pattern (pointers
monotone, indices in range). Model-specific arrays are checked by the typed accessors
of :class:`StateArrays` that each model's ``_set_state`` reads them through (dtype,
shape, finite values, index ranges), and nothing the model did not ask for is allowed.
Every failure is a :class:`~lmrec.errors.ModelFileError` that names the file and
what is wrong with it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec._atomic import atomic_dir, recover_dir
from lmrec._version import __version__
from lmrec.data.idmap import IdMap
from lmrec.errors import DataError, ModelFileError

FORMAT_VERSION = "1.0"
MANIFEST = "manifest.json"
REQUIRED_FILES = ("arrays.safetensors", "config.json", "item_ids.parquet", "user_ids.parquet")
SEEN_PREFIX = "__seen__."
#: Limits that keep a crafted file from costing more than a real one.
MAX_JSON_BYTES = 64 << 20
MAX_ARRAYS = 100_000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ALLOWED_DTYPES = {"F16", "BF16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "BOOL"}


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelFiles:
    """The validated contents of a model directory, before a model class reads them."""

    path: Path
    name: str
    params: dict[str, Any]
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    user_ids: IdMap
    item_ids: IdMap
    seen: sp.csr_matrix


def write_model_files(
    path: str | Path,
    *,
    name: str,
    params: dict[str, Any],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    user_ids: IdMap,
    item_ids: IdMap,
    seen: sp.csr_matrix,
    overwrite: bool = True,
) -> Path:
    """Write a model directory atomically and durably (see :mod:`lmrec._atomic`)."""
    for key in arrays:
        if key.startswith(SEEN_PREFIX):
            raise ModelFileError(f"State key {key!r} is reserved.")
    out = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    out[SEEN_PREFIX + "indptr"] = np.ascontiguousarray(seen.indptr, dtype=np.int64)
    out[SEEN_PREFIX + "indices"] = np.ascontiguousarray(seen.indices, dtype=np.int32)
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        _save_arrays(out, tmp / "arrays.safetensors")
        pd.DataFrame({"user": user_ids.ids}).to_parquet(tmp / "user_ids.parquet")
        pd.DataFrame({"item": item_ids.ids}).to_parquet(tmp / "item_ids.parquet")
        config = {
            "model": name,
            "config": params,
            "meta": meta,
            "n_users": len(user_ids),
            "n_items": len(item_ids),
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        files = sorted(p.name for p in tmp.iterdir())
        manifest = {
            "format_version": FORMAT_VERSION,
            "lmrec_version": __version__,
            "model": name,
            "files": {f: sha256_file(tmp / f) for f in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path


def _save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    """safetensors' writer, with its I/O failures (disk full, file too large) as OSError."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        save_file(arrays, str(path))
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        raise OSError(int(code.group(1)) if code else errno.EIO, str(e)) from e


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ModelFileError(f"{path} is larger than {MAX_JSON_BYTES >> 20} MiB; refusing it.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ModelFileError(f"{path} is not valid JSON: {e}") from e


def _check_entries(path: Path) -> None:
    """Refuse symbolic links anywhere in the directory's top level (they could point out)."""
    for entry in path.iterdir():
        if entry.is_symlink():
            raise ModelFileError(
                f"{entry} is a symbolic link; model directories must hold plain files only "
                "(a link could point outside the directory). Copy the file in instead."
            )


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a model directory's manifest and checksums; return the manifest."""
    path = Path(path)
    recover_dir(path)
    if not path.is_dir():
        raise ModelFileError(f"{path} is not a model directory (it does not exist or is a file).")
    _check_entries(path)
    mfile = path / MANIFEST
    if not mfile.is_file():
        raise ModelFileError(
            f"{path} has no {MANIFEST}; it is not an lmrec model directory or it was not "
            "written completely. Train the model again (lmrec train ... --out DIR)."
        )
    manifest = _read_json(mfile)
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{mfile} must hold a JSON object; got {type(manifest).__name__}.")
    version = manifest.get("format_version")
    if not isinstance(version, str):
        raise ModelFileError(f"{mfile} has no format_version string.")
    major, _, minor = version.partition(".")
    our_major, _, our_minor = FORMAT_VERSION.partition(".")
    if major != our_major:
        raise ModelFileError(
            f"{path} uses model format {version!r}; this lmrec ({__version__}) reads format "
            f"{our_major}.x. Retrain the model or use a matching lmrec version."
        )
    if minor.isdigit() and our_minor.isdigit() and int(minor) > int(our_minor):
        warnings.warn(
            f"{path} was written by a newer lmrec ({manifest.get('lmrec_version')}); "
            "unknown fields are ignored.",
            UserWarning,
            stacklevel=3,
        )
    if not isinstance(manifest.get("model"), str):
        raise ModelFileError(f"{mfile} has no model name string.")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelFileError(f"{mfile} lists no files.")
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise ModelFileError(f"{mfile} does not list {', '.join(missing)}.")
    for name, digest in files.items():
        f = path / name
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ModelFileError(f"{mfile} names a file outside the directory: {name!r}.")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ModelFileError(f"{mfile}: the checksum of {name} is not a sha256 hex digest.")
        if not f.is_file():
            raise ModelFileError(f"{path} is incomplete: {name} is missing.")
        if sha256_file(f) != digest:
            raise ModelFileError(
                f"{f} does not match its checksum in {MANIFEST}: the file was modified or "
                "corrupted after saving. Refusing to load it; restore or retrain the model."
            )
    return manifest


def _read_ids(path: Path, column: str, expected: int) -> IdMap:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{path} is not a readable Parquet file: {e}") from e
    if list(frame.columns) != [column]:
        raise ModelFileError(
            f"{path} must have exactly one column {column!r}; got {list(frame.columns)}."
        )
    values = frame[column]
    if values.isna().any():
        raise ModelFileError(f"{path} has missing ids.")
    if (
        values.dtype.kind not in "OUiu"
        or values.map(lambda v: isinstance(v, bytes | list | dict)).any()
    ):
        raise ModelFileError(f"{path}: ids must be strings or integers; got {values.dtype}.")
    if len(values) != expected:
        raise ModelFileError(f"{path} holds {len(values)} ids; config.json says {expected}.")
    try:
        return IdMap(values.to_numpy())
    except DataError as e:
        raise ModelFileError(f"{path}: {e}") from e


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(str(path), framework="numpy") as fh:
            keys = list(fh.keys())
            if len(keys) > MAX_ARRAYS:
                raise ModelFileError(f"{path} holds {len(keys)} arrays; at most {MAX_ARRAYS}.")
            for key in keys:
                dtype = fh.get_slice(key).get_dtype()
                if dtype not in _ALLOWED_DTYPES:
                    raise ModelFileError(f"{path}: array {key!r} has unsupported dtype {dtype}.")
        return load_file(str(path))
    except (OSError, ValueError, SafetensorError) as e:
        raise ModelFileError(f"{path} is not a valid safetensors file: {e}") from e


def _seen(arrays: dict[str, np.ndarray], n_users: int, n_items: int, where: Path) -> sp.csr_matrix:
    """The training pattern, checked so that no index can reach outside the matrix."""
    try:
        indptr = arrays.pop(SEEN_PREFIX + "indptr")
        indices = arrays.pop(SEEN_PREFIX + "indices")
    except KeyError as e:
        raise ModelFileError(f"{where} has no training pattern ({e.args[0]!r} is missing).") from e
    if indptr.dtype != np.int64 or indices.dtype != np.int32:
        raise ModelFileError(
            f"{where}: the training pattern must be int64 pointers and int32 indices."
        )
    if indptr.ndim != 1 or indices.ndim != 1 or len(indptr) != n_users + 1:
        raise ModelFileError(
            f"{where}: the training pattern's pointers must have n_users + 1 = {n_users + 1} "
            f"entries; got shape {indptr.shape}."
        )
    if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise ModelFileError(
            f"{where}: the training pattern's pointers are not monotone from 0 to nnz."
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise ModelFileError(
            f"{where}: the training pattern has item indices outside [0, {n_items})."
        )
    return sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(n_users, n_items)
    )


def _count(config: dict[str, Any], label: str, path: Path) -> int:
    """``config[label]``, checked to be an int >= 0 (``n_users``, ``n_items``)."""
    n = config.get(label)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ModelFileError(f"{path / 'config.json'}: {label} must be an int >= 0; got {n!r}.")
    return n


def read_model_files(path: str | Path) -> ModelFiles:
    """Read and validate a model directory (manifest, checksums, schema, ids, pattern)."""
    path = Path(path)
    manifest = read_manifest(path)
    config = _read_json(path / "config.json")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path / 'config.json'} must hold a JSON object.")
    name = config.get("model")
    if name != manifest["model"]:
        raise ModelFileError(f"{path}: config.json and {MANIFEST} disagree on the model name.")
    params, meta = config.get("config", {}), config.get("meta", {})
    if not isinstance(params, dict) or not isinstance(meta, dict):
        raise ModelFileError(f"{path / 'config.json'}: 'config' and 'meta' must be JSON objects.")
    n_users, n_items = _count(config, "n_users", path), _count(config, "n_items", path)
    user_ids = _read_ids(path / "user_ids.parquet", "user", n_users)
    item_ids = _read_ids(path / "item_ids.parquet", "item", n_items)
    arrays = _read_arrays(path / "arrays.safetensors")
    seen = _seen(arrays, n_users, n_items, path / "arrays.safetensors")
    return ModelFiles(path, name, params, meta, arrays, user_ids, item_ids, seen)


# Shapes for StateArrays' annotations, whose method ``int`` hides the builtin in the class body.
_Shape = tuple[int | None, ...]
_Shape2D = tuple[int, int]


class StateArrays:
    """A model's saved arrays, read through accessors that check what the model expects.

    ``_set_state`` asks for each array by name with its dtype and shape (``None`` for a
    free dimension); a missing array, another dtype or shape, a non-finite float or an
    index out of range is a :class:`~lmrec.errors.ModelFileError`. After ``_set_state``
    every array must have been read: an unexpected array is refused too.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        where: str,
        prefix: str = "",
        used: set[str] | None = None,
    ) -> None:
        self._arrays = arrays
        self._where = where
        self._prefix = prefix
        self._used: set[str] = set() if used is None else used

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray], where: str = "model state") -> StateArrays:
        """Wrap a plain dict of arrays (e.g. a model's own ``_get_state`` output)."""
        return cls(dict(arrays), where)

    def child(self, prefix: str) -> StateArrays:
        """The arrays under ``prefix`` (a component of a composite model)."""
        return StateArrays(self._arrays, self._where, self._prefix + prefix, self._used)

    def __contains__(self, key: str) -> bool:
        return self._prefix + key in self._arrays

    def __getitem__(self, key: str) -> np.ndarray:
        """Plain access for plugin models: the file-level checks only (floats finite).

        Built-in models use the typed accessors, which also check dtype and shape.
        """
        full = self._prefix + key
        if full not in self._arrays:
            raise self._fail(key, "is missing.")
        arr = self._arrays[full]
        self._used.add(full)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise self._fail(key, "holds NaN or infinite values.")
        return arr

    def keys(self, prefix: str = "") -> list[str]:
        """Names (without this view's prefix) that start with ``prefix``, sorted."""
        full = self._prefix + prefix
        return sorted(k[len(self._prefix) :] for k in self._arrays if k.startswith(full))

    def _fail(self, key: str, problem: str) -> ModelFileError:
        return ModelFileError(f"{self._where}: array {self._prefix + key!r} {problem}")

    def _get(
        self, key: str, dtypes: tuple[Any, ...], shape: tuple[int | None, ...] | None
    ) -> np.ndarray:
        full = self._prefix + key
        if full not in self._arrays:
            raise self._fail(key, "is missing.")
        arr = self._arrays[full]
        self._used.add(full)
        if arr.dtype not in [np.dtype(d) for d in dtypes]:
            want = " or ".join(np.dtype(d).name for d in dtypes)
            raise self._fail(key, f"has dtype {arr.dtype}; expected {want}.")
        if shape is not None and (
            arr.ndim != len(shape)
            or any(w is not None and w != g for w, g in zip(shape, arr.shape, strict=True))
        ):
            want = "(" + ", ".join("*" if w is None else str(w) for w in shape) + ")"
            raise self._fail(key, f"has shape {arr.shape}; expected {want}.")
        return arr

    def float(
        self,
        key: str,
        shape: tuple[int | None, ...] | None = None,
        *,
        dtypes: tuple[Any, ...] = (np.float32,),
    ) -> np.ndarray:
        """A float array with finite values only."""
        arr = self._get(key, dtypes, shape)
        if not np.isfinite(arr).all():
            raise self._fail(key, "holds NaN or infinite values.")
        return arr

    def int(
        self,
        key: str,
        shape: tuple[int | None, ...] | None = None,
        *,
        low: int | None = None,
        high: int | None = None,
        dtypes: tuple[Any, ...] = (np.int32, np.int64),
    ) -> np.ndarray:
        """An integer array with values in ``[low, high)`` where given."""
        arr = self._get(key, dtypes, shape)
        if arr.size and low is not None and arr.min() < low:
            raise self._fail(key, f"has values below {low}.")
        if arr.size and high is not None and arr.max() >= high:
            raise self._fail(key, f"has values at or above {high}.")
        return arr

    def flags(self, key: str, shape: _Shape | None = None) -> np.ndarray:
        """A boolean array stored as uint8 0/1 (or bool)."""
        arr = self._get(key, (np.uint8, np.bool_), shape)
        if arr.dtype == np.uint8 and arr.size and arr.max() > 1:
            raise self._fail(key, "must hold only 0 and 1.")
        return arr.astype(bool)

    def csr(
        self, key: str, shape: _Shape2D, *, dtypes: tuple[Any, ...] = (np.float32,)
    ) -> sp.csr_matrix:
        """A CSR matrix stored as ``key.data``, ``key.indices``, ``key.indptr``."""
        indptr = self.int(f"{key}.indptr", (shape[0] + 1,), low=0)
        indices = self.int(f"{key}.indices", (None,), low=0, high=max(shape[1], 1))
        data = self.float(f"{key}.data", (len(indices),), dtypes=dtypes)
        if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
            raise self._fail(f"{key}.indptr", "is not monotone from 0 to the number of entries.")
        return sp.csr_matrix((data, indices, indptr), shape=shape)

    def unread(self) -> list[str]:
        """Arrays nobody asked for (a crafted or foreign file holds them)."""
        return sorted(set(self._arrays) - self._used)
