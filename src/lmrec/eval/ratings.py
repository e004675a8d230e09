"""Pointwise evaluation: RMSE, MAE, AUC, F1 and log loss where the inputs allow them.

- A **rating model** (:class:`~lmrec.models.capabilities.RatingModel`: ``biasedmf``,
  ``knnbaseline``) on test data with ratings: RMSE and MAE of the predicted ratings;
  AUC and F1 of "liked" (rating ``>= threshold``, default 4) against the predicted
  rating (F1 thresholds the prediction at the same value).
- **Any model** on any test data: AUC per user, ranking each user's test items against
  every other item the user has not seen (the share of correctly ordered pairs), then
  averaged over users.
- Everything else is refused with a message that says what is needed: RMSE/MAE/F1 need
  a rating model and rated test data; log loss needs predicted probabilities, which no
  lmrec model outputs.

Pairs whose user or item the model has never seen are left out and counted in the notes
(as cold users are in the ranking protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, DataError
from lmrec.eval.pointwise import auc, f1, mae, rmse
from lmrec.eval.protocol import EvaluationResult
from lmrec.models.capabilities import RatingModel, supports
from lmrec.models.registry import models_supporting

__all__ = [
    "POINTWISE",
    "RATING_METRICS",
    "check_rating_inputs",
    "evaluate_pointwise",
    "evaluate_ratings",
]

#: Metrics that compare predicted with observed ratings.
RATING_METRICS = ("rmse", "mae")
#: Every pointwise metric name of the registry.
POINTWISE = ("rmse", "mae", "auc", "f1", "log_loss")
_FUNCS = {"rmse": rmse, "mae": mae}


def check_rating_inputs(model: Any, test: Dataset | pd.DataFrame, metrics: Sequence[str]) -> None:
    """Raise ConfigError unless ``model`` predicts ratings and ``test`` has a rating column."""
    wanted = [m for m in metrics if m in RATING_METRICS]
    if not wanted:
        return
    label = getattr(model, "name", "") or type(model).__name__
    if not supports(model, RatingModel):
        raise ConfigError(
            f"{', '.join(wanted)} compare predicted with observed ratings, and model {label!r} "
            f"ranks items without predicting ratings. Use a rating model "
            f"({', '.join(models_supporting(RatingModel))}) trained on explicit ratings, or "
            "ranking metrics such as ndcg@10."
        )
    has = test.has_ratings if isinstance(test, Dataset) else "rating" in test.columns
    if not has:
        raise ConfigError(
            f"{', '.join(wanted)} need explicit ratings, and the test data has no 'rating' column "
            "(implicit feedback). Read the test file with its rating column, or use ranking "
            "metrics such as ndcg@10."
        )


def evaluate_ratings(
    model: Any,
    test: Dataset | pd.DataFrame,
    *,
    metrics: Sequence[str] = RATING_METRICS,
    name: str | None = None,
) -> EvaluationResult:
    """RMSE and MAE of ``model``'s predicted ratings on the (user, item, rating) rows of ``test``.

    Parameters
    ----------
    model : Recommender declaring RatingModel
        A fitted rating model.
    test : Dataset or DataFrame
        Held-out interactions with a ``rating`` column (columns ``user, item, rating``
        for a frame).
    metrics : sequence of str
        Among ``"rmse"`` and ``"mae"``.

    Returns
    -------
    EvaluationResult
        ``summary`` over all predicted pairs; ``n_users`` the users with a prediction;
        ``per_user`` holds each user's mean absolute and squared error.

    Raises
    ------
    ConfigError
        The model does not predict ratings, the test data has none, or a metric is not
        a rating metric.
    """
    unknown = [m for m in metrics if m not in RATING_METRICS]
    if unknown:
        raise ConfigError(
            f"evaluate_ratings computes {', '.join(RATING_METRICS)}; got {', '.join(unknown)}."
        )
    check_rating_inputs(model, test, metrics)
    model._check_fitted()
    frame = test.to_frame() if isinstance(test, Dataset) else test
    u = model.user_ids_.index(frame["user"], on_unknown="ignore")
    i = model.item_ids_.index(frame["item"], on_unknown="ignore")
    known = (u >= 0) & (i >= 0)
    if not known.any():
        raise DataError("No test pair has a user and an item the model knows; nothing to evaluate.")
    y = frame["rating"].to_numpy(np.float64)[known]
    pred = model.predict_ratings(u[known], i[known])
    summary = {m: float(_FUNCS[m](y, pred)) for m in metrics}
    err = pd.DataFrame(
        {
            "user": model.user_ids_.lookup(u[known]),
            "abs_error": np.abs(pred - y),
            "squared_error": (pred - y) ** 2,
        }
    )
    per_user = err.groupby("user").mean()
    notes = []
    if (~known).any():
        notes.append(
            f"{int((~known).sum())} test ratings of users or items unknown to the model "
            "were not predicted."
        )
    return EvaluationResult(
        name=name or model.name,
        summary=summary,
        per_user=per_user,
        n_users=len(per_user),
        notes=notes,
    )


def evaluate_pointwise(
    model: Any,
    test: Dataset,
    *,
    metrics: Sequence[str],
    threshold: float = 4.0,
    name: str | None = None,
) -> EvaluationResult:
    """Pointwise metrics of ``model`` on ``test`` (see the module docstring for what applies).

    Raises
    ------
    ConfigError
        A metric the inputs do not allow, with what it needs.
    """
    metrics = list(metrics)
    bad = [m for m in metrics if m not in POINTWISE]
    if bad:
        raise ConfigError(
            f"evaluate_pointwise computes {', '.join(POINTWISE)}; got {', '.join(bad)}."
        )
    if "log_loss" in metrics:
        raise ConfigError(
            "log_loss needs predicted probabilities, and no lmrec model outputs them (scores and "
            "predicted ratings are not probabilities). Use auc, or ndcg@10 for rankings."
        )
    rated = supports(model, RatingModel) and test.has_ratings
    if not rated and any(m in metrics for m in ("rmse", "mae", "f1")):
        check_rating_inputs(model, test, [m if m != "f1" else "rmse" for m in metrics])
    if rated:
        res = evaluate_ratings(
            model, test, metrics=[m for m in metrics if m in RATING_METRICS] or ["rmse"], name=name
        )
        summary = {m: res.summary[m] for m in metrics if m in res.summary}
        frame = test.to_frame()
        u = model.user_ids_.index(frame["user"], on_unknown="ignore")
        i = model.item_ids_.index(frame["item"], on_unknown="ignore")
        known = (u >= 0) & (i >= 0)
        pred = model.predict_ratings(u[known], i[known])
        liked = frame["rating"].to_numpy(np.float64)[known] >= threshold
        if "auc" in metrics:
            summary["auc"] = float(auc(liked, pred))
        if "f1" in metrics:
            summary["f1"] = float(f1(liked, pred, threshold=threshold))
        res.summary = {m: summary[m] for m in metrics}
        return res
    return _ranking_auc(model, test, name=name)


def _ranking_auc(model: Any, test: Dataset, *, name: str | None) -> EvaluationResult:
    """Per-user AUC of the model's scores: test items against the user's other unseen items."""
    from lmrec.models.validation import truth_from_ids

    model._check_fitted()
    frame = test.to_frame()
    users, truth, n_cold, _ = truth_from_ids(
        model.user_ids_, model.item_ids_, frame["user"], frame["item"]
    )
    if len(users) == 0:
        raise DataError("No test user is known to the model; nothing to evaluate.")
    n_items = model.n_items
    values = np.full(len(users), np.nan)
    for start in range(0, len(users), 512):
        rows = users[start : start + 512]
        scores = model.score(model.user_ids_.lookup(rows)).astype(np.float64)
        seen = model.seen_[rows].toarray() > 0
        pos = truth[start : start + len(rows), :n_items].toarray() > 0
        for r in range(len(rows)):
            keep = ~seen[r]
            y = pos[r][keep]
            if y.any() and not y.all():
                values[start + r] = _auc_fast(y, scores[r][keep])
    per_user = pd.DataFrame(
        {"auc": values}, index=pd.Index(model.user_ids_.lookup(users), name="user")
    )
    notes = [f"{n_cold} test users unknown to the model were not evaluated."] if n_cold else []
    return EvaluationResult(
        name=name or model.name,
        summary={"auc": float(np.nanmean(values))},
        per_user=per_user,
        n_users=int(np.isfinite(values).sum()),
        notes=notes,
    )


def _auc_fast(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties (as :func:`lmrec.eval.pointwise.auc`)."""
    from scipy.stats import rankdata

    ranks = rankdata(s)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
