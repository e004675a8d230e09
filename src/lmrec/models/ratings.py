"""Rating prediction: biased matrix factorisation and baseline-corrected Pearson item-kNN.

Both learn from the explicit ``rating`` column of the data set (a :class:`ConfigError`
says so when it has none) and declare :class:`~lmrec.models.capabilities.RatingModel`:
``predict_ratings`` gives rating estimates (clipped to the training ratings' range) for
RMSE and MAE, and ``score`` ranks items by the same estimate (unclipped).

Baselines (Koren, 2008)
    ``b_ui = mu + b_u + b_i``, fitted by alternating ridge regression
    (``b_i = sum_u (r_ui - mu - b_u) / (reg_item + n_i)``, then the same for users).
:class:`BiasedMF` (``"biasedmf"``)
    ``r_ui = mu + b_u + b_i + p_u . q_i`` (Funk/Koren "SVD"), fitted by alternating
    least squares: each user's ``[p_u, b_u]`` and each item's ``[q_i, b_i]`` is a ridge
    regression on its own ratings, with weighted-lambda regularisation ``reg * n``
    (Zhou et al., 2008) so heavy users and popular items are not under-regularised,
    solved by a few warm-started conjugate-gradient steps (Takács et al., 2011).
:class:`KNNBaseline` (``"knnbaseline"``)
    ``r_ui = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j |s_ij|`` over the ``k_neighbors``
    items ``j`` rated by ``u`` most similar to ``i`` (Koren, 2008; Surprise's
    ``KNNBaseline``). ``s_ij`` is the Pearson correlation of the two items' ratings over
    their common users -- mean-centred (``pearson``) or on baseline residuals
    (``pearson_baseline``) -- shrunk towards 0 by ``(n_ij - 1) / (n_ij - 1 + shrinkage)``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import DotProductModel, FitOptions, RatingModel
from lmrec.models.config import ModelConfig, search
from lmrec.models.explain import Attribution, check_attribution
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted


def _ratings(dataset: Dataset, model: str) -> sp.csr_matrix:
    """The users x items matrix of explicit ratings (float64), or a clear ConfigError."""
    if not dataset.has_ratings:
        raise ConfigError(
            f"{model} predicts explicit ratings and needs a 'rating' column; the data set "
            f"{dataset.name!r} has none (implicit feedback). Use a ranking model (ease, als, "
            "itemknn) or read the file with its rating column."
        )
    m = sp.csr_matrix(
        (
            dataset.column("rating").astype(np.float64),
            dataset.column("item_idx"),
            np.concatenate(([0], np.cumsum(dataset.user_counts()))),
        ),
        shape=(dataset.n_users, dataset.n_items),
    )
    if not np.isfinite(m.data).all():
        raise ConfigError(f"The ratings of {dataset.name!r} hold NaN or infinite values.")
    return m


def fit_baselines(
    r: sp.csr_matrix, *, reg_user: float, reg_item: float, iterations: int = 10
) -> tuple[float, np.ndarray, np.ndarray]:
    """``mu``, ``b_u``, ``b_i`` of ``r_ui ~ mu + b_u + b_i`` by alternating ridge regression."""
    mu = float(r.data.mean())
    rows = np.repeat(np.arange(r.shape[0]), np.diff(r.indptr))
    cols = r.indices
    n_u = np.diff(r.indptr).astype(np.float64)
    n_i = np.bincount(cols, minlength=r.shape[1]).astype(np.float64)
    b_u, b_i = np.zeros(r.shape[0]), np.zeros(r.shape[1])
    for _ in range(iterations):
        b_i = np.bincount(cols, weights=r.data - mu - b_u[rows], minlength=r.shape[1]) / (
            reg_item + n_i
        )
        b_u = np.bincount(rows, weights=r.data - mu - b_i[cols], minlength=r.shape[0]) / (
            reg_user + n_u
        )
    return mu, b_u, b_i


class _RatingBase(Recommender, RatingModel):
    """What both rating models share: the clip range and pair prediction."""

    low_: Fitted[float] = Fitted()
    high_: Fitted[float] = Fitted()

    def _set_range(self, r: sp.csr_matrix) -> None:
        self.low_, self.high_ = float(r.data.min()), float(r.data.max())

    def predict_ratings(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Rating estimates of the pairs, clipped to the training ratings' range."""
        self._check_fitted()
        u = np.asarray(user_idx, np.int64)
        i = np.asarray(item_idx, np.int64)
        if u.shape != i.shape:
            raise ConfigError(
                f"user_idx and item_idx must have one shape; got {u.shape}, {i.shape}."
            )
        return np.clip(self._predict_pairs(u, i), self.low_, self.high_)

    def _predict_pairs(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.empty(len(u))
        for value in np.unique(u):
            sel = np.flatnonzero(u == value)
            out[sel] = self._score(np.array([value]))[0, i[sel]]
        return out

    # ------------------------------------------------------- ratings given at request time
    def score_ratings(
        self, items: np.ndarray, ratings: np.ndarray, targets: np.ndarray
    ) -> np.ndarray:
        """Scores of ``targets`` for a user who gave ``ratings`` to ``items`` (dense indices).

        The user is folded in the way the model fits its users (see :meth:`_rating_terms`),
        so a known user's own ratings give back (for ``biasedmf``: up to its solver's
        tolerance) the scores of :meth:`score`. Unclipped, like ``score``; clip to
        ``[low_, high_]`` for rating estimates. Used by explanations and the deletion test
        (:func:`lmrec.eval.faithfulness.rating_deletion_test`), and for new users who rate
        a few items.

        Raises
        ------
        ConfigError
            Mismatched lengths, an index out of range, a repeated item or a non-finite
            rating.
        """
        self._check_fitted()
        items = np.asarray(items, np.int64).reshape(-1)
        values = np.asarray(ratings, np.float64).reshape(-1)
        targets = np.asarray(targets, np.int64).reshape(-1)
        if len(items) != len(values):
            raise ConfigError(
                f"score_ratings needs one rating per item; got {len(items)} items and "
                f"{len(values)} ratings."
            )
        for name, idx in (("items", items), ("targets", targets)):
            if len(idx) and (idx.min() < 0 or idx.max() >= self.n_items):
                raise ConfigError(f"score_ratings: {name} must lie in [0, {self.n_items}).")
        if len(np.unique(items)) != len(items):
            raise ConfigError("score_ratings: each item may be rated once.")
        if not np.isfinite(values).all():
            raise ConfigError("score_ratings: ratings must be finite numbers.")
        base, terms = self._rating_terms(items, values, targets)
        return base + terms.sum(axis=1)

    def known_ratings(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """``(items, ratings)`` the known user ``user_idx`` gave in training (dense indices)."""
        self._check_fitted()
        u = int(user_idx)
        if not 0 <= u < len(self.user_ids_):
            raise ConfigError(f"User index {u} is out of range [0, {len(self.user_ids_)}).")
        return self._user_ratings(u)

    def attribute(
        self, item_idx: int, history: np.ndarray | None = None, *, user_idx: int | None = None
    ) -> Attribution:
        """Exact, for known users: the score of ``item_idx`` is a baseline plus one term per
        rated item (see :meth:`_rating_terms`); each term is that item's contribution, in
        rating units, and the baseline is the part no rated item explains. ``score`` is the
        baseline plus the terms, i.e. :meth:`score_ratings` of the user's own ratings.

        A history given as items (a new user) has no ratings, so nothing to attribute:
        ConfigError, as for the other arguments :meth:`Recommender.attribute` rejects
        (:meth:`score_ratings` scores a new user's ratings).
        """
        self._check_fitted()
        if history is not None:
            raise ConfigError(
                f"{self.name} explains known users only: its predictions come from the "
                "user's ratings, and a list of items has no ratings. Pass user= (a known "
                "user) instead of items=."
            )
        if user_idx is None:
            raise ConfigError("attribute needs exactly one of history= or user_idx=.")
        item, hist, _ = check_attribution(self, True, item_idx, None, user_idx)
        rated, values = self.known_ratings(int(user_idx))
        base, terms = self._rating_terms(rated, values, np.array([item]))
        by_item: dict[int, float] = {}
        for j, term in zip(rated.tolist(), terms[0].tolist(), strict=True):
            by_item[j] = by_item.get(j, 0.0) + term
        contributions = np.array([by_item.get(j, 0.0) for j in hist.tolist()], np.float32)
        return Attribution(item, hist, contributions, float(base[0] + terms[0].sum()), "exact")

    @abstractmethod
    def _rating_terms(
        self, rated: np.ndarray, ratings: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(baseline, terms)``: the scores of ``targets`` for a user who gave ``ratings``
        to ``rated`` are ``baseline + terms.sum(1)``; ``terms[t, j]`` (float64,
        (len(targets), len(rated))) is the part of target ``t``'s score due to rated item
        ``j``."""

    @abstractmethod
    def _user_ratings(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """``(items, ratings)`` of known user ``u`` as the model keeps them (int64, float64)."""

    def _range_meta(self) -> dict[str, Any]:
        return {"low": self.low_, "high": self.high_}

    def _read_range(self, meta: dict[str, Any]) -> None:
        self.low_, self.high_ = float(meta["low"]), float(meta["high"])


# ------------------------------------------------------------------------- biased MF


class BiasedMFConfig(ModelConfig):
    """Hyperparameters of :class:`BiasedMF`."""

    renamed: ClassVar[dict[str, str]] = {"reg": "l2", "reg_bias": "l2_bias"}

    factors: int = Field(default=50, ge=1, json_schema_extra=search("int_log", 8, 200))
    """Latent dimensions of ``p_u`` and ``q_i``."""
    l2: float = Field(default=0.12, gt=0, json_schema_extra=search("float_log", 0.01, 1.0))
    """Weighted-lambda regularisation: each solve adds ``reg * n`` (its number of ratings)."""
    l2_bias: float = Field(default=5.0, ge=0, json_schema_extra=search("float_log", 0.1, 50.0))
    """Ridge penalty of the baselines ``b_u``, ``b_i`` (as a number of pseudo-ratings)."""
    iterations: int = Field(default=15, ge=1)
    """ALS sweeps (users then items)."""
    cg_steps: int = Field(default=4, ge=1)
    """Conjugate-gradient steps per row and half-sweep (warm-started)."""
    init_std: float = Field(default=0.1, gt=0)
    """Standard deviation of the random initial item factors."""
    seed: int = Field(default=0, ge=0)
    """Seed of the initial factors."""


class BiasedMF(_RatingBase, DotProductModel):
    """Biased matrix factorisation for explicit ratings, fitted by weighted-lambda ALS.

    ``r_ui = mu + b_u + b_i + p_u . q_i``; see the module docstring.

    Examples
    --------
    >>> import pandas as pd
    >>> from lmrec.data import Dataset
    >>> frame = pd.DataFrame({"user": ["a", "a", "b", "b", "c"], "item": ["x", "y", "x", "z", "y"],
    ...                       "rating": [5.0, 3.0, 4.0, 2.0, 4.0]})
    >>> model = BiasedMF(factors=2, iterations=5).fit(Dataset.from_frame(frame))
    >>> bool(2.0 <= model.predict_ratings([2], [2])[0] <= 5.0)
    True
    """

    name = "biasedmf"
    config_class = BiasedMFConfig
    config: BiasedMFConfig
    user_factors_: Fitted[np.ndarray] = Fitted()
    item_factors_: Fitted[np.ndarray] = Fitted()
    user_bias_: Fitted[np.ndarray] = Fitted()
    item_bias_: Fitted[np.ndarray] = Fitted()
    mean_: Fitted[float] = Fitted()
    #: The training ratings (float32 CSR), kept to explain known users' scores; None for
    #: a model file saved before biasedmf kept them (it recommends, but cannot explain).
    ratings_: sp.csr_matrix | None = None

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        cfg = self.config
        r = _ratings(dataset, "biasedmf")
        self.ratings_ = sp.csr_matrix(r, dtype=np.float32)
        self._set_range(r)
        mu, b_u, b_i = fit_baselines(r, reg_user=cfg.l2_bias, reg_item=cfg.l2_bias)
        rng = np.random.default_rng(cfg.seed)
        f = cfg.factors
        users = np.hstack([np.zeros((r.shape[0], f)), b_u[:, None]])
        items = np.hstack([rng.normal(0.0, cfg.init_std, (r.shape[1], f)), b_i[:, None]])
        rc = sp.csr_matrix(r.T)  # items x users
        for _ in range(cfg.iterations):
            users = _als_side(
                r, items[:, :f], mu + items[:, f], cfg.l2, cfg.l2_bias, users, cfg.cg_steps
            )
            items = _als_side(
                rc, users[:, :f], mu + users[:, f], cfg.l2, cfg.l2_bias, items, cfg.cg_steps
            )
        p, b_u, q, b_i = users[:, :f], users[:, f], items[:, :f], items[:, f]
        self.mean_ = mu
        self.user_factors_, self.item_factors_ = p.astype(np.float32), q.astype(np.float32)
        self.user_bias_, self.item_bias_ = b_u.astype(np.float32), b_i.astype(np.float32)
        self._derived = {}

    def item_vectors(self) -> np.ndarray:
        """``[q_i, b_i, 1]`` rows (float32)."""
        return self._memo(
            "items",
            lambda: np.ascontiguousarray(
                np.hstack(
                    [
                        self.item_factors_,
                        self.item_bias_[:, None],
                        np.ones((len(self.item_bias_), 1), np.float32),
                    ]
                ),
                dtype=np.float32,
            ),
        )

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """``[p_u, 1, mu + b_u]`` rows (float32)."""
        idx = np.asarray(user_idx, np.int64)
        return np.ascontiguousarray(
            np.hstack(
                [
                    self.user_factors_[idx],
                    np.ones((len(idx), 1), np.float32),
                    (self.mean_ + self.user_bias_[idx])[:, None],
                ]
            ),
            dtype=np.float32,
        )

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_vectors(user_idx) @ self.item_vectors().T

    def _predict_pairs(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        dots = np.einsum(
            "nf,nf->n",
            self.user_factors_[u].astype(np.float64),
            self.item_factors_[i].astype(np.float64),
        )
        return self.mean_ + self.user_bias_[u] + self.item_bias_[i] + dots

    def _rating_terms(
        self, rated: np.ndarray, ratings: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The user's ``[p, b]`` is the ridge regression a fit's user half-step solves
        (exactly here, not by a few CG steps): ``w = A^-1 X^T y`` with rows
        ``x_j = [q_j, 1]``, ``y_j = r_j - mu - b_j`` and ``A = X^T X + diag(reg * n, ...,
        reg_bias)``. So the score ``mu + b_t + x_t . w`` is the baseline ``mu + b_t`` plus
        ``sum_j (x_t^T A^-1 x_j) y_j``: one term per rated item, the user's bias included
        (as implicit's ``explain`` decomposes ALS)."""
        cfg = self.config
        base = self.mean_ + self.item_bias_[targets].astype(np.float64)
        if len(rated) == 0:
            return base, np.zeros((len(targets), 0))

        def design(idx: np.ndarray) -> np.ndarray:
            q = self.item_factors_[idx].astype(np.float64)
            return np.hstack([q, np.ones((len(idx), 1))])

        x = design(rated)
        y = ratings - self.mean_ - self.item_bias_[rated]
        penalty = np.append(np.full(cfg.factors, cfg.l2 * len(rated)), cfg.l2_bias)
        a = x.T @ x + np.diag(np.maximum(penalty, 1e-9))
        weights = design(targets) @ np.linalg.solve(a, x.T)  # (targets, rated)
        return base, weights * y

    def _user_ratings(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        r = self.ratings_
        if r is None:
            raise ConfigError(
                "This biasedmf model was saved by an lmrec version that did not keep its "
                "training ratings, which explanations of known users need. Its "
                "recommendations are unaffected; refit it (lmrec train --model biasedmf ...) "
                "to explain them."
            )
        lo, hi = r.indptr[u], r.indptr[u + 1]
        return r.indices[lo:hi].astype(np.int64), r.data[lo:hi].astype(np.float64)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
        }
        r = self.ratings_
        if r is not None:
            arrays["ratings.data"] = r.data.astype(np.float32)
            arrays["ratings.indices"] = r.indices.astype(np.int64)
            arrays["ratings.indptr"] = r.indptr.astype(np.int64)
        return arrays, {"mean": self.mean_, **self._range_meta()}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_u, n_i = self._seen.shape
        f = self.config.factors
        self.user_factors_ = arrays.float("user_factors", (n_u, f))
        self.item_factors_ = arrays.float("item_factors", (n_i, f))
        self.user_bias_ = arrays.float("user_bias", (n_u,))
        self.item_bias_ = arrays.float("item_bias", (n_i,))
        self.ratings_ = (  # absent from files saved before biasedmf kept its ratings
            sp.csr_matrix(arrays.csr("ratings", (n_u, n_i)), dtype=np.float32)
            if "ratings.data" in arrays
            else None
        )
        self.mean_ = float(meta["mean"])
        self._read_range(meta)


def _als_side(
    r: sp.csr_matrix,
    other: np.ndarray,
    offset: np.ndarray,
    reg: float,
    reg_bias: float,
    start: np.ndarray,
    steps: int,
) -> np.ndarray:
    """Every row's ``[x, b]`` of ``r_row ~ offset + b + x . other_j`` by ridge regression.

    ``offset`` holds the terms fixed in this half-step (``mu + b_j`` of the other side);
    the penalty is ``reg * n_row`` on ``x`` and ``reg_bias`` on ``b``. Each row's normal
    equations are solved by ``steps`` conjugate-gradient steps from ``start`` (the previous
    solution), as implicit's ALS does: ``O(nnz * f)`` per step instead of forming every
    ``f x f`` Gram matrix (``O(nnz * f^2)``). Rows without ratings get zeros.
    """
    n_rows, f = r.shape[0], other.shape[1]
    counts = np.diff(r.indptr)
    nonempty = counts > 0
    design = np.hstack([other, np.ones((other.shape[0], 1))])[r.indices]  # one row per rating
    rows = np.repeat(np.arange(n_rows), counts)
    lam = np.hstack([np.repeat(reg * counts[:, None], f, axis=1), np.full((n_rows, 1), reg_bias)])
    lam = np.maximum(lam, 1e-9)

    # Sums the (nnz, F) per-rating rows within each CSR row: one sparse product.
    summer = sp.csr_matrix((np.ones(r.nnz), np.arange(r.nnz), r.indptr), shape=(n_rows, r.nnz))

    def per_row(values: np.ndarray) -> np.ndarray:
        return np.asarray(summer @ values)

    def apply(v: np.ndarray) -> np.ndarray:  # (X_u^T X_u + Lambda_u) v_u for every row
        dots = np.einsum("nf,nf->n", design, v[rows])
        return per_row(dots[:, None] * design) + lam * v

    x = np.where(nonempty[:, None], start, 0.0)
    res = per_row((r.data - offset[r.indices])[:, None] * design) - apply(x)
    p = res.copy()
    rs = np.einsum("nf,nf->n", res, res)
    for _ in range(steps):
        ap = apply(p)
        denom = np.einsum("nf,nf->n", p, ap)
        alpha = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 1e-300)
        x += alpha[:, None] * p
        res -= alpha[:, None] * ap
        rs_new = np.einsum("nf,nf->n", res, res)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-300)
        p = res + beta[:, None] * p
        rs = rs_new
    return x


# ------------------------------------------------------------------------ kNN baseline


class KNNBaselineConfig(ModelConfig):
    """Hyperparameters of :class:`KNNBaseline`."""

    renamed: ClassVar[dict[str, str]] = {"reg_user": "l2_user", "reg_item": "l2_item"}

    k_neighbors: int = Field(default=40, ge=1, json_schema_extra=search("int_log", 10, 200))
    """Most similar items rated by the user that enter a prediction."""
    similarity: Literal["pearson_baseline", "pearson"] = "pearson_baseline"
    """Pearson correlation on baseline residuals, or mean-centred (each item's mean)."""
    shrinkage: float = Field(
        default=100.0, ge=0, json_schema_extra=search("float_log", 1.0, 1000.0)
    )
    """``s_ij *= (n_ij - 1) / (n_ij - 1 + shrinkage)``: trust correlations with many common users."""
    min_support: int = Field(default=1, ge=1)
    """Pairs of items with fewer common users have similarity 0."""
    l2_user: float = Field(default=15.0, ge=0, json_schema_extra=search("float_log", 1.0, 50.0))
    """Ridge penalty of the user baselines."""
    l2_item: float = Field(default=10.0, ge=0, json_schema_extra=search("float_log", 1.0, 50.0))
    """Ridge penalty of the item baselines."""


class KNNBaseline(_RatingBase):
    """Item-based kNN on baseline residuals with (baseline-)Pearson similarity.

    See the module docstring for the formula.

    Examples
    --------
    >>> import pandas as pd
    >>> from lmrec.data import Dataset
    >>> frame = pd.DataFrame({"user": ["a", "a", "b", "b", "c", "c"],
    ...                       "item": ["x", "y", "x", "y", "x", "y"],
    ...                       "rating": [5.0, 4.0, 2.0, 1.0, 4.0, 3.0]})
    >>> model = KNNBaseline(similarity="pearson", shrinkage=0.0).fit(Dataset.from_frame(frame))
    >>> round(float(model.similarity_[0, 1]), 6)  # centred x and y are equal
    1.0
    """

    name = "knnbaseline"
    config_class = KNNBaselineConfig
    config: KNNBaselineConfig
    similarity_: Fitted[np.ndarray] = Fitted()
    residuals_: Fitted[sp.csr_matrix] = Fitted()
    user_bias_: Fitted[np.ndarray] = Fitted()
    item_bias_: Fitted[np.ndarray] = Fitted()
    mean_: Fitted[float] = Fitted()
    #: KNNBaseline keeps a dense item x item similarity; fine to tens of thousands of items.
    max_items: ClassVar[int] = 40_000

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        cfg = self.config
        if dataset.n_items > self.max_items:
            raise ConfigError(
                f"knnbaseline keeps a dense item x item similarity; {dataset.n_items} items is more "
                f"than {self.max_items}. Use biasedmf for large catalogs."
            )
        r = _ratings(dataset, "knnbaseline")
        self._set_range(r)
        mu, b_u, b_i = fit_baselines(r, reg_user=cfg.l2_user, reg_item=cfg.l2_item)
        rows = np.repeat(np.arange(r.shape[0]), np.diff(r.indptr))
        resid = sp.csr_matrix(
            (r.data - mu - b_u[rows] - b_i[r.indices], r.indices, r.indptr), shape=r.shape
        )
        self.similarity_ = _pearson(r, resid, cfg).astype(np.float32)
        self.residuals_ = resid
        self.mean_, self.user_bias_, self.item_bias_ = mu, b_u, b_i

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(user_idx), self.n_items), np.float32)
        items = np.arange(self.n_items)
        for row, u in enumerate(np.asarray(user_idx, np.int64)):
            out[row] = self._user_predictions(int(u), items)
        return out

    def _predict_pairs(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.empty(len(u))
        order = np.argsort(u, kind="stable")
        bounds = np.flatnonzero(np.diff(u[order])) + 1
        for sel in np.split(order, bounds):
            out[sel] = self._user_predictions(int(u[sel[0]]), i[sel])
        return out

    def _user_predictions(self, u: int, items: np.ndarray) -> np.ndarray:
        """Predictions of user ``u`` for ``items`` (float64)."""
        base, terms = self._prediction_terms(u, items)
        return base + terms.sum(axis=1)

    def _prediction_terms(self, u: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(baseline, terms)`` of known user ``u``'s predictions for ``items`` from the
        stored residuals (see :meth:`_votes`)."""
        lo, hi = self.residuals_.indptr[u], self.residuals_.indptr[u + 1]
        rated, z = self.residuals_.indices[lo:hi], self.residuals_.data[lo:hi]
        base = self.mean_ + self.user_bias_[u] + self.item_bias_[items]
        return base, self._votes(rated, z, items)

    def _votes(self, rated: np.ndarray, z: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``terms[:, j]`` (float64, (len(items), len(rated))): the vote of rated item ``j``
        on each of ``items``, its share of the positive similarities among the item's ``k``
        most similar rated items, times the user's residual ``z_j`` on it; 0 outside those
        ``k``. A prediction is the baseline plus its row's sum."""
        k = self.config.k_neighbors
        if len(rated) == 0:
            return np.zeros((len(items), 0))
        s = self.similarity_[np.ix_(items, rated)].astype(np.float64)
        if len(rated) > k:  # keep each item's k most similar rated items
            cut = np.argpartition(-s, k - 1, axis=1)[:, k:]
            np.put_along_axis(s, cut, 0.0, axis=1)
        s = np.where(s > 0, s, 0.0)  # only positive similarities vote, as in Surprise
        den = s.sum(axis=1, keepdims=True)
        weights = np.divide(s, den, out=np.zeros_like(s), where=den > 0)
        return weights * z

    def _rating_terms(
        self, rated: np.ndarray, ratings: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The user's bias is the ridge regression the fit's last baseline step solves,
        ``b_u = sum_j (r_j - mu - b_j) / (l2_user + n)``; the baseline is
        ``mu + b_u + b_t`` and each rated item votes with its residual
        ``r_j - mu - b_u - b_j`` (:meth:`_votes`). A known user's own ratings give back
        the stored bias, so the scores equal :meth:`score`'s."""
        y = ratings - self.mean_ - self.item_bias_[rated]
        b_u = float(y.sum() / (self.config.l2_user + len(rated))) if len(rated) else 0.0
        base = self.mean_ + b_u + self.item_bias_[targets]
        return base, self._votes(rated, y - b_u, targets)

    def _user_ratings(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        r = self.residuals_
        lo, hi = r.indptr[u], r.indptr[u + 1]
        items = r.indices[lo:hi].astype(np.int64)
        values = r.data[lo:hi] + self.mean_ + self.user_bias_[u] + self.item_bias_[items]
        return items, values.astype(np.float64)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        r = self.residuals_
        arrays = {
            "similarity": self.similarity_,
            "user_bias": self.user_bias_.astype(np.float32),
            "item_bias": self.item_bias_.astype(np.float32),
            "residuals.data": r.data.astype(np.float32),
            "residuals.indices": r.indices.astype(np.int64),
            "residuals.indptr": r.indptr.astype(np.int64),
        }
        return arrays, {"mean": self.mean_, **self._range_meta()}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_u, n_i = self._seen.shape
        self.similarity_ = arrays.float("similarity", (n_i, n_i))
        self.user_bias_ = arrays.float("user_bias", (n_u,)).astype(np.float64)
        self.item_bias_ = arrays.float("item_bias", (n_i,)).astype(np.float64)
        self.residuals_ = sp.csr_matrix(arrays.csr("residuals", (n_u, n_i)), dtype=np.float64)
        self.mean_ = float(meta["mean"])
        self._read_range(meta)


def _pearson(r: sp.csr_matrix, resid: sp.csr_matrix, cfg: KNNBaselineConfig) -> np.ndarray:
    """Shrunk Pearson correlation of every item pair over their common users (dense)."""
    if cfg.similarity == "pearson_baseline":
        x = sp.csc_matrix(resid)
    else:  # mean-centred: subtract each item's mean rating
        c = sp.csc_matrix(r)
        n_i = np.diff(c.indptr)
        sums = np.bincount(
            np.repeat(np.arange(c.shape[1]), n_i), weights=c.data, minlength=c.shape[1]
        )
        means = np.divide(sums, n_i, out=np.zeros(c.shape[1]), where=n_i > 0)
        x = sp.csc_matrix((c.data - np.repeat(means, n_i), c.indices, c.indptr), shape=c.shape)
    mask = x.copy()
    mask.data = np.ones_like(mask.data)
    sq = x.multiply(x)
    # Over the users both items rated: sum x_i x_j, sum x_i^2 (where j rated), sum x_j^2 (where i rated).
    cross = (x.T @ x).toarray()
    si = (sq.T @ mask).toarray()
    common = (mask.T @ mask).toarray()
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = cross / np.sqrt(si * si.T)
    rho = np.where(np.isfinite(rho), rho, 0.0)
    shrink = np.maximum(common - 1, 0) / np.maximum(common - 1 + cfg.shrinkage, 1e-12)
    sim = rho * shrink
    sim[common < max(cfg.min_support, 2)] = 0.0
    np.fill_diagonal(sim, 0.0)
    return sim
