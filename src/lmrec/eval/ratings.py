"""Rating-prediction evaluation: RMSE and MAE of a rating model on held-out explicit ratings.

Only models that declare :class:`~lmrec.models.capabilities.RatingModel` predict ratings
(``biasedmf``, ``knnbaseline``); ranking models score items on their own scale, so RMSE
against 1-5 stars would be meaningless and is refused with a message that names the
models that can. Pairs whose user or item the model has never seen are left out and
counted in the notes (as cold users are in the ranking protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, DataError
from lmrec.eval.pointwise import mae, rmse
from lmrec.eval.protocol import EvaluationResult
from lmrec.models.capabilities import RatingModel, supports
from lmrec.models.registry import models_supporting

__all__ = ["RATING_METRICS", "check_rating_inputs", "evaluate_ratings"]

#: Metrics that compare predicted with observed ratings.
RATING_METRICS = ("rmse", "mae")
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
    err = pd.DataFrame({"user": model.user_ids_.lookup(u[known]), "abs_error": np.abs(pred - y),
                        "squared_error": (pred - y) ** 2})  # fmt: skip
    per_user = err.groupby("user").mean()
    notes = []
    if (~known).any():
        notes.append(f"{int((~known).sum())} test ratings of users or items unknown to the model "
                     "were not predicted.")  # fmt: skip
    return EvaluationResult(name=name or model.name, summary=summary, per_user=per_user,
                            n_users=len(per_user), notes=notes)  # fmt: skip
