"""The metric layer of :mod:`lmrec.eval`: one import surface, a registry and a batch entry point.

The metrics themselves live in :mod:`lmrec.eval.ranking` (top-K accuracy),
:mod:`lmrec.eval.beyond` (coverage, Gini, novelty, diversity) and
:mod:`lmrec.eval.pointwise` (RMSE, MAE, AUC, log loss, F1); all are re-exported here.
This module adds:

- :data:`METRICS`, the registry from short name to metric class;
- :func:`parse_metric`, which turns a spec such as ``"ndcg@10"`` into a metric object;
- :func:`compute_ranking_metrics`, which computes many list metrics from one join.

Definitions, denominators and edge cases are in ``docs/metrics.md``.

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lmrec.errors import ConfigError, DataError
from lmrec.eval.beyond import Coverage, GiniIndex, IntraListDiversity, Novelty, item_exposure
from lmrec.eval.bias import AverageRecommendationPopularity, Miscalibration, PopularityLift
from lmrec.eval.pointwise import AUC, F1, MAE, RMSE, LogLoss, auc, f1, log_loss, mae, rmse
from lmrec.eval.ranking import (
    MAP,
    MRR,
    NDCG,
    BoolArray,
    FloatArray,
    HitRate,
    IntArray,
    Precision,
    RankingMetric,
    Recall,
    _as_csr,
    _as_recs,
    hit_matrix,
    relevant_counts,
)

__all__ = [
    "AUC",
    "F1",
    "MAE",
    "MAP",
    "METRICS",
    "AverageRecommendationPopularity",
    "Miscalibration",
    "PopularityLift",
    "MRR",
    "NDCG",
    "RMSE",
    "Coverage",
    "GiniIndex",
    "HitRate",
    "IntraListDiversity",
    "ListMetric",
    "LogLoss",
    "Novelty",
    "Precision",
    "RankingMetric",
    "Recall",
    "auc",
    "compute_ranking_metrics",
    "f1",
    "hit_matrix",
    "item_exposure",
    "log_loss",
    "mae",
    "parse_metric",
    "relevant_counts",
    "rmse",
]

#: A metric that :func:`compute_ranking_metrics` accepts (reads recommendation lists).
ListMetric = (
    Precision
    | Recall
    | NDCG
    | MAP
    | MRR
    | HitRate
    | Coverage
    | GiniIndex
    | Novelty
    | IntraListDiversity
    | AverageRecommendationPopularity
    | PopularityLift
    | Miscalibration
)

#: Short name -> metric class. List metrics take ``@k``; pointwise ones take no cut-off.
#: Built-ins are listed here, in one place; the order is the order of ``docs/metrics.md``.
METRICS: dict[str, type] = {
    "precision": Precision,
    "recall": Recall,
    "ndcg": NDCG,
    "map": MAP,
    "mrr": MRR,
    "hit_rate": HitRate,
    "coverage": Coverage,
    "gini": GiniIndex,
    "novelty": Novelty,
    "ild": IntraListDiversity,
    "arp": AverageRecommendationPopularity,
    "pop_lift": PopularityLift,
    "miscalibration": Miscalibration,
    "rmse": RMSE,
    "mae": MAE,
    "auc": AUC,
    "log_loss": LogLoss,
    "f1": F1,
}

# What each optional argument of compute_ranking_metrics is, for error messages.
_ARGUMENT_HELP = {
    "n_items": "the catalog size",
    "train": "the training interactions as a scipy.sparse matrix (n_users, n_items)",
    "item_features": "an item feature matrix (n_items, n_features), dense or sparse",
    "history": "each evaluated user's training items as a scipy.sparse matrix aligned with recs",
}


def _takes_k(cls: type) -> bool:
    return dataclasses.is_dataclass(cls) and any(f.name == "k" for f in dataclasses.fields(cls))


def parse_metric(spec: str) -> Any:
    """Build a metric object from a spec such as ``"ndcg@10"`` or ``"rmse"``.

    List metrics (ranking and beyond-accuracy) need a cut-off, ``name@k``; pointwise
    metrics take none. Case and surrounding spaces are ignored.

    Parameters
    ----------
    spec : str
        ``"<name>@<k>"`` for list metrics, ``"<name>"`` for pointwise ones; names are
        the keys of :data:`METRICS`.

    Returns
    -------
    metric object
        For example ``NDCG(k=10)`` or ``RMSE()``.

    Raises
    ------
    ConfigError
        On an unknown name (the message lists the valid ones), a missing or invalid
        ``k``, or a ``k`` given to a pointwise metric.

    Examples
    --------
    >>> parse_metric("NDCG@10")
    NDCG(k=10)
    >>> parse_metric("rmse")
    RMSE()
    """
    if not isinstance(spec, str):
        raise ConfigError(f"A metric spec must be a string such as 'ndcg@10'; got {spec!r}.")
    text = spec.strip().lower()
    name, at, k_text = text.partition("@")
    name = name.strip()
    cls = METRICS.get(name)
    if cls is None:
        valid = ", ".join(METRICS)
        raise ConfigError(f"Unknown metric {spec!r}. Valid metric names are: {valid}.")
    if not _takes_k(cls):
        if at:
            raise ConfigError(f"Metric {name!r} is pointwise and takes no '@k'; write {name!r}.")
        return cls()
    if not at:
        raise ConfigError(f"Metric {name!r} needs a list cut-off; write for example '{name}@10'.")
    try:
        k = int(k_text.strip())
    except ValueError as e:
        raise ConfigError(
            f"The cut-off in metric spec {spec!r} must be an int >= 1. Got {k_text!r} instead."
        ) from e
    return cls(k)


class _EvalInputs:
    """What list metrics read, with the hit matrix computed once and shared."""

    def __init__(
        self,
        recs: IntArray,
        truth: Any,
        *,
        n_items: int,
        train: Any,
        item_features: Any,
        history: Any = None,
    ) -> None:
        self.recs = recs
        self.truth = truth
        self.n_items = n_items
        self.train = train
        self.item_features = item_features
        self.history = history

    @cached_property
    def hits(self) -> BoolArray:
        return hit_matrix(self.recs, self.truth)

    @cached_property
    def n_relevant(self) -> IntArray:
        return relevant_counts(self.truth)

    def require(self, argument: str, metric_name: str) -> Any:
        value = getattr(self, argument)
        if value is None:
            raise ConfigError(
                f"Metric {metric_name!r} needs the {argument!r} argument "
                f"({_ARGUMENT_HELP[argument]}); pass {argument}=... to compute_ranking_metrics."
            )
        return value


def compute_ranking_metrics(
    recs: ArrayLike,
    truth: Any,
    specs: Sequence[str | ListMetric],
    *,
    n_items: int | None = None,
    train: Any = None,
    item_features: Any = None,
    history: Any = None,
) -> tuple[dict[str, float], dict[str, FloatArray]]:
    """Compute several list metrics, joining recommendations and test set once.

    The hit matrix is computed once, at the largest ``k`` requested, and each accuracy
    metric reads its first ``k`` columns.

    Parameters
    ----------
    recs : array-like of int, shape (n_users, K)
        Item indices per user, best first; ``-1`` pads short lists.
    truth : scipy.sparse matrix, shape (n_users, n_items)
        Nonzero entries mark each user's relevant (test) items.
    specs : sequence of str or metric objects
        Specs such as ``"ndcg@10"`` (see :func:`parse_metric`) or metric objects.
        Pointwise metrics are rejected.
    n_items : int, optional
        Catalog size, for coverage and Gini; defaults to ``truth.shape[1]``. ``truth``
        may be wider: its extra columns are relevant items outside the catalog, which
        count in the number of relevant items but can never be recommended.
    train : scipy.sparse matrix, shape (n_train_users, n_items), optional
        Training interactions; needed by novelty.
    item_features : ndarray or scipy.sparse matrix, shape (n_items, n_features), optional
        Needed by intra-list diversity and miscalibration.
    history : scipy.sparse matrix, shape (n_users, n_items), optional
        Each evaluated user's training items, row ``u`` the user of ``recs`` row ``u``;
        needed by popularity lift and miscalibration.

    Returns
    -------
    summary : dict of str to float
        One value per metric, keyed by its canonical name (``"ndcg@10"``), in spec order.
    per_user : dict of str to ndarray of float64, shape (n_users,)
        For the metrics that have per-user values (all accuracy metrics and ``ild``);
        ``NaN`` marks users left out of the mean. Coverage, Gini and novelty
        describe the whole matrix and have no entry.

    Raises
    ------
    ConfigError
        On an invalid spec, a pointwise metric, or a metric whose extra argument
        (``train``, ``item_features``) is missing; checked before any work.
    DataError
        On malformed ``recs``/``truth``, an item index ``>= n_items``, ``n_items``
        larger than ``truth.shape[1]``, or ``train`` / ``item_features`` whose item
        count differs from ``n_items``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[1, 1, 0, 0, 0], [0, 0, 0, 1, 0]])
    >>> recs = np.array([[0, 4, 1], [3, -1, -1]])
    >>> summary, per_user = compute_ranking_metrics(recs, truth, ["recall@1", "coverage@3"])
    >>> summary  # recall@1: mean(1/2, 1/1); coverage@3: items {0, 1, 3, 4} of 5
    {'recall@1': 0.75, 'coverage@3': 0.8}
    >>> per_user["recall@1"]
    array([0.5, 1. ])
    """
    metrics: list[Any] = []
    for spec in specs:
        metric = parse_metric(spec) if isinstance(spec, str) else spec
        if not hasattr(metric, "_evaluate"):
            raise ConfigError(
                f"compute_ranking_metrics takes list metrics (ranking and beyond-accuracy); "
                f"{getattr(metric, 'name', metric)!r} is pointwise or not a metric. "
                "Call pointwise metrics on (y_true, y_pred) directly."
            )
        metrics.append(metric)
    # n_items is always available: it defaults to the width of truth.
    supplied = {
        "n_items": True,
        "train": train is not None,
        "item_features": item_features is not None,
        "history": history is not None,
    }
    for metric in metrics:
        for argument in type(metric).requires:
            if not supplied[argument]:
                raise ConfigError(
                    f"Metric {metric.name!r} needs the {argument!r} argument "
                    f"({_ARGUMENT_HELP[argument]}); pass {argument}=... to "
                    "compute_ranking_metrics."
                )

    csr = _as_csr(truth, "truth")
    width = int(csr.shape[1])
    # truth may be wider than the catalog: extra columns are relevant items the model
    # cannot recommend (unknown at training time); they still count in |T_u|.
    catalog = width if n_items is None else int(n_items)
    if not 1 <= catalog <= width:
        raise DataError(
            f"n_items={n_items} must be between 1 and the {width} columns of truth "
            "(truth may hold extra, unrecommendable items, but not fewer)."
        )
    if train is not None and train.shape[1] != catalog:
        raise DataError(f"train has {train.shape[1]} item columns but n_items is {catalog}.")
    if item_features is not None and item_features.shape[0] != catalog:
        raise DataError(
            f"item_features has {item_features.shape[0]} rows but n_items is {catalog}."
        )
    arr = _as_recs(recs, catalog)
    if history is not None and tuple(history.shape) != (arr.shape[0], catalog):
        raise DataError(
            f"history has shape {tuple(history.shape)} but must be ({arr.shape[0]}, {catalog}): "
            "one row per row of recs, one column per catalog item."
        )
    if arr.shape[0] != csr.shape[0]:
        raise DataError(
            f"recs has {arr.shape[0]} rows but truth has {csr.shape[0]}; row u of both must be "
            "the same user."
        )
    max_k = max((m.k for m in metrics), default=0)
    inputs = _EvalInputs(
        np.ascontiguousarray(arr[:, :max_k]),
        csr,
        n_items=catalog,
        train=train,
        item_features=item_features,
        history=history,
    )
    summary: dict[str, float] = {}
    per_user: dict[str, FloatArray] = {}
    for metric in metrics:
        value, values = metric._evaluate(inputs)
        summary[metric.name] = value
        if values is not None:
            per_user[metric.name] = values
    return summary, per_user
