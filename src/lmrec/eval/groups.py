"""Fairness by group: item groups, exposure shares and ratios, and metrics per user group.

Item side
    :class:`ItemGroups` says which group each catalog item belongs to: popularity tiers
    (:meth:`ItemGroups.popularity_tiers`, head / mid / tail) or any catalog attribute
    (:meth:`ItemGroups.from_labels`, e.g. genres, with multi-valued labels split evenly).
    :func:`group_exposure` is each group's share of the exposure in the top-``k`` lists,
    :func:`group_relevance` its share of the relevant (test) items, and
    :func:`exposure_table` puts both side by side with their ratio: a ratio below 1
    means the group is shown less than its share of what users actually want.
User side
    :func:`group_breakdown` gives every per-user metric's mean per user group (gender,
    age band, activity, ...) with a bootstrap interval, and :func:`group_gap` the gap
    between the best- and worst-served group with a stratified bootstrap interval.

Definitions and a worked example are in ``docs/metrics.md`` ("Fairness by group").

Stability: caller. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

from lmrec._checks import check_k
from lmrec.errors import ConfigError, DataError, DataWarning
from lmrec.eval.bootstrap import _check_options, _interval, _resampled_means, _rng, bootstrap_ci
from lmrec.eval.ranking import FloatArray, IntArray, _as_csr, _as_recs, _first_occurrence

__all__ = [
    "ItemGroups",
    "activity_bands",
    "age_bands",
    "exposure_table",
    "group_breakdown",
    "group_exposure",
    "group_gap",
    "group_relevance",
]

#: How a slot's exposure depends on its rank ``r`` (1-based): ``uniform`` 1 for every
#: slot, ``log`` the NDCG discount 1 / log2(r + 1) (attention falls with the position).
Discount = Literal["uniform", "log"]

#: Label of items (or users) whose attribute is missing.
MISSING = "unknown"


@dataclass(frozen=True, eq=False)
class ItemGroups:
    """Membership of each catalog item in named groups.

    Attributes
    ----------
    names : tuple of str
        Group names, in column order of ``membership``.
    membership : scipy.sparse.csr_matrix, shape (n_items, n_groups)
        Row ``i`` is item ``i``'s share in each group; every row sums to 1 (an item in
        ``m`` groups counts ``1/m`` in each, as Steck's genre distributions do).
    attribute : str
        What the groups are (``"popularity"``, ``"genres"``), for reports.
    """

    names: tuple[str, ...]
    membership: sp.csr_matrix
    attribute: str = "group"

    def __post_init__(self) -> None:
        m = sp.csr_matrix(self.membership, dtype=np.float64)
        if m.shape[1] != len(self.names):
            raise DataError(
                f"ItemGroups has {len(self.names)} names but membership has {m.shape[1]} columns."
            )
        if m.nnz and (m.data.min() < 0 or not np.isfinite(m.data).all()):
            raise DataError("ItemGroups membership must be finite and non-negative.")
        sums = np.asarray(m.sum(axis=1)).ravel()
        if not np.allclose(sums, 1.0):
            raise DataError("Every item must belong to its groups with shares summing to 1.")
        object.__setattr__(self, "membership", m)

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return int(self.membership.shape[0])

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return len(self.names)

    @classmethod
    def from_labels(
        cls,
        labels: ArrayLike | pd.Series,
        *,
        separator: str | None = None,
        attribute: str = "group",
    ) -> ItemGroups:
        """Groups from one label per item, in item-index order.

        Parameters
        ----------
        labels : array-like or Series, length n_items
            The attribute value of each item; missing values (NaN, None, "") form the
            group ``"unknown"``.
        separator : str, optional
            Split multi-valued labels (``"Action|Comedy"`` with ``separator="|"``); an
            item in ``m`` groups counts ``1/m`` in each.
        attribute : str
            Name of the attribute, for reports.

        Examples
        --------
        >>> g = ItemGroups.from_labels(["a|b", "b", None], separator="|", attribute="genre")
        >>> g.names
        ('a', 'b', 'unknown')
        >>> g.membership.toarray()
        array([[0.5, 0.5, 0. ],
               [0. , 1. , 0. ],
               [0. , 0. , 1. ]])
        """
        values = pd.Series(np.asarray(labels, dtype=object))
        if len(values) == 0:
            raise DataError("ItemGroups.from_labels needs one label per catalog item; got none.")
        per_item: list[list[str]] = []
        for v in values:
            text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            parts = [p.strip() for p in text.split(separator)] if separator else [text.strip()]
            parts = list(dict.fromkeys(p for p in parts if p)) or [MISSING]
            per_item.append(parts)
        names = sorted({p for parts in per_item for p in parts if p != MISSING})
        if any(MISSING in parts for parts in per_item):
            names.append(MISSING)
        col = {n: j for j, n in enumerate(names)}
        rows = np.repeat(np.arange(len(per_item)), [len(p) for p in per_item])
        cols = np.array([col[p] for parts in per_item for p in parts], dtype=np.int64)
        data = np.concatenate([np.full(len(p), 1.0 / len(p)) for p in per_item])
        m = sp.csr_matrix((data, (rows, cols)), shape=(len(per_item), len(names)))
        return cls(tuple(names), m, attribute)

    @classmethod
    def popularity_tiers(cls, train: Any, *, cuts: tuple[float, float] = (0.2, 0.8)) -> ItemGroups:
        """Head, mid and tail items by their share of the training interactions.

        Items are sorted by training popularity (users who interacted with them), most
        popular first, ties by item index. With ``S_j`` the share of all training
        interactions that goes to items ranked before ``j``: ``head`` holds the items
        with ``S_j < cuts[0]`` (the few most popular items that together account for
        the first 20% of interactions), ``tail`` those with ``S_j >= cuts[1]`` (the
        many items sharing the last 20%, and items nobody touched), ``mid`` the rest,
        as in Abdollahpouri et al. (2021).

        Parameters
        ----------
        train : scipy.sparse matrix, shape (n_users, n_items)
        cuts : (float, float)
            Cumulative interaction shares where head ends and tail starts, 0 < a < b < 1.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> train = sp.csr_matrix([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1]])
        >>> # popularity [3, 2, 1, 1] of 7; shares before each item: 0, 3/7, 5/7, 6/7
        >>> g = ItemGroups.popularity_tiers(train, cuts=(0.3, 0.8))
        >>> g.labels().tolist()
        ['head', 'mid', 'mid', 'tail']
        """
        lo, hi = (float(c) for c in cuts)
        if not 0.0 < lo < hi < 1.0:
            raise ConfigError(f"cuts must satisfy 0 < head < tail < 1; got {cuts!r}.")
        csr = _as_csr(train, "train")
        pop = np.bincount(csr.indices[csr.data != 0], minlength=csr.shape[1]).astype(np.float64)
        if pop.sum() == 0:
            raise DataError("train holds no interaction; popularity tiers need some.")
        order = np.lexsort((np.arange(len(pop)), -pop))  # most popular first, ties by index
        before = np.empty_like(pop)
        before[order] = (np.cumsum(pop[order]) - pop[order]) / pop.sum()
        tier = np.where(before < lo, 0, np.where(before >= hi, 2, 1))
        m = sp.csr_matrix((np.ones(len(pop)), (np.arange(len(pop)), tier)), shape=(len(pop), 3))
        return cls(("head", "mid", "tail"), m, "popularity")

    def labels(self) -> np.ndarray:
        """Each item's main group (its largest share; the first such group on ties)."""
        return np.asarray(self.names, dtype=object)[
            np.asarray(self.membership.argmax(axis=1)).ravel()
        ]

    def catalog_share(self) -> FloatArray:
        """Each group's share of the catalog (items split across their groups)."""
        return np.asarray(self.membership.sum(axis=0)).ravel() / self.n_items


def _check_groups(groups: object) -> ItemGroups:
    if not isinstance(groups, ItemGroups):
        raise ConfigError(
            f"groups must be an lmrec.eval.groups.ItemGroups; got {type(groups).__name__}. "
            "Build one with ItemGroups.from_labels or ItemGroups.popularity_tiers."
        )
    return groups


def _shares(totals: FloatArray, what: str) -> FloatArray:
    total = float(totals.sum())
    if total <= 0:
        warnings.warn(f"{what}: nothing to share out; returning NaN.", DataWarning, stacklevel=3)
        return np.full(totals.shape, np.nan)
    return totals / total


def group_exposure(
    recs: ArrayLike, groups: ItemGroups, *, k: int, discount: Discount = "uniform"
) -> FloatArray:
    r"""Each item group's share of the exposure in the top-``k`` lists.

    .. math:: E_g = \frac{\sum_u \sum_{r \le k} e_r\, m_{L_u(r), g}}{\sum_u \sum_{r \le k} e_r}

    with ``m`` the membership matrix and ``e_r = 1`` (``uniform``) or
    ``1 / log2(r + 1)`` (``log``). Padding and repeated items carry no exposure.
    Shares sum to 1; all NaN, with a ``DataWarning``, when ``recs`` holds no item.

    Examples
    --------
    >>> import numpy as np
    >>> g = ItemGroups.from_labels(["a", "a", "b"])
    >>> group_exposure(np.array([[0, 2], [1, -1]]), g, k=2)  # slots: a, b, a
    array([0.66666667, 0.33333333])
    """
    g = _check_groups(groups)
    k = check_k(k, "group_exposure")
    if discount not in ("uniform", "log"):
        raise ConfigError(f"discount must be 'uniform' or 'log'; got {discount!r}.")
    arr = _as_recs(recs, g.n_items)[:, :k]
    keep = _first_occurrence(arr)
    weight = (
        np.ones(arr.shape[1])
        if discount == "uniform"
        else 1.0 / np.log2(np.arange(2, arr.shape[1] + 2))
    )
    slot_w = np.broadcast_to(weight, arr.shape)[keep]
    per_item = np.bincount(arr[keep], weights=slot_w, minlength=g.n_items)
    return _shares(g.membership.T @ per_item, "group_exposure")


def group_relevance(truth: Any, groups: ItemGroups) -> FloatArray:
    """Each item group's share of the relevant (test) items.

    Every nonzero entry of ``truth`` counts once, split across its item's groups.
    Columns beyond the catalog (test items unknown to the model) are left out.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> g = ItemGroups.from_labels(["a", "a", "b"])
    >>> group_relevance(sp.csr_matrix([[1, 0, 1], [0, 0, 1]]), g)
    array([0.33333333, 0.66666667])
    """
    g = _check_groups(groups)
    csr = _as_csr(truth, "truth")
    if csr.shape[1] < g.n_items:
        raise DataError(f"truth has {csr.shape[1]} item columns but the groups cover {g.n_items}.")
    cols = csr.indices[(csr.data != 0) & (csr.indices < g.n_items)]
    return _shares(g.membership.T @ np.bincount(cols, minlength=g.n_items), "group_relevance")


def exposure_table(
    recs: ArrayLike,
    truth: Any,
    groups: ItemGroups,
    *,
    k: int,
    discount: Discount = "uniform",
) -> pd.DataFrame:
    """Catalog, relevance and exposure share of each item group, and the exposure ratio.

    ``exposure_ratio = exposure_share / relevance_share``: 1 means the group gets the
    exposure its share of relevant items warrants, below 1 under-exposure (NaN for a
    group with no relevant item).

    Returns
    -------
    DataFrame
        Index: group names; columns ``catalog_share``, ``relevance_share``,
        ``exposure_share``, ``exposure_ratio``.
    """
    g = _check_groups(groups)
    exposure = group_exposure(recs, g, k=k, discount=discount)
    relevance = group_relevance(truth, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(relevance > 0, exposure / relevance, np.nan)
    return pd.DataFrame(
        {
            "catalog_share": g.catalog_share(),
            "relevance_share": relevance,
            "exposure_share": exposure,
            "exposure_ratio": ratio,
        },
        index=pd.Index(g.names, name=g.attribute),
    )


# ----------------------------------------------------------------------------- user side


def age_bands(
    ages: ArrayLike | pd.Series, edges: Sequence[int] = (18, 25, 35, 45, 56)
) -> pd.Series:
    """Age bands such as ``"<18"``, ``"18-24"``, ..., ``"56+"`` (MovieLens' own bands).

    Non-numeric or missing ages give ``"unknown"``.

    Examples
    --------
    >>> age_bands([12, 18, 30, 70, None]).tolist()
    ['<18', '18-24', '25-34', '56+', 'unknown']
    """
    series = ages if isinstance(ages, pd.Series) else pd.Series(np.asarray(ages, dtype=object))
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    names = [f"<{edges[0]}"] + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    names.append(f"{edges[-1]}+")
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    out = np.where(
        np.isnan(values), MISSING, np.asarray(names, dtype=object)[np.minimum(idx, len(names) - 1)]
    )
    return pd.Series(out, index=series.index, name="age_band")


def activity_bands(counts: ArrayLike | pd.Series, *, n_bands: int = 3) -> pd.Series:
    """Users split into ``n_bands`` activity bands by training interaction count (quantiles).

    With three bands the labels are ``"low"``, ``"medium"``, ``"high"``; otherwise
    ``"q1"`` .. ``"qn"``. Bands are equal-frequency (ties go to the lower band).

    Examples
    --------
    >>> activity_bands([1, 2, 3, 10, 20, 30]).tolist()
    ['low', 'low', 'medium', 'medium', 'high', 'high']
    """
    series = counts if isinstance(counts, pd.Series) else pd.Series(np.asarray(counts))
    if n_bands < 2:
        raise ConfigError(f"n_bands must be >= 2; got {n_bands}.")
    names = ["low", "medium", "high"] if n_bands == 3 else [f"q{i + 1}" for i in range(n_bands)]
    values = series.to_numpy(dtype=np.float64)
    order = np.argsort(values, kind="stable")
    band = np.empty(len(values), np.int64)
    band[order] = np.arange(len(values)) * n_bands // max(len(values), 1)
    # Equal counts share a band (the lowest one any of them reached).
    lowest = pd.Series(band).groupby(values).transform("min").to_numpy()
    return pd.Series(np.asarray(names, dtype=object)[lowest], index=series.index, name="activity")


def _aligned_groups(values: pd.Series, labels: pd.Series, attribute: str) -> pd.Series:
    if not isinstance(labels, pd.Series):
        raise ConfigError(
            f"user groups for {attribute!r} must be a pandas Series indexed by user id."
        )
    out = labels.reindex(values.index)
    return out.astype(object).where(out.notna(), MISSING)


def group_breakdown(
    per_user: pd.DataFrame,
    user_groups: pd.Series,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    min_users: int = 1,
) -> pd.DataFrame:
    """Every per-user metric's mean per user group, with percentile bootstrap intervals.

    Parameters
    ----------
    per_user : DataFrame
        One row per user (index: user id), one column per metric; NaN marks users a
        metric leaves out.
    user_groups : Series
        Group label per user id (``users["gender"]``, :func:`age_bands`,
        :func:`activity_bands`); users missing from it form the group ``"unknown"``.
    min_users : int
        Groups with fewer evaluated users are left out (their mean says little).

    Returns
    -------
    DataFrame
        Index ``(metric, group)``; columns ``users``, ``mean``, ``low``, ``high``.

    Examples
    --------
    >>> import pandas as pd
    >>> pu = pd.DataFrame({"ndcg@10": [1.0, 0.0, 0.5, 0.5]}, index=["a", "b", "c", "d"])
    >>> sex = pd.Series(["F", "F", "M", "M"], index=["a", "b", "c", "d"])
    >>> table = group_breakdown(pu, sex, n_resamples=10)
    >>> table.loc["ndcg@10", ["users", "mean"]].to_dict("index")
    {'F': {'users': 2, 'mean': 0.5}, 'M': {'users': 2, 'mean': 0.5}}
    """
    _check_options(n_resamples, confidence)
    rng = _rng(seed)
    rows = []
    for metric in per_user.columns:
        values = per_user[metric].astype(np.float64)
        labels = _aligned_groups(values, user_groups, str(user_groups.name))
        for group, idx in labels.groupby(labels, sort=True).groups.items():
            x = values.loc[idx].to_numpy()
            x = x[~np.isnan(x)]
            if x.size < max(min_users, 1):
                continue
            mean, low, high = bootstrap_ci(
                x, n_resamples=n_resamples, confidence=confidence, seed=rng
            )
            rows.append((metric, group, x.size, mean, low, high))
    return pd.DataFrame(
        rows, columns=["metric", "group", "users", "mean", "low", "high"]
    ).set_index(["metric", "group"])


def group_gap(
    values: pd.Series,
    user_groups: pd.Series,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    min_users: int = 1,
) -> dict[str, Any]:
    """Gap in a per-user metric between the best- and worst-served user group, with a CI.

    The two groups are chosen on the observed data (highest and lowest group mean);
    the interval is a stratified percentile bootstrap: each resample draws the users of
    each of the two groups with replacement, within their group, and takes the
    difference of the group means. An interval that contains 0 means the data do not
    show a gap.

    Parameters
    ----------
    values : Series
        One metric's per-user values (index: user id); NaN users are left out.
    user_groups : Series
        Group label per user id.
    min_users : int
        Groups with fewer evaluated users are not compared.

    Returns
    -------
    dict
        ``best``, ``worst`` (group names), ``gap`` (mean of best minus mean of worst),
        ``low``, ``high``, and ``n_groups`` compared. With fewer than two groups the
        numbers are NaN and a ``DataWarning`` is issued.

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.Series([1.0, 0.8, 0.2, 0.0], index=list("abcd"))
    >>> g = pd.Series(["x", "x", "y", "y"], index=list("abcd"))
    >>> out = group_gap(v, g, n_resamples=200)
    >>> out["best"], out["worst"], round(out["gap"], 2)
    ('x', 'y', 0.8)
    """
    _check_options(n_resamples, confidence)
    rng = _rng(seed)
    v = values.astype(np.float64)
    v = v[v.notna()]
    labels = _aligned_groups(v, user_groups, str(user_groups.name))
    samples = {
        g: np.asarray(v.loc[idx], dtype=np.float64)
        for g, idx in labels.groupby(labels, sort=True).groups.items()
    }
    samples = {g: x for g, x in samples.items() if x.size >= max(min_users, 1)}
    if len(samples) < 2:
        warnings.warn(
            f"group_gap: fewer than two groups with >= {min_users} users; returning NaN.",
            DataWarning,
            stacklevel=2,
        )
        return {
            "best": None,
            "worst": None,
            "gap": math.nan,
            "low": math.nan,
            "high": math.nan,
            "n_groups": len(samples),
        }
    means = {g: float(x.mean()) for g, x in samples.items()}
    best = max(means, key=lambda g: (means[g], g))
    worst = min(means, key=lambda g: (means[g], g))
    boot = _resampled_means(samples[best], n_resamples, rng) - _resampled_means(
        samples[worst], n_resamples, rng
    )
    low, high = _interval(boot, float(confidence))
    return {
        "best": best,
        "worst": worst,
        "gap": means[best] - means[worst],
        "low": low,
        "high": high,
        "n_groups": len(samples),
    }


def item_popularity(train: Any) -> IntArray:
    """Training users per item (nonzero entries per column), as int64."""
    csr = _as_csr(train, "train")
    return np.bincount(csr.indices[csr.data != 0], minlength=csr.shape[1]).astype(np.int64)
