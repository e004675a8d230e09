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
from lmrec.data.idmap import IdMap, as_id_array
from lmrec.errors import DataError
from lmrec.eval.bootstrap import bootstrap_ci, paired_bootstrap_diff
from lmrec.eval.metrics import compute_ranking_metrics, parse_metric
from lmrec.models.validation import truth_from_ids
from lmrec.ops.sparse import empty_csr

DEFAULT_METRICS = (
    "precision@10",
    "recall@10",
    "recall@20",
    "ndcg@10",
    "ndcg@20",
    "map@10",
    "mrr@10",
    "hit_rate@10",
    "coverage@10",
    "gini@10",
    "novelty@10",
)


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

    def ci(
        self, metric: str, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
    ) -> tuple[float, float, float]:
        """(mean, low, high) percentile-bootstrap interval of a per-user metric."""
        if metric not in self.per_user:
            raise KeyError(f"No per-user values for {metric!r}; have {list(self.per_user)}.")
        return bootstrap_ci(
            self.per_user[metric].to_numpy(),
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )

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


def exclusion_matrix(user_ids: IdMap, item_ids: IdMap, users: Any, items: Any) -> sp.csr_matrix:
    """A ``(len(user_ids), len(item_ids))`` 0/1 CSR marking the (user, item) pairs given.

    Pairs whose user or item is not in the maps are left out (nothing to exclude).

    >>> m = exclusion_matrix(IdMap(["u1", "u2"]), IdMap(["a", "b", "c"]),
    ...                      ["u2", "u2", "u9"], ["c", "a", "a"])
    >>> m.toarray().tolist()
    [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]
    """
    uidx = user_ids.index(as_id_array(users), on_unknown="ignore")
    iidx = item_ids.index(as_id_array(items), on_unknown="ignore")
    keep = (uidx >= 0) & (iidx >= 0)
    out = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (uidx[keep], iidx[keep])),
        shape=(len(user_ids), len(item_ids)),
    )
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


def evaluate(
    model: Any,
    test: Dataset,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    exclude_seen: bool = True,
    exclude: Dataset | pd.DataFrame | None = None,
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
    exclude_seen : bool, default True
        Drop each user's training items from their list.
    exclude : Dataset or DataFrame with ``user, item`` columns, optional
        More (user, item) pairs to drop from the lists, e.g. the validation part when
        the model was fitted on train only; pairs the model does not know are ignored.
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
    extra = None
    if exclude is not None:
        frame = exclude.to_frame() if isinstance(exclude, Dataset) else exclude
        extra = exclusion_matrix(model.user_ids_, model.item_ids_, frame["user"], frame["item"])
    recs = np.empty((len(eval_users), kmax), np.int64)
    bar = progress(
        total=len(eval_users),
        desc=f"evaluate {name or model.name}",
        unit="user",
        disable=None if show_progress is None else not show_progress,
    )
    with bar:
        for start in range(0, len(eval_users), batch_size):
            rows = eval_users[start : start + batch_size]
            recs[start : start + len(rows)], _ = model.recommend_indices(
                rows, kmax, exclude_seen=exclude_seen, exclude=extra
            )
            bar.update(len(rows))
    seen = model.seen_
    summary, per_user = compute_ranking_metrics(
        recs,
        truth,
        list(metrics),
        n_items=model.n_items,
        train=seen,
        item_features=item_features,
        history=seen[eval_users],
    )
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

    One row per model: ``users``, each metric's value, and for per-user metrics a
    ``"<metric> ci"`` column (``"[low, high]"``) and a ``"<metric> diff"`` column
    (``"+mean [+low, +high]"``, the paired bootstrap difference to the baseline; ``"-"``
    in the baseline's own row). Users are matched by id; only users evaluated for both
    models enter a paired difference. ``baseline`` defaults to the first result.
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
                if res is base:
                    row[f"{m} diff"] = "-"
                elif m in base.per_user:
                    common = res.per_user.index.intersection(base.per_user.index)
                    d = paired_bootstrap_diff(
                        res.per_user.loc[common, m].to_numpy(),
                        base.per_user.loc[common, m].to_numpy(),
                        n_resamples=n_resamples,
                        seed=seed,
                    )
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
    catalog: Any = None,
    n_items: int | None = None,
    name: str = "recommendations",
) -> EvaluationResult:
    """Evaluate recommendation lists produced by any system.

    ``recs`` has columns ``user, item, rank`` (external ids); ``test`` and the optional
    ``train`` have ``user, item``. Every test user is evaluated (a user without a
    list scores zero).

    The catalog (for coverage and Gini) is defined as in :func:`evaluate`: the items
    the recommender knew, i.e. the ``catalog`` ids (an item file) plus every item of
    ``train`` and of the lists. Test items outside it count as relevant but can never
    be hit, exactly as unknown items do for a model. So lists scored here and the same
    model evaluated with :func:`evaluate` (trained on ``train``) get the same coverage.
    ``n_items`` overrides the catalog size. Without ``train``, ``catalog`` and
    ``n_items`` the catalog is unknown: coverage and Gini are left out with a note,
    as novelty is without ``train``.
    """
    for col in ("user", "item", "rank"):
        if col not in recs:
            raise DataError(f"Recommendation lists need columns user,item,rank; missing {col!r}.")
    if not np.issubdtype(np.asarray(recs["rank"]).dtype, np.number):
        raise DataError("The 'rank' column of the recommendations must be numeric.")
    kmax = _longest_cutoff(metrics)
    known = [as_id_array(recs["item"])]
    if train is not None:
        known.append(as_id_array(train["item"]))
    if catalog is not None:
        known.append(as_id_array(catalog))
    item_ids = IdMap.from_values(np.concatenate(known))
    user_ids = IdMap.from_values(test["user"])
    eval_users, truth, _, _ = truth_from_ids(user_ids, item_ids, test["user"], test["item"])
    rec_matrix = recommendation_matrix(recs, user_ids, item_ids, kmax)[eval_users]
    train_csr = history = None
    if train is not None:
        tu = IdMap.from_values(train["user"])
        train_csr = sp.csr_matrix(
            (
                np.ones(len(train), np.float32),
                (tu.index(train["user"]), item_ids.index(train["item"])),
            ),
            shape=(len(tu), len(item_ids)),
        )
        train_csr.sum_duplicates()
        # Each evaluated user's training items, row-aligned with the lists (empty if unseen).
        rows = tu.index(user_ids.lookup(eval_users), on_unknown="ignore")
        pad = sp.vstack([train_csr, empty_csr(1, len(item_ids))])
        history = sp.csr_matrix(pad[np.where(rows >= 0, rows, len(tu))])
    notes = []
    dropped = [m for m in metrics if m.lower().startswith("novelty")] if train is None else []
    if dropped:
        notes.append("novelty needs the training interactions (--train); skipped.")
    if train is None and catalog is None and n_items is None:
        no_catalog = [m for m in metrics if m.lower().split("@")[0] in ("coverage", "gini")]
        if no_catalog:
            notes.append(
                "coverage and gini need the catalog: pass the training interactions "
                "(--train) or the item catalog (--items); skipped."
            )
        dropped += no_catalog
    metrics = [m for m in metrics if m not in dropped]
    summary, per_user = compute_ranking_metrics(
        rec_matrix,
        truth,
        list(metrics),
        n_items=n_items or len(item_ids),
        train=train_csr,
        history=history,
    )
    per_user_df = pd.DataFrame(per_user, index=pd.Index(user_ids.lookup(eval_users), name="user"))
    return EvaluationResult(
        name=name,
        summary={k: float(v) for k, v in summary.items()},
        per_user=per_user_df,
        n_users=len(eval_users),
        notes=notes,
    )
