"""Retrieve-then-rerank: a cheap retriever proposes N candidates, the LM ranker orders them.

:class:`RetrieveRerank` fits a registered retriever (default ``ease``) and an
:class:`~lmrec.ranker.model.LMRanker` on the same data; the ranker's hard negatives
are the retriever's top-``n_candidates`` per user. At scoring time the items outside
a user's candidate list follow in the retriever's order, below every candidate (so a
list longer than N, or one keeping seen items, is complete); the candidates get

``blend * z(retriever score) + (1 - blend) * z(ranker logit)``

where ``z`` standardises each user's candidate scores (mean 0, sd 1), plus a tiny
tie-breaker that prefers the retriever's order (``1e-4 * (1 - rank / N)``). ``blend = 0``
(default) ranks by the ranker alone, ``blend = 1`` returns the retriever's order;
:meth:`RetrieveRerank.fit_blend` picks it on validation data. ``int8=True`` scores
with the merged, dynamically int8-quantized ranker (built after fit or load).

Persistence: both components live in the pipeline's model directory, their arrays
under the prefixes ``retriever.`` and ``ranker.`` of one safetensors file and their
metadata in its JSON; they are rebuilt through the registry from the pipeline config
(no pickle, no import strings).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender, history_matrix
from lmrec.models.capabilities import FitOptions, SequenceModel
from lmrec.models.composite import components_state, restore_components
from lmrec.models.config import ModelConfig, build_config, freeze
from lmrec.models.explain import Attribution
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.registry import component_params, create_model
from lmrec.ops.topk import mask_rows, topk
from lmrec.ranker.histories import History, candidate_logits, occlude
from lmrec.ranker.model import LMRanker, LMRankerConfig

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
    blend: float = Field(default=0.0, ge=0, le=1)
    """Weight of the retriever's (standardised) score in the final score; see fit_blend."""
    int8: bool = False
    """Score with the LoRA-merged, int8-quantized ranker (faster on CPU)."""
    engine: Literal["torch", "onnx"] = "torch"
    """What scores the ranker's pairs: torch (the fitted module, or its torch int8 copy),
    or ONNX Runtime (:class:`~lmrec.ranker.fast.OnnxScorer`: int8 when ``int8``, token
    ids cached, pairs batched across users; extra ``onnx``), built on first use."""
    score_max_length: int | None = Field(default=None, ge=8)
    """Tokens per pair when scoring with ``engine="onnx"`` (None: the ranker's
    ``max_length``); shorter is faster, choose it on held-out pairs."""

    @model_validator(mode="after")
    def _check_components(self) -> RetrieveRerankConfig:
        """The retriever exists; both components' parameters are valid, and frozen."""
        retriever = component_params(self.retriever, self.retriever_params, "retriever_params")
        try:
            build_config(LMRankerConfig, dict(self.ranker_params))
        except ConfigError as e:
            raise ValueError(f"ranker_params: {e}") from e
        object.__setattr__(self, "retriever_params", retriever)  # frozen config: set once here
        object.__setattr__(self, "ranker_params", freeze(self.ranker_params))
        return self


class RetrieveRerank(Recommender, SequenceModel):
    """A retriever's top-N reranked by a fine-tuned cross-encoder.

    Examples
    --------
    >>> model = RetrieveRerank(n_candidates=50, ranker_params={"mode": "lora"})  # doctest: +SKIP
    >>> model.fit(train).recommend(["1"], k=10)                                # doctest: +SKIP
    """

    name = "pipeline"
    smoke_check_on_load = False  # every score is a language-model forward pass
    config_class = RetrieveRerankConfig
    config: RetrieveRerankConfig

    #: The fitted retriever.
    retriever_: Fitted[Recommender] = Fitted()
    #: The fitted ranker.
    ranker_: Fitted[LMRanker] = Fitted()
    #: The ranker's int8 or ONNX copy, built on first use (None until then).
    _scorer: Any = None
    #: Validation metric per blend weight of the last :meth:`fit_blend`.
    blend_curve_: dict[float, float] | None = None

    def _components(self) -> tuple[Recommender, LMRanker]:
        from lmrec.models.config import build_config

        retriever = create_model(self.config.retriever, self.config.retriever_params)
        ranker = LMRanker(build_config(LMRankerConfig, dict(self.config.ranker_params)))
        return retriever, ranker

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        retriever, ranker = self._components()
        self.retriever_ = retriever.fit(dataset)
        users = np.arange(dataset.n_users)
        hard, _ = self.retriever_.recommend_indices(users, self._n(), exclude_seen=True)
        self.ranker_ = ranker.fit(dataset, options=FitOptions(hard_negatives=hard))
        self._scorer = None

    def _n(self) -> int:
        return min(self.config.n_candidates, self.n_items)

    def candidates(self, user_idx: np.ndarray) -> np.ndarray:
        """The retriever's top-``n_candidates`` unseen items per user (-1 padded)."""
        return self.candidate_scores(user_idx)[0]

    def candidate_scores(self, user_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The retriever's top-``n_candidates`` unseen items per user and their scores."""
        self._check_fitted()
        return self.retriever_.recommend_indices(
            np.asarray(user_idx, np.int64), self._n(), exclude_seen=True
        )

    def ranker_scorer(self) -> Any:
        """What scores the candidates: the fitted ranker, its merged int8 copy (``int8``), or
        an :class:`~lmrec.ranker.fast.OnnxScorer` (``engine="onnx"``); all answer
        ``score_candidates(user_idx, item_idx)``."""
        self._check_fitted()
        if self.config.engine == "torch" and not self.config.int8:
            return self.ranker_
        if self._scorer is None:
            if self.config.engine == "onnx":
                from lmrec.ranker.fast import OnnxScorer

                self._scorer = OnnxScorer.from_ranker(
                    self.ranker_, int8=self.config.int8, max_length=self.config.score_max_length
                )
            else:
                self._scorer = self.ranker_.merge_and_quantize()
        return self._scorer

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        cand, retrieval = self.candidate_scores(user_idx)
        logits = self.ranker_scorer().score_candidates(user_idx, cand)
        final = blend_scores(retrieval, logits, cand >= 0, self.config.blend)
        out = below_candidates(self.retriever_._score(user_idx), final, cand >= 0)
        rows, cols = np.nonzero(cand >= 0)
        out[rows, cand[rows, cols]] = final[rows, cols]
        return out

    def score_sequences(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Scores of every item for new users: the retriever folds each sequence in and
        proposes its top-N (the sequence's items excluded), the ranker reads the sequence
        in its prompt; the other items follow in the retriever's order, as for known users."""
        return self.score_histories(sequences)

    def score_histories(
        self, histories: Sequence[np.ndarray], *, items: np.ndarray | None = None
    ) -> np.ndarray:
        """As :meth:`Recommender.score_histories`; with ``items`` (and ``blend = 0``) the
        ranker scores only those of the candidates."""
        self._check_fitted()
        return pipeline_score_histories(self, histories, items)

    def user_sequence(self, user_idx: int) -> np.ndarray:
        """The user's items in time order, oldest first (as the ranker's prompt reads them)."""
        self._check_fitted()
        return self.ranker_.user_sequence(user_idx)

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Occlusion through the pipeline's scoring with the candidate list held fixed
        (see :func:`lmrec.ranker.histories.pipeline_attribute`)."""
        return pipeline_attribute(self, item, history, user_idx)

    def fit_blend(
        self, valid: Dataset, *, grid: Sequence[float] | None = None, metric: str = "ndcg@10"
    ) -> float:
        """Choose ``blend`` on held-out interactions (the model fitted without them).

        Scores each valid user's candidates once with the retriever and the ranker, then
        tries every weight in ``grid`` (default 0, 0.05, ..., 1) and keeps the one with
        the best mean ``metric`` (ties go to the weight nearest 0.5, which leans on both
        scores); sets ``config.blend`` and ``blend_curve_`` and returns the weight.
        """
        from lmrec.eval.metrics import compute_ranking_metrics, parse_metric
        from lmrec.models.validation import truth_from_ids

        self._check_fitted()
        frame = valid.to_frame()
        users, truth, _, _ = truth_from_ids(
            self._user_ids, self._item_ids, frame["user"], frame["item"]
        )
        if len(users) == 0:
            raise ConfigError("fit_blend: no validation user is known to the pipeline.")
        k = getattr(parse_metric(metric), "k", None) or 10
        cand, retrieval = self.candidate_scores(users)
        logits = self.ranker_scorer().score_candidates(users, cand)
        ok = cand >= 0
        weights = list(np.round(np.linspace(0, 1, 21), 2)) if grid is None else list(grid)
        curve: dict[float, float] = {}
        for w in weights:
            final = np.where(ok, blend_scores(retrieval, logits, ok, float(w)), -np.inf)
            order = np.argsort(-final, axis=1, kind="stable")[:, :k]
            recs = np.where(
                np.take_along_axis(ok, order, 1), np.take_along_axis(cand, order, 1), -1
            )
            summary, _ = compute_ranking_metrics(recs, truth, [metric], n_items=self.n_items)
            curve[float(w)] = float(summary[metric])
        best = max(curve, key=lambda w: (curve[w], -abs(w - 0.5)))
        self.config = self.config.model_copy(update={"blend": best})
        self.blend_curve_ = curve
        return best

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, components = components_state(
            {"retriever": self.retriever_, "ranker": self.ranker_}
        )
        return arrays, {"components": components}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        retriever, ranker = self._components()
        comps = {"retriever": retriever, "ranker": ranker}
        restore_components(self, comps, arrays, meta.get("components", {}), "pipeline")
        self.retriever_, self.ranker_ = retriever, ranker
        self._scorer = None


def below_candidates(retrieval: np.ndarray, final: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Scores (float32 (n, n_items)) that rank every item by the retriever's full scores
    ``retrieval``, shifted below the lowest candidate score of its row (``final`` over the
    ``ok`` candidates); the caller then writes the candidates' scores over them."""
    r = np.asarray(retrieval, np.float64)
    finite = np.isfinite(r)
    top = np.where(finite, r, -np.inf).max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    lowest = np.where(ok, final, np.inf).min(axis=1, keepdims=True)
    lowest[~np.isfinite(lowest)] = 0.0
    out = np.where(finite, r - top + lowest - 1.0, -np.inf)
    return out.astype(np.float32)


def _standardise(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per-row z-scores over the ``ok`` entries (0 elsewhere, and where a row has no spread)."""
    x = np.where(ok, x, 0.0).astype(np.float64)
    n = np.maximum(ok.sum(1, keepdims=True), 1)
    mean = x.sum(1, keepdims=True) / n
    dev = np.where(ok, x - mean, 0.0)
    sd = np.sqrt((dev**2).sum(1, keepdims=True) / n)
    return dev / np.where(sd > 0, sd, 1.0)


def blend_scores(
    retrieval: np.ndarray, logits: np.ndarray, ok: np.ndarray, blend: float
) -> np.ndarray:
    """``blend * z(retrieval) + (1 - blend) * z(logits)`` per row, plus the rank tie-breaker.

    Examples
    --------
    >>> r = np.array([[3.0, 2.0, 1.0]]); lg = np.array([[0.0, 0.0, 5.0]])
    >>> ok = np.ones((1, 3), bool)
    >>> [int(np.argmax(blend_scores(r, lg, ok, w))) for w in (0.0, 1.0)]
    [2, 0]
    """
    n = retrieval.shape[1]
    tie = TIE_BREAK * (1 - np.arange(n, dtype=np.float64) / max(n, 1))
    if blend == 0.0:  # the ranker alone: raw logits keep the saved behaviour exactly
        out = np.where(ok, logits.astype(np.float64), 0.0)
    else:
        out = blend * _standardise(retrieval, ok) + (1 - blend) * _standardise(logits, ok)
    return (out + tie).astype(np.float32)


# ---------------------------------------------------------------------- new users, explanations
def pipeline_candidates(
    pipeline: RetrieveRerank, sequences: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The retriever's top-``n_candidates`` items not in each sequence, and their scores."""
    return _retrieve(pipeline, sequences)[1:]


def _retrieve(
    pipeline: RetrieveRerank, sequences: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The retriever's full scores after each sequence, and its top-N (sequence excluded)."""
    full = pipeline.retriever_.score_histories(sequences)
    scores = full.copy()
    scores[~np.isfinite(scores)] = -np.inf
    mask_rows(scores, history_matrix(list(sequences), pipeline.n_items))
    cand, retrieval = topk(scores, pipeline._n())
    return full, cand, retrieval


def pipeline_score_histories(
    pipeline: RetrieveRerank, sequences: Sequence[np.ndarray], items: np.ndarray | None = None
) -> np.ndarray:
    """Scores after each sequence: the blend of retriever and ranker on the retriever's
    top-N (the sequence's items excluded), the other items below them in the retriever's
    order; all items, or ``items`` only (with ``blend = 0`` the ranker then scores just
    those candidates, and the others' floor is the lowest scored one)."""
    sequences = [np.asarray(s, np.int64) for s in sequences]
    full, cand, retrieval = _retrieve(pipeline, sequences)
    ok = cand >= 0
    wanted = cand
    if items is not None and pipeline.config.blend == 0.0:  # z-scores would need them all
        asked = np.asarray(items, np.int64)
        wanted = np.where(np.isin(cand, asked), cand, -1)
        # A row where an asked item is no candidate needs every candidate: its score sits
        # below the lowest of them.
        outside = np.array([not np.isin(asked, c).all() for c in cand], dtype=bool)
        wanted[outside] = cand[outside]
    histories = [History.of_items(s) for s in sequences]
    logits = candidate_logits(pipeline.ranker_scorer(), histories, wanted)
    final = blend_scores(retrieval, logits, ok, pipeline.config.blend)
    out = below_candidates(full, final, ok)
    rows, cols = np.nonzero(ok)
    out[rows, cand[rows, cols]] = final[rows, cols]
    return out if items is None else out[:, np.asarray(items, np.int64)]


def pipeline_attribute(
    pipeline: RetrieveRerank, item: int, history: np.ndarray, user_idx: int | None
) -> Attribution:
    """Occlusion through the pipeline's scoring with its candidate list held fixed.

    The candidates are the retriever's top-N for the whole history (the explained item
    joins them if it is not among them). Each variant history is re-scored as the
    pipeline scores: the retriever's fold-in scores and the ranker's logits of the
    candidates, blended (``blend = 0``: the ranker's logit of the item alone, the
    retriever-rank tie-breaker being fixed with the list).
    """
    ranker = pipeline.ranker_scorer()
    h = (
        History.of_user(pipeline.ranker_, user_idx)
        if user_idx is not None
        else History.of_items(history)
    )
    if user_idx is not None:
        cand, _ = pipeline.candidate_scores(np.array([user_idx]))
    else:
        cand, _ = pipeline_candidates(pipeline, [h.items])
    cand = cand[0][cand[0] >= 0]
    if item not in cand:
        cand = np.append(cand[:-1] if len(cand) >= pipeline._n() else cand, item)
    where = int(np.flatnonzero(cand == item)[0])
    blend = pipeline.config.blend
    retriever = pipeline.retriever_

    def score(variants: list[History]) -> np.ndarray:
        if blend == 0.0:  # only the item's own logit moves; the tie-breaker is fixed
            return candidate_logits(ranker, variants, np.full((len(variants), 1), item))[:, 0]
        grid = np.broadcast_to(cand, (len(variants), len(cand)))
        logits = candidate_logits(ranker, variants, grid)
        retrieval = retriever.score_histories([v.items for v in variants], items=cand)
        ok = np.ones(grid.shape, bool)
        return blend_scores(retrieval, logits, ok, blend)[:, where]

    full, contributions = occlude(h, score)
    if blend == 0.0:
        tie = blend_scores(
            np.zeros((1, len(cand))), np.zeros((1, len(cand))), np.ones((1, len(cand)), bool), 0.0
        )[0, where]
        full += float(tie)
    return Attribution(item, h.items, contributions, full, "occlusion")
