"""What a report is built from: every model's top-K lists on one set of test users, in one
item space, with the training data, the catalog and the user attributes.

:func:`inputs_from_models` builds it from fitted models (full ranking, training items
excluded, as :func:`lmrec.eval.protocol.evaluate`); :func:`inputs_from_recommendations`
from any system's ``user,item,rank`` lists (as ``lmrec evaluate --recommendations``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap
from lmrec.errors import ConfigError, DataError
from lmrec.eval.protocol import EvaluationResult, recommendation_matrix
from lmrec.models.validation import truth_from_ids
from lmrec.ops.sparse import empty_csr

__all__ = [
    "ReportInputs",
    "fingerprint_frames",
    "inputs_from_models",
    "inputs_from_recommendations",
]

#: Longest list kept per user: the metric-vs-K curves go up to it.
K_MAX = 50


@dataclass
class ReportInputs:
    """Lists, truth and context of a report; row ``u`` of every array is the same user.

    Attributes
    ----------
    runs : dict of str to ndarray (n_users, K)
        Each model's lists, dense item indices best first, ``-1`` padded.
    truth : csr_matrix (n_users, >= n_items)
        Test items (extra columns: items outside the catalog, relevant but unreachable).
    history : csr_matrix (n_users, n_items)
        Each evaluated user's training items.
    train : csr_matrix (n_train_users, n_items)
        All training interactions (item popularity).
    item_ids : IdMap
        The shared item space.
    user_ids : ndarray
        External id of each row.
    items : DataFrame or None
        Catalog attributes, one row per item index (``items.iloc[i]`` is item ``i``).
    users : DataFrame or None
        User attributes, one row per evaluated user.
    """

    runs: dict[str, np.ndarray]
    truth: sp.csr_matrix
    history: sp.csr_matrix
    train: sp.csr_matrix
    item_ids: IdMap
    user_ids: np.ndarray
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    command: str = ""
    fingerprint: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Rating-prediction results (RMSE, MAE) of rating models, by model name.
    ratings: dict[str, EvaluationResult] = field(default_factory=dict)
    #: Trade-off points: columns ``method``, ``trade_off`` and metric columns.
    tradeoff: pd.DataFrame | None = None

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return len(self.item_ids)


def fingerprint_frames(**frames: pd.DataFrame | None) -> dict[str, str]:
    """sha256 (first 16 hex digits) of each frame's content, rows and columns as given."""
    out = {}
    for name, frame in frames.items():
        if frame is None:
            continue
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        out[name] = f"sha256:{digest.hexdigest()[:16]} ({len(frame):,} rows)"
    return out


def _aligned(table: pd.DataFrame | None, ids: np.ndarray) -> pd.DataFrame | None:
    if table is None:
        return None
    frame = table.copy()
    frame.index = frame.index.astype(str)
    return frame.reindex(pd.Index(np.asarray(ids).astype(str)))


def inputs_from_models(
    models: Mapping[str, Any],
    test: Dataset,
    *,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    k_max: int = K_MAX,
) -> ReportInputs:
    """Top-``k_max`` lists of fitted models that share one training set, on ``test``'s users.

    Parameters
    ----------
    models : mapping of name to fitted Recommender
        All fitted on the same data (same id maps); the first one's users and items
        define the report's rows and item space.
    test : Dataset
        Held-out interactions.
    items, users : DataFrame, optional
        Catalog and user attributes indexed by external id (default: the training
        data's, when the models remember none, the test set's).
    """
    if not models:
        raise ConfigError("A report needs at least one model.")
    first = next(iter(models.values()))
    for name, model in models.items():
        model._check_fitted()
        if len(model.item_ids_) != len(first.item_ids_) or len(model.user_ids_) != len(
            first.user_ids_
        ):
            raise ConfigError(f"Model {name!r} was trained on other data than the first model.")
    frame = test.to_frame()
    eval_users, truth, n_cold, _ = truth_from_ids(
        first.user_ids_, first.item_ids_, frame["user"], frame["item"]
    )
    if len(eval_users) == 0:
        raise DataError("No test user is known to the models; nothing to report.")
    runs = {}
    for name, model in models.items():
        recs = np.empty((len(eval_users), k_max), np.int64)
        for start in range(0, len(eval_users), 2048):
            rows = eval_users[start : start + 2048]
            recs[start : start + len(rows)] = model.recommend_indices(rows, k_max)[0]
        runs[name] = recs
    ids = first.user_ids_.lookup(eval_users)
    items = items if items is not None else test.items
    users = users if users is not None else test.users
    notes = [f"{n_cold} test users unknown to the models were not evaluated."] if n_cold else []
    return ReportInputs(
        runs=runs,
        truth=truth,
        history=sp.csr_matrix(first.seen_[eval_users]),
        train=first.seen_,
        item_ids=first.item_ids_,
        user_ids=ids,
        items=_aligned(items, first.item_ids_.lookup(np.arange(len(first.item_ids_)))),
        users=_aligned(users, ids),
        notes=notes,
    )


def inputs_from_recommendations(
    recs: pd.DataFrame,
    test: pd.DataFrame,
    *,
    train: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    name: str = "recommendations",
    k_max: int = K_MAX,
) -> ReportInputs:
    """Lists from any system (columns ``user, item, rank``) against ``test`` (``user, item``).

    The item space is every item of the catalog, the lists, the test and the training
    data; every test user is a row (a user without a list has an empty one).
    """
    for col in ("user", "item", "rank"):
        if col not in recs:
            raise DataError(f"Recommendation lists need columns user,item,rank; missing {col!r}.")
    parts: list[pd.Series] = [recs["item"], test["item"]]
    if train is not None:
        parts.append(train["item"])
    if items is not None:
        parts.append(pd.Series(items.index.astype(str)))
    item_ids = IdMap.from_values(
        pd.concat(
            [pd.Series(np.asarray(p, dtype=object)).astype(str) for p in parts], ignore_index=True
        )
    )
    user_ids = IdMap.from_values(test["user"].astype(str))
    eval_users, truth, _, _ = truth_from_ids(
        user_ids, item_ids, test["user"].astype(str), test["item"].astype(str)
    )
    frame = recs.assign(user=recs["user"].astype(str), item=recs["item"].astype(str))
    matrix = recommendation_matrix(frame, user_ids, item_ids, k_max)[eval_users]
    ids = user_ids.lookup(eval_users)
    n_items = len(item_ids)
    history = empty_csr(len(eval_users), n_items)
    train_csr = empty_csr(1, n_items)
    notes = []
    if train is not None:
        tu = IdMap.from_values(train["user"].astype(str))
        train_csr = sp.csr_matrix(
            (
                np.ones(len(train), np.float32),
                (tu.index(train["user"].astype(str)), item_ids.index(train["item"].astype(str))),
            ),
            shape=(len(tu), n_items),
        )
        train_csr.sum_duplicates()
        train_csr.data[:] = 1.0
        rows = tu.index(ids, on_unknown="ignore")
        pad = sp.vstack([train_csr, empty_csr(1, n_items)])
        history = sp.csr_matrix(pad[np.where(rows >= 0, rows, len(tu))])
    else:
        notes.append("No --train: popularity bias, novelty and calibration need the training data.")
    return ReportInputs(
        runs={name: matrix},
        truth=truth,
        history=history,
        train=train_csr,
        item_ids=item_ids,
        user_ids=ids,
        items=_aligned(items, item_ids.lookup(np.arange(n_items))),
        users=_aligned(users, ids),
        notes=notes,
    )
