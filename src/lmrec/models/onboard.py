"""Recommendations for users as they arrive: attributes first, then their first items.

A new user has attributes (age, gender, ...) and, soon, a few interactions. :class:`Onboard`
is one closed-form linear model for that whole arrival: the scores of a user who has
``n`` items are

``score(u) = a_u W_b(n) + n^-r x_u V``

where ``a_u`` holds the one-hot codes of the user's attribute groups (by default age
group, gender and age group x gender, plus an intercept; see
:mod:`lmrec.models.attributes`), ``b(n)`` is the largest of ``prefixes`` not above ``n``
(each bucket has its own attribute weights, so the attributes weigh less as items
arrive), ``x_u`` is the binary item history and ``V`` an item-to-item matrix, shared
by all stages. ``r`` is ``length_norm``: with ``r = 0`` every known item adds a full row
of ``V``, so one ``V`` must serve a single item and the sum of twenty; with the default
``r = 1/2`` the rows of short and long histories keep comparable scales.

Training imitates arrival: every training user contributes, for each prefix length
``p``, a row whose input is their first ``p`` interactions (by timestamp; random order
without timestamps) and whose target is everything they did *afterwards*; ``augment``
more rows per small ``p`` use ``p`` random items among the user's first
``augment_window`` (first sessions are unordered in practice). ``[W; V]`` is the ridge
solution on those rows (``l2_attributes`` on the attribute weights of stage 0,
``l2_attributes_items`` on those of the stages with items, ``l2_items`` on ``V``,
intercepts nearly free). With ``n = 0`` the model is smoothed popularity within the
user's groups; as items arrive, ``V`` -- learned from what early items predict about
later ones -- takes over.

The ridge system has ``n_items + n_buckets * n_attribute_groups`` unknowns per column,
so, like EASE, it suits catalogs up to tens of thousands of items.

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, ModelFileError
from lmrec.models.attributes import DEFAULT_BINS, AttributeGroups
from lmrec.models.base import Recommender, history_matrix
from lmrec.models.capabilities import FitOptions, FoldInModel
from lmrec.models.config import ModelConfig, search
from lmrec.models.explain import Attribution, occlusion
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted

#: Ridge penalty of the per-bucket intercepts (nearly free: they carry popularity).
INTERCEPT_L2 = 1e-3


class OnboardConfig(ModelConfig):
    """Hyperparameters of :class:`Onboard`."""

    groups: tuple[tuple[str, ...], ...] = (("age",), ("gender",), ("age", "gender"))
    """User attribute combinations, each one-hot encoded by group (numeric columns in
    bins); combinations naming columns the users table lacks are left out."""
    bins: dict[str, tuple[float, ...]] = Field(default_factory=lambda: dict(DEFAULT_BINS))
    """Bin edges of numeric attributes (others: quintiles)."""
    prefixes: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20)
    """History lengths trained as arrival stages; each has its own attribute weights."""
    l2_attributes: float = Field(
        default=30.0, gt=0, json_schema_extra=search("float_log", 1.0, 1000.0)
    )
    """Ridge penalty of the attribute weights with no items known, stage 0 (shrinks groups
    towards popularity)."""
    l2_attributes_items: float = Field(
        default=300.0, gt=0, json_schema_extra=search("float_log", 1.0, 10000.0)
    )
    """Ridge penalty of the attribute weights of the stages with items (n >= 1): once items
    are known they say more than the groups. Chosen on validation users of MovieLens-100K."""
    l2_items: float = Field(
        default=150.0, gt=0, json_schema_extra=search("float_log", 10.0, 5000.0)
    )
    """Ridge penalty of the item-to-item weights ``V`` (150 with ``length_norm`` 0.5, chosen
    with it on validation users; 300 was best for summed rows)."""
    augment: int = Field(default=3, ge=0, json_schema_extra=search("int", 0, 10))
    """Extra rows per user and small prefix length from random early items."""
    length_norm: float = Field(
        default=0.5, ge=0.0, le=1.0, json_schema_extra=search("float", 0.0, 1.0)
    )
    """History rows are divided by ``n ** length_norm`` (``n`` items), in training and in
    scoring; 0 sums the known items' rows of ``V``, 1 averages them. The default, 0.5, was
    chosen on held-out users of MovieLens-100K (better at 1, 3 and 5 known items than 0)."""
    augment_window: int = Field(default=10, ge=1)
    """Early items the augmented rows draw from."""
    seed: int = Field(default=0, ge=0)
    """Seed of the augmented rows (and of the item order without timestamps)."""

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or v[0] != 0 or any(b <= a for a, b in zip(v, v[1:], strict=False)) or min(v) < 0:
            raise ValueError(f"prefixes must start at 0 and increase strictly; got {v}")
        return v


class Onboard(Recommender, FoldInModel):
    """Cold-start users: user attributes mixed with the first items as they arrive.

    Parameters
    ----------
    config : OnboardConfig, optional
        Hyperparameters; or pass them as keywords (``Onboard(l2_items=100.0)``).

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = Onboard(l2_items=10.0).fit(checkerboard())
    >>> model.V_.shape
    (30, 30)
    """

    name = "onboard"
    config_class = OnboardConfig
    config: OnboardConfig

    #: Attribute weights per bucket, float32 (n_buckets, 1 + n_features, n_items).
    W_: Fitted[np.ndarray] = Fitted()
    #: Item-to-item weights, float32 (n_items, n_items).
    V_: Fitted[np.ndarray] = Fitted()
    #: The users' attribute groups.
    groups_: Fitted[AttributeGroups] = Fitted()
    #: The ``length_norm`` ``V`` was fitted with (0 for model files saved before it existed).
    length_norm_: Fitted[float] = Fitted()

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        cfg = self.config
        n_users, n_items = dataset.n_users, dataset.n_items
        self.groups_ = AttributeGroups(dataset.users, cfg.groups, n_users, cfg.bins)
        self.length_norm_ = cfg.length_norm
        nf = 1 + self.groups_.n_features
        nb = len(cfg.prefixes)
        size = nb * nf + n_items
        if size * size * 8 * 3 > _available_memory():
            raise ConfigError(
                f"Onboard solves a {size:,} x {size:,} system for {n_items:,} items; that does "
                "not fit in memory. Filter rare items out first, or use ease/als."
            )
        rng = np.random.default_rng(cfg.seed)
        users = np.asarray(dataset.column("user_idx"), np.int64)
        items = np.asarray(dataset.column("item_idx"), np.int64)
        counts = np.bincount(users, minlength=n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        time = (
            np.asarray(dataset.column("timestamp"), np.float64)
            if dataset.has_timestamps
            else rng.random(len(users))
        )
        rank = _rank_within_user(users, time, starts)
        attrs = np.hstack(
            [np.ones((n_users, 1), np.float32), self.groups_.one_hot(np.arange(n_users))]
        )
        inputs, targets = [], []
        plan = [(b, p, False) for b, p in enumerate(cfg.prefixes)]
        plan += [
            (b, p, True)
            for _ in range(cfg.augment)
            for b, p in enumerate(cfg.prefixes)
            if 0 < p < cfg.augment_window
        ]
        for b, p, shuffled in plan:
            if shuffled:  # p random items among each user's first augment_window
                early = rank < cfg.augment_window
                key = rng.random(len(rank)) + (~early) * 2.0
                order = _rank_within_user(users, key, starts)
                known = order < p
            else:
                known = rank < p
            rows = np.flatnonzero(counts > p)
            x_in = _pattern(users[known], items[known], (n_users, n_items))[rows]
            x_in *= np.float32(max(p, 1) ** -cfg.length_norm)
            x_out = _pattern(users[~known], items[~known], (n_users, n_items))[rows]
            a = np.zeros((len(rows), nb * nf), np.float32)
            a[:, b * nf : (b + 1) * nf] = attrs[rows]
            inputs.append(sp.hstack([sp.csr_matrix(a), x_in], format="csr"))
            targets.append(x_out)
        z = sp.vstack(inputs, format="csr")
        y = sp.vstack(targets, format="csr")
        gram = (z.T @ z).toarray()
        penalty = np.concatenate(
            [
                *(
                    np.r_[INTERCEPT_L2, np.full(nf - 1, l2)]
                    for l2 in [cfg.l2_attributes] + [cfg.l2_attributes_items] * (nb - 1)
                ),
                np.full(n_items, cfg.l2_items),
            ]
        )
        gram[np.diag_indices_from(gram)] += penalty
        weights = _ridge_solve(gram, (z.T @ y).toarray())
        self.W_ = np.ascontiguousarray(weights[: nb * nf].reshape(nb, nf, n_items), np.float32)
        self.V_ = np.ascontiguousarray(weights[nb * nf :], np.float32)

    # ------------------------------------------------------------------ scoring
    def _bucket(self, n: np.ndarray) -> np.ndarray:
        """Each history length's arrival stage (index into ``prefixes``)."""
        return np.searchsorted(np.asarray(self.config.prefixes), n, side="right") - 1

    def _item_rows(self, x: sp.csr_matrix) -> np.ndarray:
        """``n^-length_norm x V`` (float32 (x.shape[0], n_items)) of binary history rows."""
        n = np.maximum(np.diff(x.indptr), 1).astype(np.float32)
        return np.asarray(x @ self.V_, np.float32) * (n ** -np.float32(self.length_norm_))[:, None]

    def _attribute_rows(self, user_idx: np.ndarray | None, n: np.ndarray) -> np.ndarray:
        """``a_u W_b(n)`` (float32 (len(n), n_items)); no attributes for new users."""
        n = np.asarray(n, np.int64)
        w = self.W_[self._bucket(n)]  # (len, nf, n_items)
        if user_idx is None:
            return np.array(w[:, 0, :], np.float32)  # the intercept alone
        attrs = np.hstack([np.ones((len(n), 1), np.float32), self.groups_.one_hot(user_idx)])
        return np.einsum("rf,rfi->ri", attrs, w).astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        x = self.seen_[user_idx]
        n = np.diff(x.indptr)
        return self._attribute_rows(user_idx, n) + self._item_rows(x)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """A history given as items: no attributes, the stage of its length."""
        x = sp.csr_matrix(history, dtype=np.float32, copy=True)
        x.data[:] = 1.0
        return self._attribute_rows(None, np.diff(x.indptr)) + self._item_rows(x)

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Occlusion, scored as the model scores this user: their attributes at the stage of
        each shortened history (removing an item can move the user to an earlier stage)."""

        def score(rows: list[np.ndarray]) -> np.ndarray:
            x = history_matrix(rows, self.n_items)
            who = None if user_idx is None else np.full(len(rows), user_idx)
            n = np.maximum(np.diff(x.indptr), 1).astype(np.float64)
            items = np.asarray(x @ self.V_[:, item], np.float64).ravel() * n**-self.length_norm_
            return self._attribute_rows(who, np.diff(x.indptr))[:, item] + items

        full, contributions = occlusion(score, history)
        return Attribution(item, history, contributions, full, "occlusion")

    def user_groups(self, user: object) -> list[str]:
        """The attribute groups a known user is scored with (``"age 25-34, gender M"``)."""
        self._check_fitted()
        idx = int(self.user_ids_.index([user], kind="user")[0])
        return [g for g in self.groups_.describe(idx) if g]

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        g = self.groups_
        arrays = {"W": self.W_, "V": self.V_, "groups": g.codes}
        meta = {
            "vocabularies": g.vocabularies,
            "combinations": [list(c) for c in g.combinations],
            "length_norm": self.length_norm_,
        }
        return arrays, meta

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_users, n_items = self.seen_.shape
        vocab = [list(v) for v in meta.get("vocabularies", [])]
        nf = 1 + sum(len(v) for v in vocab)
        codes = arrays.int("groups", (n_users, len(vocab)), low=-1)
        for k, v in enumerate(vocab):
            if len(codes) and codes[:, k].max() >= len(v):
                raise ModelFileError(f"Onboard group codes exceed the {len(v)} groups saved.")
        self.W_ = np.ascontiguousarray(arrays.float("W", (len(self.config.prefixes), nf, n_items)))
        self.V_ = np.ascontiguousarray(arrays.float("V", (n_items, n_items)))
        self.groups_ = AttributeGroups.from_state(codes, vocab, meta.get("combinations", []))
        # Files saved before length_norm existed summed the rows of V (length_norm 0).
        norm = meta.get("length_norm", 0.0)
        if not isinstance(norm, int | float) or not 0.0 <= norm <= 1.0:
            raise ModelFileError(f"Onboard's length_norm must be a number in [0, 1]; got {norm!r}.")
        self.length_norm_ = float(norm)


def _rank_within_user(users: np.ndarray, key: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Position of each interaction in its user's order by ``key`` (ties: row order)."""
    order = np.lexsort((np.arange(len(users)), key, users))
    rank = np.empty(len(users), np.int64)
    rank[order] = np.arange(len(users)) - starts[users[order]]
    return rank


def _pattern(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary CSR matrix with ones at (users, items)."""
    m = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
    m.data[:] = 1.0  # repeated pairs count once
    return m


def _ridge_solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``gram^-1 rhs`` for a symmetric positive definite ``gram`` (Cholesky)."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    try:
        factor = cho_factor(gram, lower=False, overwrite_a=True, check_finite=False)
    except LinAlgError as e:
        raise ConfigError("Onboard's ridge system is singular; raise l2_items.") from e
    return cho_solve(factor, rhs, overwrite_b=True, check_finite=False)


def _available_memory() -> int:
    from lmrec.models.ease import available_memory

    return available_memory()
