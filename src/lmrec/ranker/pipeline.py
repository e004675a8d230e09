"""Retrieve-then-rerank: a cheap retriever proposes N candidates, the LM ranker orders them.

:class:`RetrieveRerank` fits a registered retriever (default ``ease``) and an
:class:`~lmrec.ranker.model.LMRanker` on the same data; the ranker's hard negatives
are the retriever's top-``n_candidates`` per user. At scoring time every item outside
a user's candidate list gets ``-inf``; the candidates get the ranker's logit plus a
tiny tie-breaker that prefers the retriever's order (``1e-4 * (1 - rank / N)``).

Persistence: both components live in the pipeline's model directory, their arrays
under the prefixes ``retriever.`` and ``ranker.`` of one safetensors file and their
metadata in its JSON; they are rebuilt through the registry from the pipeline config
(no pickle, no import strings).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.config import ModelConfig
from lmrec.models.registry import create_model
from lmrec.ranker.model import LMRanker, LMRankerConfig

_PREFIXES = {"retriever": "retriever.", "ranker": "ranker."}
#: Weight of the retriever-rank tie-breaker added to the ranker's logits.
TIE_BREAK = 1e-4


class RetrieveRerankConfig(ModelConfig):
    """Hyperparameters of :class:`RetrieveRerank`."""

    retriever: str = "ease"
    """Registered name of the candidate generator."""
    retriever_params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters of the retriever (validated by its own config)."""
    n_candidates: int = Field(default=100, ge=1)
    """Candidates per user passed to the ranker (and its hard-negative pool)."""
    ranker_params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters of the :class:`~lmrec.ranker.model.LMRanker`."""


class RetrieveRerank(Recommender):
    """A retriever's top-N reranked by a fine-tuned cross-encoder.

    Examples
    --------
    >>> model = RetrieveRerank(n_candidates=50, ranker_params={"mode": "lora"})  # doctest: +SKIP
    >>> model.fit(train).recommend(["1"], k=10)                                # doctest: +SKIP
    """

    name = "pipeline"
    config_class = RetrieveRerankConfig
    config: RetrieveRerankConfig

    #: The fitted retriever.
    retriever_: Recommender | None = None
    #: The fitted ranker.
    ranker_: LMRanker | None = None

    def _components(self) -> tuple[Recommender, LMRanker]:
        from lmrec.models.config import build_config

        retriever = create_model(self.config.retriever, self.config.retriever_params)
        ranker = LMRanker(build_config(LMRankerConfig, dict(self.config.ranker_params)))
        return retriever, ranker

    def _fit(self, dataset: Dataset) -> None:
        retriever, ranker = self._components()
        self.retriever_ = retriever.fit(dataset)
        users = np.arange(dataset.n_users)
        hard, _ = self.retriever_.recommend_indices(users, self._n(), exclude_seen=True)
        self.ranker_ = ranker.fit(dataset, hard_negatives=hard)

    def _n(self) -> int:
        return min(self.config.n_candidates, self.n_items)

    def candidates(self, user_idx: np.ndarray) -> np.ndarray:
        """The retriever's top-``n_candidates`` unseen items per user (-1 padded)."""
        self._check_fitted()
        items, _ = self.retriever_.recommend_indices(  # type: ignore[union-attr]
            np.asarray(user_idx, np.int64), self._n(), exclude_seen=True
        )
        return items

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        cand = self.candidates(user_idx)
        logits = self.ranker_.score_candidates(user_idx, cand)  # type: ignore[union-attr]
        n = cand.shape[1]
        logits = logits + np.float32(TIE_BREAK) * (1 - np.arange(n, dtype=np.float32) / n)
        out = np.full((len(user_idx), self.n_items), -np.inf, np.float32)
        rows, cols = np.nonzero(cand >= 0)
        out[rows, cand[rows, cols]] = logits[rows, cols]
        return out

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {"components": {}}
        for role, model in (("retriever", self.retriever_), ("ranker", self.ranker_)):
            sub_arrays, sub_meta = model._get_state()  # type: ignore[union-attr]
            arrays.update({_PREFIXES[role] + k: v for k, v in sub_arrays.items()})
            meta["components"][role] = {"model": model.name, "meta": sub_meta}  # type: ignore[union-attr]
        return arrays, meta

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        comps = dict(zip(("retriever", "ranker"), self._components(), strict=True))
        for role, model in comps.items():
            saved = meta.get("components", {}).get(role, {})
            if saved.get("model") != model.name:
                raise ConfigError(
                    f"The pipeline's saved {role} is {saved.get('model')!r} but its config names "
                    f"{model.name!r}; the model directory is inconsistent."
                )
            prefix = _PREFIXES[role]
            model.user_ids_, model.item_ids_, model.seen_ = (
                self.user_ids_,
                self.item_ids_,
                self.seen_,
            )
            model._set_state({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)},
                             saved.get("meta", {}))  # fmt: skip
        self.retriever_, self.ranker_ = comps["retriever"], comps["ranker"]  # type: ignore[assignment]
