"""Neighbourhood models: item-based and user-based k-nearest-neighbour collaborative filtering.

Both models compare the rows of a sparse matrix -- items by the users who interacted
with them (:class:`ItemKNN`), or users by the items they interacted with
(:class:`UserKNN`) -- and keep only each row's ``k_neighbors`` most similar rows.

Similarity
----------
Let ``a`` and ``b`` be two rows ("documents") over the other side ("terms").

``cosine``
    ``sim(a, b) = a.b / (||a|| ||b|| + shrinkage)``. The *shrinkage* in the
    denominator (as in Ferrari Dacrema et al., RecSys 2019) pulls similarities
    supported by few common interactions towards zero; ``shrinkage=0`` is the plain
    cosine.
``tfidf``, ``bm25``
    The plain dot product of re-weighted rows, as in ``implicit``'s
    ``TFIDFRecommender`` and ``BM25Recommender``: a term is weighted by
    ``idf = log(n_docs) - log(1 + df)`` (so very active users, or very popular items,
    count less), and the term frequency ``x`` by ``sqrt(x)`` (tfidf) or by
    ``x (k1 + 1) / (k1 L + x)`` with length normalisation
    ``L = 1 - b + b * len(row) / mean_len`` (bm25). Shrinkage is a cosine-only
    option and must stay 0 here (these similarities are not normalised).

Only positive similarities are kept. The neighbour lists are computed in blocks of
rows, so memory stays ``O(block * n_rows)`` and never ``O(n_rows^2)``.

Scoring
-------
Item-kNN (Sarwar et al. 2001; Deshpande & Karypis 2004): ``score(u, j) = sum over the
items i of u's history that are among j's k nearest neighbours of x_ui sim(i, j)``, i.e.
``X_u S`` with ``S[:, j]`` holding item ``j``'s neighbours. A new user is folded in by the
same product with the history row.

User-kNN: ``score(u, j) = sum over u's k nearest users v of sim(u, v) x_vj``. A new
user's history is compared with every training user (same weighting, with the
training statistics), and the same formula is applied.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from lmrec.data.dataset import Dataset
from lmrec.models.base import Recommender, history_matrix
from lmrec.models.capabilities import FitOptions, FoldInModel, PrivateModel, UnlearningModel
from lmrec.models.config import ModelConfig, search
from lmrec.models.dp import GramDPConfig, check_dp_data, noisy_gram
from lmrec.models.explain import Attribution, column_values, exact, occlusion, row_values
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.unlearning import drop_users, keep_rows

#: Upper bound on the number of cells of one dense similarity block (float32: 256 MiB).
_BLOCK_CELLS = 1 << 26
#: Shrinkage added under DP, in units of the noise scale sigma (see ItemKNN).
_DP_SHRINK_SIGMAS = 10.0
#: Rows compared per block (fewer when the other dimension is huge; see _BLOCK_CELLS).
_BLOCK_ROWS = 1024


class KNNConfig(ModelConfig):
    """Hyperparameters of :class:`ItemKNN` and :class:`UserKNN`."""

    k_neighbors: int = Field(default=100, ge=1, json_schema_extra=search("int_log", 10, 500))
    """Neighbours kept per item (ItemKNN) or per user (UserKNN)."""
    similarity: Literal["cosine", "bm25", "tfidf"] = Field(
        default="cosine", json_schema_extra=search("categorical", ["cosine", "bm25", "tfidf"])
    )
    """Similarity of two rows: shrunk cosine, or dot product of tf-idf / BM25 weighted rows."""
    shrinkage: float = Field(
        default=0.0,
        ge=0,
        json_schema_extra=search("float", 0.0, 100.0, {"similarity": "cosine"}),
    )
    """Cosine only: ``sim = a.b / (||a|| ||b|| + shrinkage)``; 0 is the plain cosine."""
    bm25_k1: float = Field(
        default=1.2, ge=0, json_schema_extra=search("float", 0.5, 3.0, {"similarity": "bm25"})
    )
    """BM25 only: term-frequency saturation ``k1`` (0 ignores the weights' size)."""
    bm25_b: float = Field(
        default=0.75,
        ge=0,
        le=1,
        json_schema_extra=search("float", 0.0, 1.0, {"similarity": "bm25"}),
    )
    """BM25 only: strength ``b`` of the length normalisation, in [0, 1]."""
    implicit: bool = True
    """Binarise interaction weights (every observed pair counts 1); else use the weights."""

    @model_validator(mode="after")
    def _shrinkage_is_cosine_only(self) -> KNNConfig:
        if self.shrinkage > 0 and self.similarity != "cosine":
            raise ValueError(
                f"shrinkage applies to similarity='cosine' only; got shrinkage={self.shrinkage} "
                f"with similarity={self.similarity!r} (set shrinkage=0)"
            )
        return self


class ItemKNNConfig(KNNConfig, GramDPConfig):
    """Hyperparameters of :class:`ItemKNN`: those of kNN plus differential privacy."""

    @model_validator(mode="after")
    def _dp_is_cosine_only(self) -> ItemKNNConfig:
        if self.dp_epsilon is not None and self.similarity != "cosine":
            raise ValueError(
                "dp_epsilon works with similarity='cosine' only (tfidf and bm25 weight users "
                f"by statistics that are not privatised); got similarity={self.similarity!r}"
            )
        return self


# ---------------------------------------------------------------------- similarity kernels
class RowWeighting:
    """Re-weighting of rows (documents) over columns (terms), with statistics from training.

    The statistics (idf per column, mean row length) are those of the training rows,
    so a new row (a folded-in user) is weighted exactly like a training row would be.
    """

    def __init__(self, config: KNNConfig, train_rows: sp.csr_matrix) -> None:
        self.config = config
        n_docs = train_rows.shape[0]
        df = np.bincount(train_rows.indices, minlength=train_rows.shape[1])
        self.idf = (np.log(max(n_docs, 1)) - np.log1p(df)).astype(np.float32)
        lengths = np.asarray(train_rows.sum(axis=1)).ravel()
        self.mean_length = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0

    def __call__(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        cfg = self.config
        out = rows.astype(np.float32, copy=True)
        if cfg.similarity == "cosine":
            return out
        idf = self.idf[out.indices]
        if cfg.similarity == "tfidf":
            out.data = np.sqrt(out.data) * idf
            return out
        lengths = np.asarray(rows.sum(axis=1), dtype=np.float64).ravel()
        norm = (1.0 - cfg.bm25_b) + cfg.bm25_b * lengths / self.mean_length
        per_entry = np.repeat(norm, np.diff(out.indptr)).astype(np.float32)
        k1 = np.float32(cfg.bm25_k1)
        out.data = out.data * (k1 + 1) / (k1 * per_entry + out.data) * idf
        return out


def row_norms(rows: sp.csr_matrix) -> np.ndarray:
    """Euclidean norm of each row of a CSR matrix (float32)."""
    return np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float64).ravel()).astype(
        np.float32
    )


def topk_similarities(
    query: sp.csr_matrix,
    base: sp.csr_matrix,
    *,
    config: KNNConfig,
    base_norms: np.ndarray | None = None,
    exclude_self: bool = False,
    skip: np.ndarray | None = None,
) -> sp.csr_matrix:
    """The ``k_neighbors`` most similar ``base`` rows of each ``query`` row, as float32 CSR.

    ``query`` and ``base`` are weighted rows over the same columns. Row ``i`` of the result
    holds the positive similarities of query row ``i`` to its nearest base rows.
    With ``exclude_self`` (query is base) a row is never its own neighbour; ``skip``
    names, per query row, one base row that is not its neighbour either (a known
    user's own training row when re-scoring their edited history).
    Computed ``block`` query rows at a time (dense ``block x n_base`` at most).
    """
    n_query, n_base = query.shape[0], base.shape[0]
    k = min(config.k_neighbors, n_base)
    cosine = config.similarity == "cosine"
    norms = None  # (query, base) row norms, for cosine
    if cosine:
        base_norms = row_norms(base) if base_norms is None else base_norms
        norms = (base_norms if exclude_self else row_norms(query), base_norms)
    base_t = base.T.tocsr()
    block = max(1, min(_BLOCK_ROWS, _BLOCK_CELLS // max(n_base, 1)))
    rows, cols, vals = [], [], []
    for start in range(0, n_query, block):
        stop = min(start + block, n_query)
        sims = np.asarray((query[start:stop] @ base_t).toarray(), dtype=np.float32)
        if norms is not None:
            denom = norms[0][start:stop, None] * norms[1][None, :]
            denom += np.float32(config.shrinkage)
            np.divide(sims, denom, out=sims, where=denom > 0)
        if exclude_self:
            sims[np.arange(stop - start), np.arange(start, stop)] = 0.0
        if skip is not None:
            sims[np.arange(stop - start), np.asarray(skip[start:stop], np.int64)] = 0.0
        if k < n_base:
            nbrs = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            nbrs = np.broadcast_to(np.arange(n_base), (stop - start, n_base))
        best = np.take_along_axis(sims, nbrs, axis=1)
        keep = best > 0
        rows.append(np.repeat(np.arange(start, stop), keep.sum(axis=1)))
        cols.append(nbrs[keep])
        vals.append(best[keep])
    out = sp.csr_matrix(
        (
            np.concatenate(vals) if vals else np.empty(0, np.float32),
            (
                np.concatenate(rows) if rows else np.empty(0, np.int64),
                np.concatenate(cols) if cols else np.empty(0, np.int64),
            ),
        ),
        shape=(n_query, n_base),
        dtype=np.float32,
    )
    out.sort_indices()
    return out


def _csr_state(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.data": m.data.astype(np.float32),
        f"{prefix}.indices": m.indices.astype(np.int32),
        f"{prefix}.indptr": m.indptr.astype(np.int64),
    }


def _user_items(dataset: Dataset, implicit: bool) -> sp.csr_matrix:
    x = dataset.matrix.astype(np.float32, copy=True)
    if implicit:
        x.data[:] = 1.0
    return x


class _KNNBase(Recommender, UnlearningModel):
    """What item- and user-kNN share: config, training matrix, similarity state."""

    config_class = KNNConfig
    config: KNNConfig
    #: Which side the neighbours are on: "item" (similarity_ is n_items^2) or "user".
    _neighbor_side: ClassVar[str] = "item"
    #: Training users x items matrix (binarised when ``implicit``), float32 CSR.
    user_items_: Fitted[sp.csr_matrix] = Fitted()
    #: Neighbour similarities, float32 CSR (see the subclasses for its orientation).
    similarity_: Fitted[sp.csr_matrix] = Fitted()
    #: The differential-privacy report of the fit (None without ``dp_epsilon``).
    privacy_: dict[str, Any] | None = None

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = _csr_state("similarity", self.similarity_)
        arrays.update(_csr_state("user_items", self.user_items_))
        return arrays, {}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_users, n_items = self._seen.shape
        self.user_items_ = arrays.csr("user_items", (n_users, n_items))
        n = n_items if self._neighbor_side == "item" else n_users
        self.similarity_ = arrays.csr("similarity", (n, n))
        self._prepare()

    def _prepare(self) -> None:
        """Derived, unsaved state rebuilt after fit and load (none by default)."""

    def unlearning_blocker(self) -> str | None:
        """kNN keeps its training matrix, so it can recompute without a user -- unless the
        fit was private: a second noisy release of the same users needs fresh noise."""
        if self.privacy_ is not None:
            return "the fit is differentially private; retrain it with fresh noise"
        return None

    def forget(self, user_idx: np.ndarray) -> None:
        """Drop the users' rows and recompute the similarities from the remaining ones
        (co-counts, norms and weighting statistics all lose the users' contribution)."""
        if (why := self.unlearning_blocker()) is not None:
            from lmrec.errors import ConfigError

            raise ConfigError(f"Cannot forget exactly: {why}.")
        keep = drop_users(self, user_idx)
        self.user_items_ = keep_rows(self.user_items_, keep)
        self._similarities()

    @abstractmethod
    def _similarities(self) -> None:
        """Compute ``similarity_`` from ``user_items_`` (the fit, and again after forgetting)."""


class ItemKNN(_KNNBase, FoldInModel, PrivateModel):
    """Item-based k-nearest-neighbour CF: score items by their similarity to the user's items.

    ``similarity_`` is an ``n_items x n_items`` CSR matrix whose column ``j`` holds
    the (at most ``k_neighbors``) items most similar to item ``j``; scores are
    ``X_u @ similarity_``. New users fold in directly from their item list.

    Parameters
    ----------
    config : KNNConfig, optional
        Hyperparameters; or pass them as keywords (``ItemKNN(k_neighbors=50)``).

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = ItemKNN(k_neighbors=5).fit(checkerboard())
    >>> int(model.similarity_.getnnz(axis=0).max()) <= 5
    True
    """

    name = "itemknn"
    config_class = ItemKNNConfig
    config: ItemKNNConfig
    dp_mechanism = "gaussian on the item-item Gram matrix (user level), cosine"

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        self.user_items_ = _user_items(dataset, self.config.implicit)
        self.privacy_ = None
        if self.config.dp_epsilon is not None:
            check_dp_data(self.config, dataset.n_users, "itemknn")
            self._private_similarities(self.config.dp_epsilon)
            return
        self._similarities()

    def _private_similarities(self, epsilon: float) -> None:
        """Cosine neighbours from the noisy Gram matrix (:func:`~lmrec.models.dp.noisy_gram`):
        ``G_ij / (sqrt(G_ii G_jj) + shrinkage)`` with the noisy norms floored at 1."""
        cfg = self.config
        gram, self.privacy_ = noisy_gram(
            self.user_items_,
            epsilon=epsilon,
            delta=cfg.dp_delta,
            clip=cfg.dp_clip,
            seed=cfg.dp_seed,
            denoise=cfg.dp_denoise,
            denoise_popular=cfg.dp_denoise_popular,
        )
        # Shrinking by a multiple of the noise scale keeps pairs of rare items, whose noisy
        # co-counts are mostly noise, from looking like perfect neighbours.
        shrink = cfg.shrinkage + _DP_SHRINK_SIGMAS * self.privacy_["sigma"]
        norms = np.sqrt(np.maximum(gram.diagonal(), 1.0))
        sims = gram / (norms[:, None] * norms[None, :] + shrink)
        np.fill_diagonal(sims, 0.0)
        n = sims.shape[0]
        k = min(cfg.k_neighbors, n)
        # Column j holds item j's neighbours (as in the exact path): its k largest entries.
        rows = (
            np.argpartition(-sims, k - 1, axis=0)[:k]
            if k < n
            else np.tile(np.arange(n)[:, None], (1, n))
        )
        vals = np.take_along_axis(sims, rows, axis=0)
        cols = np.broadcast_to(np.arange(n), rows.shape)
        keep = vals > 0
        self.similarity_ = sp.csr_matrix(
            (vals[keep].astype(np.float32), (rows[keep], cols[keep])),
            shape=(n, n),
            dtype=np.float32,
        )
        self.similarity_.sort_indices()

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = super()._get_state()
        return arrays, (meta if self.privacy_ is None else {**meta, "privacy": self.privacy_})

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.privacy_ = meta.get("privacy")

    def _similarities(self) -> None:
        items = self.user_items_.T.tocsr()
        weighted = RowWeighting(self.config, items)(items)
        nbrs = topk_similarities(weighted, weighted, config=self.config, exclude_self=True)
        # Row i of nbrs lists item i's neighbours; column j of S must, so transpose.
        self.similarity_ = nbrs.T.tocsr()

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.score_history(self.user_items_[user_idx])

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        scores = history.astype(np.float32) @ self.similarity_
        return np.asarray(scores.toarray(), dtype=np.float32)

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Exact: the score is ``sum_j x_uj S[j, item]``, one term per history item."""
        weights = row_values(self.user_items_, user_idx, history)
        return exact(item, history, weights * column_values(self.similarity_, history, item))


class UserKNN(_KNNBase, FoldInModel):
    """User-based k-nearest-neighbour CF: score items by what the most similar users liked.

    ``similarity_`` is an ``n_users x n_users`` CSR matrix whose row ``u`` holds the
    (at most ``k_neighbors``) training users most similar to user ``u``; scores are
    ``similarity_[u] @ X``. A new user's history is compared with all training users.

    Parameters
    ----------
    config : KNNConfig, optional
        Hyperparameters; or pass them as keywords (``UserKNN(k_neighbors=50)``).
    """

    name = "userknn"
    _neighbor_side = "user"
    #: Weighted training rows and their weighting (rebuilt from ``user_items_``, not saved).
    _weighting: Fitted[RowWeighting] = Fitted()
    _weighted: Fitted[sp.csr_matrix] = Fitted()
    _norms: Fitted[np.ndarray] = Fitted()

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        self.user_items_ = _user_items(dataset, self.config.implicit)
        self._similarities()

    def _similarities(self) -> None:
        self._prepare()
        self.similarity_ = topk_similarities(
            self._weighted,
            self._weighted,
            config=self.config,
            base_norms=self._norms,
            exclude_self=True,
        )

    def _prepare(self) -> None:
        self._weighting = RowWeighting(self.config, self.user_items_)
        self._weighted = self._weighting(self.user_items_)
        self._norms = row_norms(self._weighted)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = self.similarity_[user_idx] @ self.user_items_
        return np.asarray(scores.toarray(), dtype=np.float32)

    def score_history(
        self, history: sp.csr_matrix, *, skip: np.ndarray | None = None
    ) -> np.ndarray:
        query = self._weighting(history)
        sims = topk_similarities(
            query,
            self._weighted,
            config=self.config,
            base_norms=self._norms,
            skip=skip,
        )
        return np.asarray((sims @ self.user_items_).toarray(), dtype=np.float32)

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Occlusion; a known user's edited history is re-scored as in fit: with their own
        training weights and never with themselves as a neighbour."""
        if user_idx is None:
            return super()._attribute(item, history, user_idx)
        own = sp.csr_matrix(self.user_items_[user_idx])

        def score(rows: list[np.ndarray]) -> np.ndarray:
            pattern = history_matrix(rows, self.n_items)
            weighted = sp.csr_matrix(pattern.multiply(own))
            return self.score_history(weighted, skip=np.full(len(rows), user_idx))[:, item]

        full, contributions = occlusion(score, history)
        return Attribution(item, history, contributions, full, "occlusion")
