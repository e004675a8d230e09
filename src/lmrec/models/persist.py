"""Model directories: config + safetensors + id maps + a checksummed manifest. Never pickle.

Layout of a model directory::

    manifest.json      format version, lmrec version, model name, sha256 of every file
    config.json        hyperparameters and JSON metadata of the fitted model
    arrays.safetensors fitted arrays (and the training-interaction pattern for exclusion)
    user_ids.parquet   external user ids in index order
    item_ids.parquet   external item ids in index order

Loading verifies every checksum before reading anything, so a truncated or edited
file is refused with :class:`~lmrec.errors.ModelFileError`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec._atomic import atomic_dir
from lmrec._version import __version__
from lmrec.data.idmap import IdMap
from lmrec.errors import ConfigError, ModelFileError
from lmrec.models.config import build_config

FORMAT_VERSION = "1.0"
MANIFEST = "manifest.json"
_SEEN_PREFIX = "__seen__."


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(model: Any, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write a fitted model to ``path`` atomically; see the module docstring for the layout."""
    from safetensors.numpy import save_file

    model._check_fitted()
    if not model.name:
        raise ConfigError(
            f"{type(model).__name__} is not registered; register_model(name, cls) before saving."
        )
    arrays, meta = model._get_state()
    arrays = dict(arrays)
    for key in arrays:
        if key.startswith(_SEEN_PREFIX):
            raise ConfigError(f"State key {key!r} is reserved.")
    seen: sp.csr_matrix = model.seen_
    arrays[_SEEN_PREFIX + "indptr"] = seen.indptr.astype(np.int64)
    arrays[_SEEN_PREFIX + "indices"] = seen.indices.astype(np.int32)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        save_file(arrays, str(tmp / "arrays.safetensors"))
        pd.DataFrame({"user": model.user_ids_.ids}).to_parquet(tmp / "user_ids.parquet")
        pd.DataFrame({"item": model.item_ids_.ids}).to_parquet(tmp / "item_ids.parquet")
        config = {
            "model": model.name,
            "config": model.config.model_dump(mode="json"),
            "meta": meta,
            "n_users": len(model.user_ids_),
            "n_items": len(model.item_ids_),
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        files = sorted(p.name for p in tmp.iterdir())
        manifest = {
            "format_version": FORMAT_VERSION,
            "lmrec_version": __version__,
            "model": model.name,
            "files": {name: _sha256(tmp / name) for name in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a model directory's manifest and checksums; return the manifest."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path} is not a model directory (it does not exist or is a file).")
    mfile = path / MANIFEST
    if not mfile.is_file():
        raise ModelFileError(
            f"{path} has no {MANIFEST}; it is not an lmrec model directory or it was not "
            "written completely. Train the model again (lmrec train ... --out DIR)."
        )
    try:
        manifest = json.loads(mfile.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{mfile} is not valid JSON: {e}") from e
    version = str(manifest.get("format_version", ""))
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
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelFileError(f"{mfile} lists no files.")
    for name, digest in files.items():
        f = path / name
        if Path(name).name != name:
            raise ModelFileError(f"{mfile} names a file outside the directory: {name!r}.")
        if not f.is_file():
            raise ModelFileError(f"{path} is incomplete: {name} is missing.")
        if _sha256(f) != digest:
            raise ModelFileError(
                f"{f} does not match its checksum in {MANIFEST}: the file was modified or "
                "corrupted after saving. Refusing to load it; restore or retrain the model."
            )
    return manifest


def load_model(path: str | Path) -> Any:
    """Load any lmrec model directory (the class comes from the registry by name)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from lmrec.models.registry import get_model_class

    path = Path(path)
    manifest = read_manifest(path)
    try:
        config = json.loads((path / "config.json").read_text())
        arrays = load_file(str(path / "arrays.safetensors"))
        user_ids = IdMap(pd.read_parquet(path / "user_ids.parquet")["user"].to_numpy())
        item_ids = IdMap(pd.read_parquet(path / "item_ids.parquet")["item"].to_numpy())
    except (OSError, ValueError, KeyError, SafetensorError) as e:
        raise ModelFileError(f"{path}: could not read the model files: {e}") from e
    name = config.get("model")
    if name != manifest.get("model"):
        raise ModelFileError(f"{path}: config.json and {MANIFEST} disagree on the model name.")
    cls = get_model_class(name)
    params = dict(config.get("config", {}))
    unknown = set(params) - set(cls.config_class.model_fields)
    if unknown:
        warnings.warn(
            f"{path}: ignoring unknown {name} parameters {sorted(unknown)} (newer lmrec?).",
            UserWarning,
            stacklevel=2,
        )
        params = {k: v for k, v in params.items() if k not in unknown}
    model = cls(build_config(cls.config_class, params))
    indptr = arrays.pop(_SEEN_PREFIX + "indptr")
    indices = arrays.pop(_SEEN_PREFIX + "indices")
    model.user_ids_ = user_ids
    model.item_ids_ = item_ids
    model.seen_ = sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(len(user_ids), len(item_ids))
    )
    model._set_state(arrays, config.get("meta", {}))
    return model
