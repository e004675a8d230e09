"""The most-popular baseline: every user gets the items most users interacted with."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel
from lmrec.models.config import ModelConfig
from lmrec.models.files import StateArrays


class PopularityConfig(ModelConfig):
    """Hyperparameters of :class:`Popularity`."""

    by: Literal["count", "weight"] = "count"
    """Rank by the number of users (``count``) or by the sum of interaction weights."""
    half_life_days: float | None = Field(default=None, gt=0)
    """If set, older interactions count less: weight 0.5 ** (age / half_life); needs timestamps."""


class Popularity(Recommender, FoldInModel):
    """Recommend the globally most popular items, excluding what the user has seen.

    A non-personalised baseline that any personalised model must beat; it is also
    the fallback for unknown users.
    """

    name = "popularity"
    config_class = PopularityConfig
    config: PopularityConfig
    scores_: np.ndarray | None = None

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        cfg = self.config
        values = (
            np.ones(dataset.n_interactions, np.float64)
            if cfg.by == "count"
            else dataset.column("weight").astype(np.float64)
        )
        if cfg.half_life_days is not None:
            if not dataset.has_timestamps:
                from lmrec.errors import ConfigError

                raise ConfigError(
                    "half_life_days needs interaction timestamps; the data set has none."
                )
            ts = dataset.column("timestamp")
            age_days = (ts.max() - ts) / 86400.0
            values = values * np.power(0.5, age_days / cfg.half_life_days)
        scores = np.bincount(dataset.column("item_idx"), weights=values, minlength=dataset.n_items)
        self.scores_ = scores.astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(user_idx), len(self.scores_)))

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.scores_, (history.shape[0], len(self.scores_)))

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"scores": self.scores_}, {}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        self.scores_ = arrays.float("scores", (self.seen_.shape[1],))  # type: ignore[union-attr]
