"""Score fusion of a collaborative-filtering model with a content (text) model.

:class:`BlendModel` fits two registered models on the same data -- a CF model
(``cf_model``, default ``ease``) and a content model (``content_model``, default
``content``) -- and ranks by a convex combination of their *per-user normalised*
scores::

    score(u, i) = (1 - w) * norm_u(cf(u, i)) + w * norm_u(content(u, i))

``norm_u`` standardises one user's scores over the items that user has not seen
(``zscore``: ``(s - mean) / std``; ``minmax``: to [0, 1]; ``rank``: the rank
percentile, which ignores the score scale entirely). Seen items are left out of the
statistics because CF models give them very large scores that would otherwise
dominate the spread; they are excluded from recommendations anyway.

Learning the content weight ``w``
---------------------------------
``fit(train, valid=valid)`` learns the weight on a validation split: both components
are fitted on ``train``, each candidate of ``weight_grid`` is scored on ``valid`` with
:func:`lmrec.models.validation.validation_metric` (``metric``, default NDCG@10; ties go
to the smaller weight), and the model keeps the best weight.
``fit_with_validation(train, valid)`` does the same and then refits both components
on ``train.concat(valid)`` with that weight. ``fit(dataset)`` with ``weight=None``
(the CLI path) does the same inside ``dataset``: it holds out a seeded per-user random
``validation_fraction`` of it (:func:`lmrec.data.split.random_split`) to choose the
weight, then refits on all of ``dataset``. With a fixed ``weight`` ``fit`` just fits
both components. The grid scores are kept in ``validation_``.

Persistence: the components' arrays are stored in the blend's own safetensors file
under the prefixes ``cf.`` and ``content.``, and their metadata in its JSON; on load
they are rebuilt through the registry from ``cf_model``/``cf_params`` and
``content_model``/``content_params`` of the blend config (no pickle, no import strings).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, DataError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import (
    FitOptions,
    FoldInModel,
    ValidatedModel,
    declares,
    supports,
)
from lmrec.models.composite import components_state, restore_components
from lmrec.models.config import ModelConfig, search
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.registry import component_params, create_model, models_supporting
from lmrec.models.validation import validation_metric

Normalization = Literal["zscore", "minmax", "rank"]


class BlendConfig(ModelConfig):
    """Hyperparameters of :class:`BlendModel`."""

    cf_model: str = "ease"
    """Registered name of the collaborative-filtering component."""
    cf_params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters of the CF component (validated by its own config)."""
    content_model: str = "content"
    """Registered name of the text component (``content``; ``text2cf``, ``twotower`` work too)."""
    content_params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters of the text component (validated by its own config)."""
    weight: float | None = Field(
        default=None, ge=0, le=1, json_schema_extra=search("float", 0.0, 1.0)
    )
    """Weight of the content scores (0: CF only, 1: content only); ``None`` learns it."""
    normalization: Normalization = Field(
        default="zscore",
        json_schema_extra=search("categorical", ["zscore", "minmax", "rank"]),
    )
    """Per-user normalisation of each component's scores over the user's unseen items."""
    weight_grid: tuple[Annotated[float, Field(ge=0, le=1)], ...] = Field(
        default=(0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0), min_length=1
    )
    """Candidate content weights searched on the validation data."""
    metric: str = "ndcg@10"
    """Metric the weight is chosen by (any list metric of :mod:`lmrec.eval.metrics`)."""
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)
    """Per-user share held out by ``fit`` to learn the weight when ``weight`` is None."""
    seed: int = Field(default=0, ge=0)
    """Seed of that internal hold-out split."""

    @model_validator(mode="after")
    def _check_components(self) -> BlendConfig:
        """Both components exist and their parameters are valid; the parameters freeze."""
        for model, params in (("cf_model", "cf_params"), ("content_model", "content_params")):
            checked = component_params(getattr(self, model), getattr(self, params), params)
            object.__setattr__(self, params, checked)  # the config is frozen: set it once here
        return self


def normalize_scores(
    scores: np.ndarray, seen: sp.csr_matrix | None, how: Normalization
) -> np.ndarray:
    """Normalise each row of ``scores`` over the columns not marked in ``seen``.

    Non-finite scores count as the row's minimum. Returns a new float32 array; the
    seen columns get values too (on the same scale) but should be masked by the caller.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    bad = ~np.isfinite(s)
    if bad.any():
        s[bad] = np.nan
        low = np.nanmin(np.where(np.isnan(s), np.inf, s), axis=1, keepdims=True)
        low = np.where(np.isfinite(low), low, 0.0)
        s = np.where(bad, low, s)
    ref = s.copy()
    if seen is not None and seen.nnz:
        seen = sp.csr_matrix(seen)
        rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        ref[rows, seen.indices] = np.nan
    if how == "rank":
        # Rank percentile among all items (ties share the lower rank); order is what matters.
        order = np.argsort(np.argsort(s, axis=1, kind="stable"), axis=1, kind="stable")
        return (order / max(s.shape[1] - 1, 1)).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        if how == "zscore":
            center = np.nanmean(ref, axis=1, keepdims=True)
            scale = np.nanstd(ref, axis=1, keepdims=True)
        else:
            center = np.nanmin(ref, axis=1, keepdims=True)
            scale = np.nanmax(ref, axis=1, keepdims=True) - center
    center = np.nan_to_num(center)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return ((s - center) / scale).astype(np.float32)


class BlendModel(Recommender, FoldInModel, ValidatedModel):
    """Convex fusion of a CF model and a content model on per-user normalised scores.

    See the module docstring for the formula and how the weight is learned.

    Parameters
    ----------
    config : BlendConfig, optional
        Or the same fields as keywords, e.g. ``BlendModel(cf_model="ease", weight=0.2)``.

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = BlendModel(cf_params={"l2": 10.0}, weight=0.3).fit(checkerboard())  # doctest: +SKIP
    >>> model.weight_  # doctest: +SKIP
    0.3
    """

    name = "blend"
    config_class = BlendConfig
    config: BlendConfig

    #: The fitted CF component.
    cf_: Fitted[Recommender] = Fitted()
    #: The fitted content component.
    content_: Fitted[Recommender] = Fitted()
    #: The content weight in use (the config's, or the learned one).
    weight_: Fitted[float] = Fitted()
    #: Validation metric per candidate weight of the last weight search (``{weight: value}``).
    validation_: dict[float, float] | None = None

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self._weight_override: float | None = None
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] | None = None

    # ------------------------------------------------------------------ fitting
    def _components(self) -> tuple[Recommender, Recommender]:
        cfg = self.config
        return (
            create_model(cfg.cf_model, cfg.cf_params),
            create_model(cfg.content_model, cfg.content_params),
        )

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        weight = self._weight_override if self._weight_override is not None else self.config.weight
        if weight is None and valid is not None:
            weight, self.validation_ = self._search_weight(dataset, valid)
        if weight is None:
            from lmrec.data.split import random_split

            frac = self.config.validation_fraction
            try:
                split = random_split(dataset, ratios=(1.0 - frac, frac), seed=self.config.seed)
            except DataError as e:
                raise ConfigError(
                    f"BlendModel could not hold out {frac:.0%} of {dataset.name!r} per user to "
                    f"learn the content weight ({e}). Set 'weight' explicitly, or use "
                    "fit_with_validation(train, valid)."
                ) from e
            weight, self.validation_ = self._search_weight(split.train, split.test)
        cf, content = self._components()
        self.cf_ = cf.fit(dataset)
        self.content_ = content.fit(dataset)
        self.weight_ = float(weight)
        self._cache = None

    def fit_with_validation(
        self, train: Dataset, valid: Dataset, *, metric: str | None = None
    ) -> BlendModel:
        """Learn the content weight on ``valid``, then refit both components on train + valid.

        Both components are fitted on ``train``; every weight of ``weight_grid`` is
        scored on ``valid`` by ``metric`` (default: the config's); the best one (ties:
        the smaller weight) is kept in ``weight_`` and both components are refitted on
        ``train.concat(valid)``. A fixed ``weight`` in the config is ignored here.
        Returns the fitted model; ``validation_`` holds the grid scores.
        """
        weight, table = self._search_weight(train, valid, metric=metric)
        self._weight_override = weight
        try:
            self.fit(train.concat(valid))
        finally:
            self._weight_override = None
        self.validation_ = table
        return self

    def search_weight(
        self, train: Dataset, valid: Dataset, *, metric: str | None = None
    ) -> tuple[float, dict[float, float]]:
        """Score each weight of ``weight_grid`` on ``valid`` (components fitted on ``train``).

        Returns the best weight (ties: the smaller) and ``{weight: metric value}``; the
        model itself is left as it was. Use it to compare blends (e.g. which content
        component to pair with the CF model) by the *blend's* validation score.
        """
        return self._search_weight(train, valid, metric=metric)

    def _search_weight(
        self, train: Dataset, valid: Dataset, *, metric: str | None = None
    ) -> tuple[float, dict[float, float]]:
        """Fit the components once on ``train`` and score each grid weight on ``valid``."""
        metric = metric or self.config.metric
        grid = sorted(set(self.config.weight_grid))
        probe = type(self)(self.config.model_copy(update={"weight": grid[0]}))
        probe.fit(train)
        probe._cache = {}  # the component scores do not depend on the weight
        table: dict[float, float] = {}
        for w in grid:
            probe.weight_ = float(w)
            table[float(w)] = validation_metric(probe, valid, metric)
        best = max(grid, key=lambda w: (table[float(w)], -w))
        return float(best), table

    # ------------------------------------------------------------------ scoring
    def _normalized(self, user_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.asarray(user_idx, np.int64).tobytes()
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        how = self.config.normalization
        seen = self._seen[user_idx]
        out = (
            normalize_scores(self.cf_._score(user_idx), seen, how),
            normalize_scores(self.content_._score(user_idx), seen, how),
        )
        if self._cache is not None:
            self._cache[key] = out
        return out

    def _combine(self, cf: np.ndarray, content: np.ndarray) -> np.ndarray:
        w = np.float32(self.weight_)
        return (np.float32(1.0) - w) * cf + w * content

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._combine(*self._normalized(user_idx))

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Fuse the components' fold-in scores (both must support histories)."""
        how = self.config.normalization
        cf_model, content_model = self.cf_, self.content_
        if not (declares(cf_model, FoldInModel) and declares(content_model, FoldInModel)):
            lacking = content_model if supports(cf_model, FoldInModel) else cf_model
            raise ConfigError(
                f"blend folds in new users through both components, and {lacking.name!r} "
                f"cannot; use components that do: {', '.join(models_supporting(FoldInModel))}."
            )
        cf = normalize_scores(cf_model.score_history(history), history, how)
        content = normalize_scores(content_model.score_history(history), history, how)
        return self._combine(cf, content)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        assert self.cf_ is not None and self.content_ is not None  # fitted (checked by save)
        arrays, components = components_state({"cf": self.cf_, "content": self.content_})
        meta: dict[str, Any] = {"weight": self.weight_, "components": components}
        if self.validation_ is not None:
            meta["validation"] = [[w, v] for w, v in self.validation_.items()]
        return arrays, meta

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        comps = dict(zip(("cf", "content"), self._components(), strict=True))
        restore_components(self, comps, arrays, meta.get("components", {}), "blend")
        self.cf_, self.content_ = comps["cf"], comps["content"]
        self.weight_ = float(meta["weight"])
        validation = meta.get("validation")
        self.validation_ = (
            None if validation is None else {float(w): float(v) for w, v in validation}
        )
        self._cache = None
