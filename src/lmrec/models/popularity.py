"""The most-popular baseline: every user gets the items most users interacted with."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel, UnlearningModel
from lmrec.models.config import ModelConfig, search
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.unlearning import drop_users


class PopularityConfig(ModelConfig):
    """Hyperparameters of :class:`Popularity`."""

    by: Literal["count", "weight"] = Field(
        default="count", json_schema_extra=search("categorical", ["count", "weight"])
    )
    """Rank by the number of users (``count``) or by the sum of interaction weights."""
    half_life_days: float | None = Field(default=None, gt=0)
    """If set, older interactions count less: weight 0.5 ** (age / half_life); needs timestamps."""


class Popularity(Recommender, FoldInModel, UnlearningModel):
    """Recommend the globally most popular items, excluding what the user has seen.

    A non-personalised baseline that any personalised model must beat; it is also
    the fallback for unknown users.
    """

    name = "popularity"
    config_class = PopularityConfig
    config: PopularityConfig
    scores_: Fitted[np.ndarray] = Fitted()

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

    def unlearning_blocker(self) -> str | None:
        """Counts can be taken back exactly; weights and decay need data the model does not keep."""
        if self.config.by != "count" or self.config.half_life_days is not None:
            return (
                "popularity with by='weight' or half_life_days keeps no per-user weights or "
                "timestamps to subtract; retrain it without the users"
            )
        return None

    def forget(self, user_idx: np.ndarray) -> None:
        """Subtract the users' items from the counts and drop their rows."""
        if (why := self.unlearning_blocker()) is not None:
            from lmrec.errors import ConfigError

            raise ConfigError(f"Cannot forget exactly: {why}.")
        seen = self._seen
        keep = drop_users(self, user_idx)
        gone = seen[np.flatnonzero(~keep)]
        counts = np.bincount(gone.indices, minlength=len(self.scores_))
        self.scores_ = (self.scores_.astype(np.float64) - counts).astype(np.float32)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"scores": self.scores_}, {}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        self.scores_ = arrays.float("scores", (self._seen.shape[1],))
