"""The strict evaluation protocol: full ranking over the catalog, training items excluded.

A model is asked for its top-K over *every* item it knows (no sampled negatives),
with each user's training items removed, for every test user it knows. Metrics are
computed per user, so confidence intervals and paired comparisons come for free.
Test users the model has never seen are not silently dropped: they are counted and
reported (``n_cold_users``); test items the model has never seen still count as
relevant (they can never be hit), so a model is not rewarded for a smaller catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec._progress import progress
from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap
from lmrec.errors import DataError
from lmrec.eval.bootstrap import bootstrap_ci, paired_bootstrap_diff
from lmrec.eval.metrics import compute_ranking_metrics, parse_metric
from lmrec.models.validation import truth_from_ids

DEFAULT_METRICS = (
    "precision@10", "recall@10", "recall@20", "ndcg@10", "ndcg@20", "map@10", "mrr@10",
    "hit_rate@10", "coverage@10", "gini@10", "novelty@10",
)  # fmt: skip


@dataclass
class EvaluationResult:
    """Metrics of one model on one test set.

    Attributes
    ----------
    summary : dict
        Metric name -> value (mean over evaluated users for per-user metrics).
    per_user : DataFrame
        One row per evaluated user (index: external user id), one column per
        per-user metric. Used for confidence intervals and paired tests.
    n_users : int
        Users evaluated (known to the model, with at least one test item).
    n_cold_users : int
        Test users unknown to the model, left out and reported.
    """

    name: str
    summary: dict[str, float]
    per_user: pd.DataFrame
    n_users: int
    n_cold_users: int = 0
    notes: list[str] = field(default_factory=list)

    def ci(self, metric: str, *, n_resamples: int = 1000, confidence: float = 0.95,
           seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
        """(mean, low, high) percentile-bootstrap interval of a per-user metric."""
        if metric not in self.per_user:
            raise KeyError(f"No per-user values for {metric!r}; have {list(self.per_user)}.")
        return bootstrap_ci(self.per_user[metric].to_numpy(), n_resamples=n_resamples,
                            confidence=confidence, seed=seed)  # fmt: skip

    def table(self, *, with_ci: bool = False, seed: int = 0) -> pd.DataFrame:
        """One-row frame of the summary (plus ``low``/``high`` columns when ``with_ci``)."""
        row: dict[str, Any] = {"model": self.name, "users": self.n_users}
        for name, value in self.summary.items():
            row[name] = value
            if with_ci and name in self.per_user:
                _, lo, hi = self.ci(name, seed=seed)
                row[f"{name} low"], row[f"{name} high"] = lo, hi
        return pd.DataFrame([row]).set_index("model")


def _longest_cutoff(metrics: Sequence[str]) -> int:
    """The largest ``@k`` among the metric names (validating them), or 10 if none has one."""
    return max((getattr(parse_metric(m), "k", 0) or 0) for m in metrics) or 10


def _truth_in_model_space(model: Any, test: Dataset) -> tuple[np.ndarray, sp.csr_matrix, int, int]:
    """Map test interactions onto the model's indices.

    Returns the model user indices of the evaluable users, their truth rows (items the
    model does not know sit in extra columns beyond ``model.n_items``), the number
    of cold users and the number of unknown test items.
    """
    frame = test.to_frame()
    return truth_from_ids(model.user_ids_, model.item_ids_, frame["user"], frame["item"])


def evaluate(
    model: Any,
    test: Dataset,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    exclude_seen: bool = True,
    item_features: Any = None,
    batch_size: int = 2048,
    name: str | None = None,
    show_progress: bool | None = None,
) -> EvaluationResult:
    """Evaluate a fitted model on ``test`` under the strict full-ranking protocol.

    Parameters
    ----------
    model : Recommender
        A fitted model; its training interactions are the ones excluded.
    test : Dataset
        Held-out interactions (any id maps: they are matched by external id).
    metrics : sequence of str
        Metric names such as ``"ndcg@10"``; see ``docs/metrics.md``.
    item_features : array (n_items, d), optional
        Item vectors in the model's item order, for intra-list diversity.

    Returns
    -------
    EvaluationResult
    """
    kmax = _longest_cutoff(metrics)
    model._check_fitted()
    eval_users, truth, n_cold, n_unknown_items = _truth_in_model_space(model, test)
    if len(eval_users) == 0:
        raise DataError(
            "No test user is known to the model, so nothing can be evaluated. Did you train "
            "on a different data set, or use a cold-start-user split (use that protocol's "
            "evaluation instead)?"
        )
    recs = np.empty((len(eval_users), kmax), np.int64)
    bar = progress(total=len(eval_users), desc=f"evaluate {name or model.name}", unit="user",
                   disable=None if show_progress is None else not show_progress)  # fmt: skip
    with bar:
        for start in range(0, len(eval_users), batch_size):
            rows = eval_users[start : start + batch_size]
            recs[start : start + len(rows)], _ = model.recommend_indices(
                rows, kmax, exclude_seen=exclude_seen
            )
            bar.update(len(rows))
    seen = model.seen_
    summary, per_user = compute_ranking_metrics(
        recs, truth, list(metrics), n_items=model.n_items, train=seen,
        item_features=item_features,
    )  # fmt: skip
    notes = []
    if n_cold:
        notes.append(f"{n_cold} test users unknown to the model were not evaluated (cold users).")
    if n_unknown_items:
        notes.append(
            f"{n_unknown_items} test items unknown to the model count as relevant but unreachable."
        )
    per_user_df = pd.DataFrame(
        per_user, index=pd.Index(model.user_ids_.lookup(eval_users), name="user")
    )
    return EvaluationResult(
        name=name or model.name or type(model).__name__,
        summary={k: float(v) for k, v in summary.items()},
        per_user=per_user_df,
        n_users=len(eval_users),
        n_cold_users=n_cold,
        notes=notes,
    )


def compare(
    results: Mapping[str, EvaluationResult] | Sequence[EvaluationResult],
    *,
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Side-by-side table with bootstrap CIs, and each model's paired difference to ``baseline``.

    Users are matched by id; only users evaluated for both models enter a paired
    difference. ``baseline`` defaults to the first result.
    """
    if not isinstance(results, Mapping):
        results = {r.name: r for r in results}
    if not results:
        raise ValueError("compare needs at least one evaluation result.")
    names = list(results)
    base = results[baseline or names[0]]
    cols = metrics or [m for m in base.summary]
    rows = []
    for name, res in results.items():
        row: dict[str, Any] = {"model": name, "users": res.n_users}
        for m in cols:
            row[m] = res.summary.get(m, np.nan)
            if m in res.per_user:
                _, lo, hi = res.ci(m, n_resamples=n_resamples, seed=seed)
                row[f"{m} ci"] = f"[{lo:.4f}, {hi:.4f}]"
                if res is not base and m in base.per_user:
                    common = res.per_user.index.intersection(base.per_user.index)
                    d = paired_bootstrap_diff(
                        res.per_user.loc[common, m].to_numpy(),
                        base.per_user.loc[common, m].to_numpy(),
                        n_resamples=n_resamples, seed=seed,
                    )  # fmt: skip
                    row[f"{m} diff"] = f"{d['mean_diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def recommendation_matrix(
    recs: pd.DataFrame, user_ids: IdMap, item_ids: IdMap, k: int
) -> np.ndarray:
    """Turn a ``user,item,rank`` frame into an (n_users, k) index matrix, -1 padded.

    Lists are ordered by ``rank`` (then by file order); ranks beyond ``k`` are cut.
    """
    frame = recs.assign(
        _u=user_ids.index(recs["user"], on_unknown="ignore"),
        _i=item_ids.index(recs["item"], on_unknown="ignore"),
        _order=np.arange(len(recs)),
    )
    frame = frame[frame["_u"] >= 0].sort_values(["_u", "rank", "_order"], kind="stable")
    pos = frame.groupby("_u").cumcount().to_numpy()
    keep = pos < k
    out = np.full((len(user_ids), k), -1, np.int64)
    out[frame["_u"].to_numpy()[keep], pos[keep]] = frame["_i"].to_numpy()[keep]
    return out


def evaluate_recommendations(
    recs: pd.DataFrame,
    test: pd.DataFrame,
    *,
    train: pd.DataFrame | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_items: int | None = None,
    name: str = "recommendations",
) -> EvaluationResult:
    """Evaluate recommendation lists produced by any system.

    ``recs`` has columns ``user, item, rank`` (external ids); ``test`` and the optional
    ``train`` have ``user, item``. Every test user is evaluated (a user without a
    list scores zero). The catalog for coverage is ``n_items`` if given, else every
    item seen in train, test or the lists. ``train`` enables novelty.
    """
    for col in ("user", "item", "rank"):
        if col not in recs:
            raise DataError(f"Recommendation lists need columns user,item,rank; missing {col!r}.")
    if not np.issubdtype(np.asarray(recs["rank"]).dtype, np.number):
        raise DataError("The 'rank' column of the recommendations must be numeric.")
    kmax = _longest_cutoff(metrics)
    frames = [recs["item"], test["item"]] + ([train["item"]] if train is not None else [])
    item_ids = IdMap.from_values(pd.concat(frames, ignore_index=True))
    user_ids = IdMap.from_values(test["user"])
    eval_users, truth, _, _ = truth_from_ids(user_ids, item_ids, test["user"], test["item"])
    rec_matrix = recommendation_matrix(recs, user_ids, item_ids, kmax)[eval_users]
    train_csr = None
    if train is not None:
        tu = IdMap.from_values(train["user"])
        train_csr = sp.csr_matrix(
            (np.ones(len(train), np.float32),
             (tu.index(train["user"]), item_ids.index(train["item"]))),
            shape=(len(tu), len(item_ids)),
        )  # fmt: skip
        train_csr.sum_duplicates()
    needs_train = [m for m in metrics if m.lower().startswith("novelty")]
    if train_csr is None and needs_train:
        metrics = [m for m in metrics if m not in needs_train]
    summary, per_user = compute_ranking_metrics(
        rec_matrix, truth, list(metrics), n_items=n_items or len(item_ids), train=train_csr,
    )  # fmt: skip
    per_user_df = pd.DataFrame(per_user, index=pd.Index(user_ids.lookup(eval_users), name="user"))
    notes = ["novelty needs --train; skipped."] if needs_train and train is None else []
    return EvaluationResult(name=name, summary={k: float(v) for k, v in summary.items()},
                            per_user=per_user_df, n_users=len(eval_users), notes=notes)  # fmt: skip
