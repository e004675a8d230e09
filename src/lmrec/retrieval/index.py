"""Exact and approximate maximum-inner-product search over item vectors.

Both indexes answer ``search(user_vectors, k, exclude=None) -> (items, scores)`` with
the conventions of :func:`lmrec.ops.topk.topk`: dense item indices (int64, -1
padded) and float32 scores, best first, ``exclude`` a users x items CSR matrix whose
stored entries are never returned (row ``i`` applies to query ``i``).

:class:`FaissIndex` with ``kind="hnsw"`` searches the HNSW graph by inner product
directly (``METRIC_INNER_PRODUCT``). With ``kind="ivfpq"`` it turns inner-product
search into Euclidean search with the augmentation of Bachrach et al. (2014): item
``y`` becomes ``[y, sqrt(M^2 - |y|^2)]`` with ``M`` the largest item norm, and query
``x`` becomes ``[x, 0]``, so ``|x' - y'|^2 = |x|^2 + M^2 - 2 x.y`` and the nearest
item is the best-scoring one (k-means lists and PQ codes are built for L2); scores are
recovered from the distance, or recomputed exactly with ``rerank``. (On clustered
factor-like vectors the augmented form cost HNSW 0.69 vs 0.9987 recall@20 at
``ef_search=128`` in ``benchmarks/ann.py --quick``, hence the direct metric there.)

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import scipy.sparse as sp

from lmrec._atomic import atomic_dir
from lmrec._checks import check_int, check_k
from lmrec._version import __version__
from lmrec.errors import ConfigError, DataError, NotFittedError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import DotProductModel, declares
from lmrec.models.fitted import Fitted
from lmrec.models.registry import models_supporting
from lmrec.ops.topk import dot_topk

__all__ = ["ExactIndex", "FaissIndex", "item_user_vectors"]

INDEX_FORMAT_VERSION = 1
Kind = Literal["hnsw", "ivfpq"]


class FaissParams(TypedDict):
    """:class:`FaissIndex`'s settings (its constructor's keywords), as saved with the index."""

    kind: Kind
    m: int
    ef_construction: int
    ef_search: int
    nlist: int
    nprobe: int
    nbits: int
    overfetch: float
    rerank: int
    seed: int


def _vectors(x: object, name: str, dim: int | None = None) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n, dim). Got shape {arr.shape} instead.")
    if dim is not None and arr.shape[1] != dim:
        raise DataError(f"{name} have dimension {arr.shape[1]}; the index was built with {dim}.")
    return arr


def _check_exclude(exclude: sp.csr_matrix | None, n: int, n_items: int) -> sp.csr_matrix | None:
    if exclude is None:
        return None
    ex = sp.csr_matrix(exclude)
    if ex.shape != (n, n_items):
        raise DataError(
            f"exclude must be a ({n}, {n_items}) matrix (one row per query); got {ex.shape}."
        )
    return ex


def _excluded(ex: sp.csr_matrix, idx: np.ndarray, n_items: int) -> np.ndarray:
    """Boolean mask of the candidates ``idx`` (n, c) stored in row-aligned ``ex`` (n, n_items)."""
    ex = ex.copy()
    ex.sort_indices()
    rows = np.repeat(np.arange(ex.shape[0], dtype=np.int64), np.diff(ex.indptr))
    banned = rows * n_items + ex.indices  # sorted: rows ascend, indices sorted within a row
    cand = np.arange(len(idx), dtype=np.int64)[:, None] * n_items + idx
    pos = np.minimum(np.searchsorted(banned, cand), max(len(banned) - 1, 0))
    return (banned[pos] == cand) & (idx >= 0) if len(banned) else np.zeros(idx.shape, bool)


def item_user_vectors(model: object) -> tuple[np.ndarray, np.ndarray]:
    """User and item vectors of a fitted factor model, such that ``score = user . item``.

    The model must declare :class:`~lmrec.models.capabilities.DotProductModel` (ALS,
    BPR, PureSVD, two-tower, factorization machine); an item bias is one more item
    dimension, with a constant 1 on the users.

    Returns
    -------
    user_vectors : float32 (n_users, dim)
    item_vectors : float32 (n_items, dim)

    Raises
    ------
    TypeError
        The model's scores are not inner products of such vectors.
    NotFittedError
        The model is not fitted.
    """
    if not (isinstance(model, Recommender) and declares(model, DotProductModel)):
        raise TypeError(
            f"{type(model).__name__} does not score by inner products of user and item "
            "vectors; ANN retrieval and item_user_vectors support factor and embedding "
            f"models ({', '.join(models_supporting(DotProductModel))})."
        )
    n_users = model._seen.shape[0]  # NotFittedError before fit
    return model.user_vectors(np.arange(n_users)), model.item_vectors()


class ExactIndex:
    """Exact top-k by inner product (the baseline): :func:`~lmrec.ops.topk.dot_topk`.

    Parameters
    ----------
    n_threads : int, optional
        Worker threads of the search (default: every core this process may use).

    Examples
    --------
    >>> idx = ExactIndex().build(np.eye(3, dtype=np.float32))
    >>> idx.search(np.array([[0.1, 0.9, 0.5]]), k=2)[0].tolist()
    [[1, 2]]
    """

    item_vectors_: Fitted[np.ndarray] = Fitted("call .build(item_vectors) first")

    def __init__(self, n_threads: int | None = None) -> None:
        self.n_threads = n_threads

    def build(self, item_vectors: np.ndarray) -> ExactIndex:
        """Keep a float32 copy of ``item_vectors`` (n_items, dim)."""
        self.item_vectors_ = _vectors(item_vectors, "item vectors").copy()
        return self

    @property
    def n_items(self) -> int:
        """Number of indexed items."""
        return len(self.item_vectors_)

    def search(
        self, user_vectors: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each row of ``user_vectors``; see the module docstring."""
        n_items = self.n_items
        k = check_k(k, "search")
        q = _vectors(user_vectors, "user vectors", self.item_vectors_.shape[1])
        ex = _check_exclude(exclude, len(q), n_items)
        return dot_topk(q, self.item_vectors_, k, exclude=ex, n_threads=self.n_threads)


_INT_PARAMS: tuple[
    Literal["m", "ef_construction", "ef_search", "nlist", "nprobe", "nbits"], ...
] = (
    "m",
    "ef_construction",
    "ef_search",
    "nlist",
    "nprobe",
    "nbits",
)


class FaissIndex:
    """Approximate maximum-inner-product search with faiss (extra ``ann``).

    Parameters
    ----------
    kind : {"hnsw", "ivfpq"}, default "hnsw"
        ``IndexHNSWFlat`` (graph; exact vectors, more memory) or ``IndexIVFPQ``
        (inverted lists of product-quantised codes; compact).
    m : int, default 32
        HNSW: graph degree. IVF-PQ: number of PQ sub-quantisers (must divide dim + 1).
    ef_construction, ef_search : int, default 200, 128
        HNSW build and search beam widths (``ef_search`` trades speed for recall).
    nlist, nprobe : int, default 1024, 32
        IVF-PQ: number of lists, and lists visited per query.
    nbits : int, default 8
        IVF-PQ: bits per sub-quantiser code.
    overfetch : float, default 1.0
        Extra candidates fetched per query beyond ``k`` plus the query's excluded
        count, as a multiple of ``k`` (more candidates, better recall after filtering).
    rerank : int, default 0
        IVF-PQ: fetch ``rerank`` x the candidates and reorder them by exact inner
        product with the item vectors kept in memory (0 = no reranking, no copy kept).
    seed : int, default 0
        Seed of the k-means training sample (IVF-PQ).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> index = FaissIndex("hnsw", m=8).build(rng.normal(size=(100, 8)))  # doctest: +SKIP
    >>> index.search(rng.normal(size=(2, 8)), k=5)[0].shape  # doctest: +SKIP
    (2, 5)

    Notes
    -----
    Seen-item exclusion over-fetches and filters: each query asks faiss for ``k +
    n_excluded + overfetch * k`` neighbours (queries are grouped in power-of-two
    buckets of that need, one faiss call per bucket), drops excluded ones, and repeats
    with twice as many for the rare queries left short. Heavy users therefore cost
    more: a user who has seen 10,000 items fetches 16,384 candidates.
    """

    index_: Any = None
    max_norm_: float = 0.0
    dim_: int = 0
    n_items_: int = 0
    item_vectors_: np.ndarray | None = None

    def __init__(
        self,
        kind: Kind = "hnsw",
        *,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        nlist: int = 1024,
        nprobe: int = 32,
        nbits: int = 8,
        overfetch: float = 1.0,
        rerank: int = 0,
        seed: int = 0,
    ) -> None:
        self.params: FaissParams = {
            "kind": kind,
            "m": m,
            "ef_construction": ef_construction,
            "ef_search": ef_search,
            "nlist": nlist,
            "nprobe": nprobe,
            "nbits": nbits,
            "overfetch": overfetch,
            "rerank": rerank,
            "seed": seed,
        }

    def _check_params(self) -> None:
        p = self.params
        if p["kind"] not in ("hnsw", "ivfpq"):
            raise ConfigError(f"The 'kind' parameter must be 'hnsw' or 'ivfpq'. Got {p['kind']!r}.")
        for key in _INT_PARAMS:
            check_int(p[key], key)
        if not isinstance(p["rerank"], int) or p["rerank"] < 0:
            raise ConfigError(f"The 'rerank' parameter must be an int >= 0. Got {p['rerank']!r}.")
        if not isinstance(p["overfetch"], (int, float)) or p["overfetch"] < 0:
            raise ConfigError(f"The 'overfetch' parameter must be >= 0. Got {p['overfetch']!r}.")

    # ------------------------------------------------------------------ building
    def build(self, item_vectors: np.ndarray) -> FaissIndex:
        """Index ``item_vectors`` (n_items, dim), float32; IVF-PQ trains on them first."""
        from lmrec._optional import require

        faiss = require("faiss", "ann")
        self._check_params()
        y = _vectors(item_vectors, "item vectors")
        p = self.params
        if p["kind"] == "hnsw":
            aug = y
            index = faiss.IndexHNSWFlat(y.shape[1], p["m"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = p["ef_construction"]
        else:
            norms = np.einsum("ij,ij->i", y, y)
            self.max_norm_ = float(np.sqrt(norms.max())) if len(y) else 0.0
            aug = np.hstack([y, np.sqrt(np.maximum(self.max_norm_**2 - norms, 0))[:, None]])
            aug = np.ascontiguousarray(aug, dtype=np.float32)
            del norms
            d = aug.shape[1]
            if d % p["m"]:
                raise ConfigError(f"IVF-PQ needs m to divide dim + 1 = {d}; got m={p['m']}.")
            index = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, p["nlist"], p["m"], p["nbits"])
            rng = np.random.default_rng(p["seed"])
            n_train = min(len(aug), max(64 * p["nlist"], 1 << 16))
            sample = aug[np.sort(rng.choice(len(aug), n_train, replace=False))]
            index.train(sample)
            if p["rerank"]:
                self.item_vectors_ = y.copy()
        index.add(aug)
        self.index_, self.dim_, self.n_items_ = index, y.shape[1], len(y)
        self._set_search_params()
        return self

    def _set_search_params(self) -> None:
        if self.params["kind"] == "hnsw":
            self.index_.hnsw.efSearch = self.params["ef_search"]
        else:
            self.index_.nprobe = self.params["nprobe"]

    def _check_built(self) -> None:
        if self.index_ is None:
            raise NotFittedError("FaissIndex is not built; call .build(item_vectors) first")

    @property
    def n_items(self) -> int:
        """Number of indexed items."""
        self._check_built()
        return self.n_items_

    # ------------------------------------------------------------------ searching
    def _raw(self, q: np.ndarray, qnorm: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` candidates per query: item indices and inner products (approximate)."""
        fetch = n * max(1, self.params["rerank"]) if self.item_vectors_ is not None else n
        fetch = min(fetch, self.n_items_)
        if self.params["kind"] == "hnsw":
            self.index_.hnsw.efSearch = max(self.params["ef_search"], fetch)
            scores, idx = self.index_.search(q, fetch)
            self._set_search_params()
        else:
            aug = np.ascontiguousarray(np.hstack([q, np.zeros((len(q), 1), np.float32)]))
            dist, idx = self.index_.search(aug, fetch)
            scores = ((qnorm[:, None] + self.max_norm_**2 - dist) / 2).astype(np.float32)
        if self.item_vectors_ is not None:
            safe = np.maximum(idx, 0)
            scores = np.einsum("ij,ikj->ik", q, self.item_vectors_[safe]).astype(np.float32)
        scores[idx < 0] = -np.inf
        return idx.astype(np.int64), scores

    def _top(
        self, q: np.ndarray, qnorm: np.ndarray, ex: sp.csr_matrix | None, n: int, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fetch ``n`` candidates per query, drop excluded ones, keep the best ``k``."""
        idx, sc = self._raw(q, qnorm, n)
        if ex is not None:
            sc[_excluded(ex, idx, self.n_items_)] = -np.inf
        order = np.lexsort((idx, -sc), axis=1)[:, :k]
        top_i = np.take_along_axis(idx, order, axis=1)
        top_s = np.take_along_axis(sc, order, axis=1)
        top_i[~np.isfinite(top_s)] = -1
        if top_i.shape[1] < k:
            top_i = np.pad(top_i, ((0, 0), (0, k - top_i.shape[1])), constant_values=-1)
            top_s = np.pad(top_s, ((0, 0), (0, k - top_s.shape[1])), constant_values=-np.inf)
        return top_i, top_s

    def search(
        self, user_vectors: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-``k`` items per row of ``user_vectors``; see the module docstring."""
        self._check_built()
        k = check_k(k, "search")
        q = _vectors(user_vectors, "user vectors", self.dim_)
        ex = _check_exclude(exclude, len(q), self.n_items_)
        qnorm = np.einsum("ij,ij->i", q, q)
        items = np.full((len(q), k), -1, np.int64)
        scores = np.full((len(q), k), -np.inf, np.float32)
        n_ex = np.diff(ex.indptr) if ex is not None else np.zeros(len(q), np.int64)
        todo = np.arange(len(q))
        extra = int(np.ceil(self.params["overfetch"] * k))
        want = np.minimum(k + extra + n_ex, self.n_items_)
        while len(todo):
            # Queries fetch in power-of-two buckets of their need (k + excluded + overfetch),
            # so one heavy user does not make its whole batch fetch thousands of items.
            bucket = np.ceil(np.log2(np.maximum(want[todo], 1))).astype(np.int64)
            retry = []
            for b in np.unique(bucket):
                sel = todo[bucket == b]
                n = int(min(2**b, self.n_items_))
                top_i, top_s = self._top(
                    q[sel], qnorm[sel], ex[sel] if ex is not None else None, n, k
                )
                items[sel], scores[sel] = top_i, top_s
                short = (top_i < 0).any(axis=1) & (n < self.n_items_)
                want[sel[short]] = np.minimum(2 * n, self.n_items_)
                retry.append(sel[short])
            todo = np.concatenate(retry)
        return items, scores

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``index.faiss`` (``faiss.write_index``) and ``index.json`` into directory ``path``."""
        self._check_built()
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.write_files(tmp)
        return path

    def write_files(self, directory: Path) -> list[str]:
        """Write the index files into an existing ``directory``; return their names."""
        from lmrec._optional import require

        faiss = require("faiss", "ann")
        self._check_built()
        names = ["index.faiss", "index.json"]
        faiss.write_index(self.index_, str(directory / "index.faiss"))
        if self.item_vectors_ is not None:
            np.save(directory / "item_vectors.npy", self.item_vectors_, allow_pickle=False)
            names.append("item_vectors.npy")
        meta = {
            "format_version": INDEX_FORMAT_VERSION,
            "lmrec_version": __version__,
            "params": self.params,
            "max_norm": self.max_norm_,
            "dim": self.dim_,
            "n_items": self.n_items_,
        }
        (directory / "index.json").write_text(json.dumps(meta, indent=2))
        return names

    @classmethod
    def load(cls, path: str | Path) -> FaissIndex:
        """Read an index written by :meth:`save`."""
        from lmrec._optional import require

        faiss = require("faiss", "ann")
        path = Path(path)
        meta_file = path / "index.json"
        if not meta_file.is_file():
            raise DataError(f"{path} is not an lmrec index directory (no index.json).")
        meta = json.loads(meta_file.read_text())
        if meta.get("format_version") != INDEX_FORMAT_VERSION:
            raise DataError(f"{path}: unsupported index format {meta.get('format_version')}.")
        known = cls().params
        out = cls(**{k: v for k, v in meta["params"].items() if k in known})
        out._check_params()
        out.index_ = faiss.read_index(str(path / "index.faiss"))
        out.max_norm_, out.dim_, out.n_items_ = meta["max_norm"], meta["dim"], meta["n_items"]
        if (path / "item_vectors.npy").is_file():
            out.item_vectors_ = np.load(path / "item_vectors.npy", allow_pickle=False)
        out._set_search_params()
        return out
