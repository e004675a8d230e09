"""Evaluation: ranking, beyond-accuracy and pointwise metrics, and bootstrap confidence intervals.

- :mod:`lmrec.eval.metrics` -- every metric, the :data:`~lmrec.eval.metrics.METRICS`
  registry, :func:`~lmrec.eval.metrics.parse_metric` and
  :func:`~lmrec.eval.metrics.compute_ranking_metrics`;
- :mod:`lmrec.eval.bootstrap` -- percentile bootstrap intervals over users and paired
  model comparisons;
- :mod:`lmrec.eval.bias` -- popularity bias (ARP, popularity lift) and miscalibration;
- :mod:`lmrec.eval.groups` -- item groups, exposure by group, metrics by user group.

Definitions are in ``docs/metrics.md``.
"""

from lmrec.eval.bootstrap import bootstrap_ci, paired_bootstrap_diff
from lmrec.eval.groups import (
    ItemGroups,
    exposure_table,
    group_breakdown,
    group_exposure,
    group_gap,
    group_relevance,
)
from lmrec.eval.metrics import (
    AUC,
    F1,
    MAE,
    MAP,
    METRICS,
    MRR,
    NDCG,
    RMSE,
    AverageRecommendationPopularity,
    Coverage,
    GiniIndex,
    HitRate,
    IntraListDiversity,
    LogLoss,
    Miscalibration,
    Novelty,
    PopularityLift,
    Precision,
    RankingMetric,
    Recall,
    auc,
    compute_ranking_metrics,
    f1,
    hit_matrix,
    item_exposure,
    log_loss,
    mae,
    parse_metric,
    relevant_counts,
    rmse,
)

__all__ = [
    "AUC",
    "F1",
    "MAE",
    "MAP",
    "METRICS",
    "AverageRecommendationPopularity",
    "ItemGroups",
    "Miscalibration",
    "PopularityLift",
    "MRR",
    "NDCG",
    "RMSE",
    "Coverage",
    "GiniIndex",
    "HitRate",
    "IntraListDiversity",
    "LogLoss",
    "Novelty",
    "Precision",
    "RankingMetric",
    "Recall",
    "auc",
    "bootstrap_ci",
    "compute_ranking_metrics",
    "exposure_table",
    "f1",
    "group_breakdown",
    "group_exposure",
    "group_gap",
    "group_relevance",
    "hit_matrix",
    "item_exposure",
    "log_loss",
    "mae",
    "paired_bootstrap_diff",
    "parse_metric",
    "relevant_counts",
    "rmse",
]
