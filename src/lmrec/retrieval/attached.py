"""ANN indexes saved beside a model directory, and recommendations served from them.

Layout: ``MODEL_DIR/index/`` holds the :class:`~lmrec.retrieval.FaissIndex` files
(``index.faiss`` from ``faiss.write_index``, ``index.json``, no pickle) and
``binding.json``, the sidecar that ties them to the model: the sha256 of each index
file and of the model's ``manifest.json`` (which itself lists the sha256 of every
model file). Loading verifies both, so an index edited after saving, or built for an
earlier version of the model, is refused with a message that says how to rebuild it.
Retraining into the same directory (``lmrec train --out DIR --force``) replaces the
whole directory, index included.

``recommend`` (CLI) and the service use the index when one is present and the
catalog has at least :data:`ANN_MIN_ITEMS` items (both configurable); below that the
exact fused search is fast enough and has no recall loss.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec._atomic import atomic_dir
from lmrec._checks import check_k
from lmrec.errors import ConfigError, ModelFileError
from lmrec.models.capabilities import DotProductModel, supports
from lmrec.models.files import MANIFEST, read_manifest, sha256_file
from lmrec.models.persist import load_model
from lmrec.models.registry import models_supporting

if TYPE_CHECKING:
    from lmrec.retrieval.index import Kind

__all__ = [
    "ANN_MIN_ITEMS",
    "INDEX_DIR",
    "ann_recommend_indices",
    "build_model_index",
    "has_model_index",
    "load_model_index",
    "recommend_ann",
]

#: Subdirectory of a model directory holding its ANN index.
INDEX_DIR = "index"
#: Default catalog size from which ``recommend`` and the service use a present index.
ANN_MIN_ITEMS = 100_000
_BINDING = "binding.json"
_BINDING_VERSION = 1


def has_model_index(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` has an index subdirectory (not yet verified)."""
    return (Path(model_dir) / INDEX_DIR / _BINDING).is_file()


def build_model_index(
    model_dir: str | Path,
    kind: Kind = "hnsw",
    *,
    overwrite: bool = False,
    model: Any = None,
    **params: Any,
) -> Path:
    """Build a :class:`~lmrec.retrieval.FaissIndex` over a saved model's item vectors.

    Parameters
    ----------
    model_dir : path
        A model directory from ``lmrec train`` / ``Recommender.save``.
    kind : {"hnsw", "ivfpq"}
    overwrite : bool
        Replace an existing index (CLI: ``--force``).
    model : Recommender, optional
        The model already loaded from ``model_dir`` (saves loading it again).
    **params
        :class:`~lmrec.retrieval.FaissIndex` parameters (``m``, ``ef_search``, ...).

    Returns
    -------
    Path
        ``model_dir/index``.

    Raises
    ------
    ConfigError
        The model does not score by inner products (not a factor/embedding model).
    FileExistsError
        An index exists and ``overwrite`` is false.
    """
    from lmrec.retrieval.index import FaissIndex

    model_dir = Path(model_dir)
    target = model_dir / INDEX_DIR
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} exists; pass --force (overwrite=True) to rebuild the index."
        )
    read_manifest(model_dir)
    manifest_sha = sha256_file(model_dir / MANIFEST)
    model = model if model is not None else load_model(model_dir)
    if not supports(model, DotProductModel):
        raise ConfigError(
            f"Model {model.name!r} does not score by inner products of user and item vectors, "
            f"so it cannot use an ANN index; build one for a factor or embedding model "
            f"({', '.join(models_supporting(DotProductModel))})."
        )
    items = model.item_vectors()
    index = FaissIndex(kind, **params).build(items)
    with atomic_dir(target, overwrite=overwrite) as tmp:
        names = index.write_files(tmp)
        binding = {
            "format_version": _BINDING_VERSION,
            "model": model.name,
            "model_manifest_sha256": manifest_sha,
            "n_items": model.n_items,
            "dim": items.shape[1],
            "files": {name: sha256_file(tmp / name) for name in sorted(names)},
        }
        (tmp / _BINDING).write_text(json.dumps(binding, indent=2, sort_keys=True))
    return target


def load_model_index(model_dir: str | Path, model: Any = None) -> Any:
    """The verified index saved beside ``model_dir``, or None when there is none.

    Raises :class:`~lmrec.errors.ModelFileError` when the index files do not match
    their checksums, or the index was built for another version of the model (its
    manifest changed), or it does not fit ``model`` (item count or dimension).
    """
    from lmrec.retrieval.index import FaissIndex

    model_dir = Path(model_dir)
    idir = model_dir / INDEX_DIR
    if not idir.exists():
        return None
    rebuild = f"rebuild it with: lmrec index build --model {model_dir} --force"
    try:
        binding = json.loads((idir / _BINDING).read_text())
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{idir} is not a valid index directory ({e}); {rebuild}") from e
    if binding.get("format_version") != _BINDING_VERSION:
        raise ModelFileError(f"{idir}: unsupported index binding format; {rebuild}")
    files = binding.get("files", {})
    on_disk = {f.name for f in idir.iterdir() if f.name != _BINDING}
    if not {"index.faiss", "index.json"} <= set(files) or on_disk - set(files):
        raise ModelFileError(
            f"{idir}: {_BINDING} must list the checksum of every index file (listed "
            f"{sorted(files)}, found {sorted(on_disk)}); {rebuild}"
        )
    for name, digest in files.items():
        f = idir / name
        if Path(name).name != name or not f.is_file() or sha256_file(f) != digest:
            raise ModelFileError(
                f"{f} is missing or does not match its checksum in {_BINDING}; {rebuild}"
            )
    if binding.get("model_manifest_sha256") != sha256_file(model_dir / MANIFEST):
        raise ModelFileError(
            f"{idir} was built for another version of the model in {model_dir}; {rebuild}"
        )
    index = FaissIndex.load(idir)
    if model is not None:
        if (
            not supports(model, DotProductModel)
            or index.n_items != model.n_items
            or index.dim_ != model.item_vectors().shape[1]
        ):
            raise ModelFileError(f"{idir} does not fit the model in {model_dir}; {rebuild}")
    return index


def ann_recommend_indices(
    model: Any,
    index: Any,
    user_idx: np.ndarray,
    k: int,
    *,
    exclude_seen: bool = True,
    exclude: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-``k`` dense items and scores for dense ``user_idx``, like
    :meth:`Recommender.recommend_indices` (training items excluded by over-fetch and filter).
    """
    k = check_k(k)
    if not supports(model, DotProductModel):
        raise ConfigError(f"Model {model.name!r} cannot use an ANN index (not a factor model).")
    user_idx = np.asarray(user_idx, dtype=np.int64)
    ex = model.exclusion(user_idx, exclude_seen, exclude)
    return index.search(model.user_vectors(user_idx), k, exclude=ex)


def recommend_ann(
    model: Any,
    index: Any,
    users: Any,
    *,
    k: int = 10,
    exclude_seen: bool = True,
    on_unknown: str = "raise",
) -> pd.DataFrame:
    """:meth:`Recommender.recommend` through an ANN index (same columns and id handling)."""
    model._check_fitted()
    uidx = model.user_ids_.index(users, on_unknown=on_unknown, kind="user")
    uidx = uidx[uidx >= 0]
    items, scores = ann_recommend_indices(model, index, uidx, k, exclude_seen=exclude_seen)
    return model._to_frame(model.user_ids_.lookup(uidx), items, scores)
