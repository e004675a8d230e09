"""Cold-start item evaluation, and the two baselines a content model must beat.

Protocol (:func:`evaluate_cold_items`), for a split made by
:func:`lmrec.data.split.cold_start_items_split`: the held-out items never occur in
train, so a model can only know them from their attributes. For every test user
with at least one training interaction, the model ranks **only the held-out items**
(the candidates); the user's test interactions are the relevant set. Metrics are
the usual list metrics over those rankings, so Recall@20 is the share of a user's
held-out items found among the 20 best-ranked held-out items.

Baselines:

:class:`RandomScores`
    Uniform random scores, seeded per user: the floor any model must clear.
:class:`GenrePopularity`
    Personalised popularity by genre. With ``pop(g)`` the share of training
    interactions on items of genre ``g`` and ``share_u(g)`` the share of user
    ``u``'s training interactions on genre ``g``,

    .. math:: s(u, i) = \\sum_{g \\in G(i)} \\mathrm{share}_u(g) \\cdot \\mathrm{pop}(g)

    so an item scores high when its genres are ones the user watches and the
    audience at large watches; an item with no known genre scores 0. With
    ``personalised=False``, ``share_u`` is dropped (global genre popularity).

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.data.split import Split
from lmrec.errors import ConfigError, DataError
from lmrec.eval.metrics import compute_ranking_metrics, parse_metric
from lmrec.eval.protocol import EvaluationResult
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel
from lmrec.models.config import ModelConfig
from lmrec.models.fitted import Fitted

__all__ = ["GenrePopularity", "RandomScores", "cold_items", "evaluate_cold_items"]


def cold_items(split: Split) -> np.ndarray:
    """Dense indices of the items with test interactions and no train interaction."""
    in_test = split.test.item_counts() > 0
    in_train = split.train.item_counts() > 0
    if split.valid is not None:
        in_train |= split.valid.item_counts() > 0
    return np.flatnonzero(in_test & ~in_train)


def evaluate_cold_items(
    model: Any,
    split: Split,
    *,
    metrics: Sequence[str] = ("recall@20", "ndcg@20"),
    name: str | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` (fitted on ``split.train``) on the held-out items of ``split``.

    Parameters
    ----------
    model : Recommender
        Fitted on ``split.train`` (the same id maps as the split).
    split : Split
        A cold-start-items split (:func:`~lmrec.data.split.cold_start_items_split`).
    metrics : sequence of str
        List metrics such as ``"recall@20"``.

    Returns
    -------
    EvaluationResult
        Per-user metrics over test users that have training interactions; test users
        without any are counted in ``n_cold_users`` and left out.

    Raises
    ------
    DataError
        The model does not share the split's id maps, or the split holds out no item.
    """
    model._check_fitted()
    if model.item_ids_ != split.test.item_ids or model.user_ids_ != split.test.user_ids:
        raise DataError(
            "evaluate_cold_items needs a model fitted on split.train (the same id maps as "
            "the split); refit it on split.train."
        )
    specs = [parse_metric(m) for m in metrics]
    kmax = max((getattr(s, "k", 0) or 0) for s in specs) or 20
    candidates = cold_items(split)
    if len(candidates) == 0:
        raise DataError(
            "The split holds out no item that is absent from train; use cold_start_items_split."
        )
    truth_all = split.test.matrix.copy()
    truth_all.data[:] = 1.0
    test_users = np.flatnonzero(np.diff(truth_all.indptr) > 0)
    has_history = split.train.user_counts()[test_users] > 0
    users = test_users[has_history]
    recs, _ = model.recommend_indices(users, kmax, exclude_seen=True, candidates=candidates)
    keep = np.zeros(truth_all.shape[1], np.float32)
    keep[candidates] = 1.0
    truth = sp.csr_matrix(truth_all[users] @ sp.diags(keep))
    truth.eliminate_zeros()
    summary, per_user = compute_ranking_metrics(recs, truth, list(metrics), n_items=model.n_items)
    label = name or getattr(model, "name", "") or type(model).__name__
    n_cold = int(np.count_nonzero(~has_history))
    notes = [f"ranked over {len(candidates)} held-out items only"]
    if n_cold:
        notes.append(f"{n_cold} test users with no training interactions were not evaluated.")
    return EvaluationResult(
        name=label,
        summary={k: float(v) for k, v in summary.items()},
        per_user=pd.DataFrame(per_user, index=pd.Index(model.user_ids_.lookup(users), name="user")),
        n_users=len(users),
        n_cold_users=n_cold,
        notes=notes,
    )


# ---------------------------------------------------------------------- baselines
class RandomScoresConfig(ModelConfig):
    """Hyperparameters of :class:`RandomScores`."""

    seed: int = Field(default=0, ge=0)
    """Seed; a user's scores depend only on (seed, user index)."""


class RandomScores(Recommender, FoldInModel):
    """Uniform random scores, reproducible per user (a floor for cold-start metrics)."""

    name = "random"
    config_class = RandomScoresConfig
    config: RandomScoresConfig

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        pass

    def _rows(self, keys: np.ndarray) -> np.ndarray:
        n = self.n_items
        return (
            np.stack(
                [
                    np.random.default_rng([self.config.seed, int(key)]).random(n, dtype=np.float32)
                    for key in keys
                ]
            )
            if len(keys)
            else np.zeros((0, n), np.float32)
        )

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._rows(np.asarray(user_idx))

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._rows(np.arange(history.shape[0]))


class GenrePopularityConfig(ModelConfig):
    """Hyperparameters of :class:`GenrePopularity`."""

    genre_column: str = "genres"
    """Item column holding the genres, ``|``-separated."""
    personalised: bool = True
    """Weight each genre by the user's share of interactions in it (else global only)."""


class GenrePopularity(Recommender, FoldInModel):
    """Popularity by genre: ``s(u, i) = sum over genres g of i of share_u(g) * pop(g)``.

    Scores items from their genres only, so it ranks items with no interactions; see
    the module docstring for the definition.
    """

    name = "genre_popularity"
    config_class = GenrePopularityConfig
    config: GenrePopularityConfig
    item_genres_: Fitted[sp.csr_matrix] = Fitted()
    genre_pop_: Fitted[np.ndarray] = Fitted()
    user_share_: Fitted[np.ndarray] = Fitted()
    genres_: Fitted[list[str]] = Fitted()

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        col = self.config.genre_column
        if dataset.items is None or col not in dataset.items.columns:
            raise ConfigError(
                f"genre_popularity needs an item table with a {col!r} column (|-separated genres)."
            )
        lists = [
            [g.strip() for g in str(v).split("|") if g.strip()] if isinstance(v, str) else []
            for v in dataset.items[col].tolist()
        ]
        self.genres_ = sorted({g for gs in lists for g in gs})
        pos = {g: j for j, g in enumerate(self.genres_)}
        rows = np.repeat(np.arange(len(lists)), [len(gs) for gs in lists])
        cols = np.array([pos[g] for gs in lists for g in gs], dtype=np.int64)
        self.item_genres_ = sp.csr_matrix(
            (np.ones(len(cols), np.float32), (rows, cols)),
            shape=(dataset.n_items, len(self.genres_)),
        )
        x = dataset.matrix.copy()
        x.data[:] = 1.0
        per_user = np.asarray((x @ self.item_genres_).todense(), dtype=np.float64)
        pop = per_user.sum(axis=0)
        self.genre_pop_ = (pop / max(pop.sum(), 1.0)).astype(np.float32)
        totals = per_user.sum(axis=1, keepdims=True)
        self.user_share_ = (per_user / np.where(totals > 0, totals, 1.0)).astype(np.float32)

    def _from_share(self, share: np.ndarray) -> np.ndarray:
        if not self.config.personalised:
            share = np.ones_like(share)
        weights = share * self.genre_pop_[None, :]
        return np.asarray(self.item_genres_ @ weights.T, dtype=np.float32).T

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._from_share(self.user_share_[user_idx])

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        h = history.copy()
        h.data[:] = 1.0
        per_user = np.asarray((h @ self.item_genres_).todense(), dtype=np.float64)
        totals = per_user.sum(axis=1, keepdims=True)
        return self._from_share((per_user / np.where(totals > 0, totals, 1.0)).astype(np.float32))
