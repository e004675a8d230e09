"""Held-out metrics inside a fit: early stopping and weight searches on validation data.

Models that declare :class:`~lmrec.models.capabilities.ValidatedModel` choose epochs or
weights by a ranking metric on ``valid``. They compute it here, under the same strict
protocol as :func:`lmrec.eval.protocol.evaluate` (full ranking, training items
excluded, test items matched by external id) and with the same metric definitions
(:mod:`lmrec.eval.metrics`), without depending on the evaluation layer above models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec.data.idmap import IdMap, as_id_array
from lmrec.errors import DataError
from lmrec.eval.metrics import compute_ranking_metrics, parse_metric

if TYPE_CHECKING:
    from lmrec.data.dataset import Dataset
    from lmrec.models.base import Recommender

__all__ = ["truth_from_ids", "validation_metric"]


def truth_from_ids(
    user_ids: IdMap, item_ids: IdMap, users: Any, items: Any
) -> tuple[np.ndarray, sp.csr_matrix, int, int]:
    """Truth rows for held-out (user, item) pairs given as external ids, in a model's index space.

    Returns the model's user indices of the evaluable users (sorted), their binary truth
    rows (items the model does not know sit in extra columns beyond ``len(item_ids)``,
    relevant but unreachable), the number of held-out users unknown to the model (cold
    users, not evaluated) and the number of distinct unknown items.
    """
    users = as_id_array(users)
    items = as_id_array(items)
    uidx = user_ids.index(users, on_unknown="ignore")
    iidx = item_ids.index(items, on_unknown="ignore")
    cold_users = len(pd.unique(users[uidx < 0]))
    keep = uidx >= 0
    uidx, iidx, items = uidx[keep], iidx[keep], items[keep]
    unknown = iidx < 0
    extra_ids, extra_idx = np.unique(items[unknown], return_inverse=True)
    iidx = iidx.copy()
    iidx[unknown] = len(item_ids) + extra_idx
    eval_users, row = np.unique(uidx, return_inverse=True)
    truth = sp.csr_matrix(
        (np.ones(len(row), np.float32), (row, iidx)),
        shape=(len(eval_users), len(item_ids) + len(extra_ids)),
    )
    truth.sum_duplicates()
    truth.data[:] = 1.0
    return eval_users, truth, cold_users, len(extra_ids)


def validation_metric(
    model: Recommender, valid: Dataset, metric: str = "ndcg@10", *, batch_size: int = 2048
) -> float:
    """Mean ``metric`` (e.g. ``"ndcg@10"``) of a fitted ``model`` over the users of ``valid``.

    Every item is ranked, the model's training items excluded; validation users the
    model does not know are left out. Raises DataError when no validation user is known.
    """
    spec = parse_metric(metric)
    k = getattr(spec, "k", None) or 10
    frame = valid.to_frame()
    users, truth, _, _ = truth_from_ids(
        model._user_ids,
        model._item_ids,
        frame["user"],
        frame["item"],
    )
    if len(users) == 0:
        raise DataError(
            "No validation user is known to the model: the validation data must hold "
            "held-out interactions of training users."
        )
    recs = np.empty((len(users), k), np.int64)
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        recs[start : start + len(rows)], _ = model.recommend_indices(rows, k)
    summary, _ = compute_ranking_metrics(recs, truth, [metric], n_items=model.n_items)
    return float(next(iter(summary.values())))
