"""Popularity within the user's attribute group: the demographic baseline for cold users.

Every user gets the items most interacted with by the training users of their group
(e.g. the same age group and gender), ties and users without a group falling back to
global popularity. It is the baseline an attribute-aware model must beat
(:mod:`lmrec.eval.coldusers`).

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.models.attributes import DEFAULT_BINS, AttributeGroups
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel
from lmrec.models.config import ModelConfig
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted

#: Weight of global popularity inside a group (orders items the group never chose).
GLOBAL_TIE_BREAK = 1e-6


class GroupPopularityConfig(ModelConfig):
    """Hyperparameters of :class:`GroupPopularity`."""

    attributes: tuple[str, ...] = ("age", "gender")
    """User attribute columns whose value combination is the group (numeric columns in
    bins: MovieLens' age groups for ``age``)."""
    bins: dict[str, tuple[float, ...]] = Field(default_factory=lambda: dict(DEFAULT_BINS))
    """Bin edges of numeric attributes (others: quintiles)."""


class GroupPopularity(Recommender, FoldInModel):
    """Recommend what the user's attribute group interacted with most.

    Users without attributes (a new user given as items, a missing value) get global
    popularity. Explanations name no history item: the score ignores the history.

    Examples
    --------
    >>> from lmrec.data.sources import load_builtin                  # doctest: +SKIP
    >>> GroupPopularity(attributes=("gender",)).fit(load_builtin("ml-100k"))  # doctest: +SKIP
    """

    name = "group_popularity"
    config_class = GroupPopularityConfig
    config: GroupPopularityConfig

    #: Interactions per (group, item), float32 (n_groups, n_items); the last row is global.
    counts_: Fitted[np.ndarray] = Fitted()
    #: Each user's group (row of ``counts_``), int64 (n_users,).
    group_: Fitted[np.ndarray] = Fitted()
    #: Group labels (``"age 25-34, gender M"``), one per row of ``counts_`` but the last.
    labels_: Fitted[list[str]] = Fitted()

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        groups = AttributeGroups(
            dataset.users, [self.config.attributes], dataset.n_users, self.config.bins
        )
        x = sp.csr_matrix(dataset.matrix, dtype=np.float64, copy=True)
        x.data[:] = 1.0
        glob = np.asarray(x.sum(axis=0)).ravel()
        if groups.n_features:
            code = groups.codes[:, 0].astype(np.int64)
            labels = groups.vocabularies[0]
        else:
            code, labels = np.full(dataset.n_users, -1, np.int64), []
        n_groups = len(labels)
        member = code >= 0
        onehot = sp.csr_matrix(
            (np.ones(member.sum()), (code[member], np.flatnonzero(member))),
            shape=(n_groups, dataset.n_users),
        )
        counts = np.vstack([(onehot @ x).toarray(), glob[None, :]])
        counts[:n_groups] += GLOBAL_TIE_BREAK * glob
        self.counts_ = counts.astype(np.float32)
        self.group_ = np.where(member, code, n_groups)
        self.labels_ = list(labels)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.counts_[self.group_[user_idx]]

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Global popularity: a history given as items carries no attributes."""
        return np.broadcast_to(self.counts_[-1], (history.shape[0], self.counts_.shape[1]))

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"counts": self.counts_, "group": self.group_}, {"labels": self.labels_}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_users, n_items = self._seen.shape
        self.labels_ = [str(v) for v in meta.get("labels", [])]
        n_groups = len(self.labels_)
        self.counts_ = arrays.float("counts", (n_groups + 1, n_items))
        self.group_ = arrays.int("group", (n_users,), low=0, high=n_groups + 1).astype(np.int64)
