"""Popularity bias and calibration: average recommendation popularity, popularity lift, and
miscalibration (the KL divergence of a list's attribute distribution from the user's history).

- :class:`AverageRecommendationPopularity` (``"arp@k"``, Abdollahpouri et al. 2019): how
  popular the recommended items are, per user;
- :class:`PopularityLift` (``"pop_lift@k"``, Abdollahpouri et al. 2020): how much more
  popular the lists are than the users' own histories;
- :class:`Miscalibration` (``"miscalibration@k"``, Steck, RecSys 2018): how far the mix
  of genres (or any attribute) in a list is from the mix in the user's history.

All follow the list conventions of :mod:`lmrec.eval.ranking` (``-1`` padding, a list is
the set of its first occurrences). Definitions and a worked example are in
``docs/metrics.md``.

Stability: caller. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from lmrec._checks import check_k
from lmrec.errors import ConfigError, DataError
from lmrec.eval.ranking import (
    FloatArray,
    _as_csr,
    _as_recs,
    _first_occurrence,
    _mean_or_nan,
    _nan_with_warning,
    _nonzero_coords,
)

if TYPE_CHECKING:
    from lmrec.eval.metrics import _EvalInputs

__all__ = [
    "AverageRecommendationPopularity",
    "Miscalibration",
    "PopularityLift",
    "attribute_distributions",
    "item_popularity_share",
]


def item_popularity_share(train: Any) -> FloatArray:
    """Each item's share of training users who interacted with it (``p_i`` of novelty).

    The denominator counts users with at least one nonzero entry, as novelty does.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> item_popularity_share(sp.csr_matrix([[1, 1, 0], [1, 0, 0], [0, 0, 0]]))
    array([1. , 0.5, 0. ])
    """
    csr = _as_csr(train, "train")
    rows, cols = _nonzero_coords(csr)
    n_users = int(np.count_nonzero(np.bincount(rows, minlength=csr.shape[0])))
    return np.bincount(cols, minlength=csr.shape[1]) / max(n_users, 1)


def _list_members(recs: ArrayLike, k: int, n_items: int) -> sp.csr_matrix:
    """Binary (n_users, n_items) matrix of each user's distinct top-``k`` items."""
    arr = _as_recs(recs, n_items)[:, :k]
    keep = _first_occurrence(arr)
    rows = np.nonzero(keep)[0]
    return sp.csr_matrix((np.ones(rows.size), (rows, arr[keep])), shape=(arr.shape[0], n_items))


def _row_means(members: sp.csr_matrix, values: FloatArray) -> FloatArray:
    """Mean of ``values`` over each row's members; NaN for empty rows."""
    counts = np.diff(members.indptr).astype(np.float64)
    sums = members @ values
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _history(history: Any, n_rows: int, n_items: int) -> sp.csr_matrix:
    csr = _as_csr(history, "history")
    if csr.shape != (n_rows, n_items):
        raise DataError(
            f"history must be (n_users, n_items) = ({n_rows}, {n_items}), one row per row of "
            f"recs; got {csr.shape}."
        )
    out = sp.csr_matrix(csr, dtype=np.float64, copy=True)
    out.data = (out.data != 0).astype(np.float64)
    out.eliminate_zeros()
    return out


@dataclass(frozen=True)
class _ListMetric:
    k: int

    label: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_k(self.k, type(self).__name__))

    @property
    def name(self) -> str:
        """The registry spec of this metric, for example ``"arp@10"``."""
        return f"{self.label}@{self.k}"


@dataclass(frozen=True)
class AverageRecommendationPopularity(_ListMetric):
    r"""Average recommendation popularity@K: how popular each user's list is.

    .. math:: ARP_u = \frac{1}{|L_u|} \sum_{i \in L_u} p_i, \qquad
              p_i = \frac{|\{v : (v, i) \in \mathrm{train}\}|}{N_{train}}

    ``p_i`` is the share of training users who interacted with item ``i`` (novelty's
    ``p_i``; Abdollahpouri et al. use the raw count, which is ``N_train`` times this and
    does not compare across data sets). Users with an empty list get NaN.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> train = sp.csr_matrix([[1, 1, 0], [1, 0, 0]])  # p = [1, 0.5, 0]
    >>> AverageRecommendationPopularity(2).per_user(np.array([[0, 1], [2, -1]]), train=train)
    array([0.75, 0.  ])
    """

    label: ClassVar[str] = "arp"
    requires: ClassVar[tuple[str, ...]] = ("train",)

    def per_user(self, recs: ArrayLike, *, train: Any) -> FloatArray:
        """Per-user list popularity; NaN for empty lists."""
        p = item_popularity_share(train)
        return _row_means(_list_members(recs, self.k, len(p)), p)

    def __call__(self, recs: ArrayLike, *, train: Any) -> float:
        """Mean over users with a non-empty list (NaN with a warning if there is none)."""
        return _mean_or_nan(self.per_user(recs, train=train), self.name, "every list is empty")

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        values = self.per_user(inputs.recs, train=inputs.require("train", self.name))
        return _mean_or_nan(values, self.name, "every list is empty"), values


@dataclass(frozen=True)
class PopularityLift(_ListMetric):
    r"""Popularity lift@K: how much more popular the lists are than the users' histories.

    .. math:: PL = \frac{\overline{ARP} - \overline{HP}}{\overline{HP}}, \qquad
              HP_u = \frac{1}{|H_u|} \sum_{i \in H_u} p_i

    with :math:`\overline{ARP}` and :math:`\overline{HP}` the means over users who have
    both a non-empty list and a non-empty history (Abdollahpouri et al. 2020, "group
    average popularity"). 0 means the lists are as popular as what users chose
    themselves; 1 means twice as popular. One number for the whole matrix (a ratio of
    means, as in the paper), so no per-user values.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> train = sp.csr_matrix([[1, 1, 0], [1, 0, 0]])  # p = [1, 0.5, 0]
    >>> # user 0: list {0} (1.0), history {0, 1} (0.75); user 1: list {0} (1.0), history {0} (1.0)
    >>> round(PopularityLift(1)(np.array([[0], [0]]), train=train, history=train), 4)
    0.1429
    """

    label: ClassVar[str] = "pop_lift"
    requires: ClassVar[tuple[str, ...]] = ("train", "history")

    def parts(self, recs: ArrayLike, *, train: Any, history: Any) -> tuple[FloatArray, FloatArray]:
        """Per-user list popularity and history popularity (NaN where either is empty)."""
        p = item_popularity_share(train)
        arr = _as_recs(recs, len(p))
        listed = _row_means(_list_members(arr, self.k, len(p)), p)
        own = _row_means(_history(history, arr.shape[0], len(p)), p)
        both = ~(np.isnan(listed) | np.isnan(own))
        return np.where(both, listed, np.nan), np.where(both, own, np.nan)

    def __call__(self, recs: ArrayLike, *, train: Any, history: Any) -> float:
        """The lift; NaN with a warning when no user has both a list and a history."""
        listed, own = self.parts(recs, train=train, history=history)
        ok = ~np.isnan(listed)
        if not ok.any() or own[ok].mean() == 0:
            return _nan_with_warning(f"{self.name}: no user has both a list and a history.")
        return float((listed[ok].mean() - own[ok].mean()) / own[ok].mean())

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        value = self(
            inputs.recs,
            train=inputs.require("train", self.name),
            history=inputs.require("history", self.name),
        )
        return value, None


def attribute_distributions(item_features: Any) -> sp.csr_matrix:
    """Rows of ``item_features`` scaled to sum to 1: ``p(g | i)``, as sparse float64.

    An item with ``m`` genres puts ``1/m`` on each (Steck's ``p(g|i)``). Rows that are all
    zero stay zero (the item has no attribute and counts in no distribution).

    Raises
    ------
    DataError
        On negative or non-finite features (a distribution needs non-negative weights).
    """
    m = sp.csr_matrix(item_features, dtype=np.float64)
    if m.nnz and (m.data.min() < 0 or not np.isfinite(m.data).all()):
        raise DataError(
            "Calibration needs non-negative item attribute weights (e.g. genre one-hot rows); "
            "item_features holds negative or non-finite values."
        )
    sums = np.asarray(m.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale) @ m)


@dataclass(frozen=True)
class Miscalibration(_ListMetric):
    r"""Miscalibration@K: KL divergence of the list's attribute mix from the history's.

    Following Steck (RecSys 2018), with ``p(g|i)`` an item's attribute distribution
    (a genre one-hot row scaled to sum to 1):

    .. math::
        p(g|u) = \frac{1}{|H_u|} \sum_{i \in H_u} p(g|i), \quad
        q(g|u) = \frac{1}{|L_u|} \sum_{i \in L_u} p(g|i), \quad
        \tilde q = (1 - \alpha)\, q + \alpha\, p

        C_{KL}(p, q) = \sum_g p(g|u) \log \frac{p(g|u)}{\tilde q(g|u)}

    (natural log; ``alpha = 0.01`` keeps the divergence finite when the list misses a
    genre of the history; both distributions are renormalised to sum to 1 when some
    items have no attribute). 0 means the list mirrors the history's mix. Users with
    an empty list or history (or none of whose items has an attribute) get NaN. Steck
    weights items by rank or score; lmrec weights every slot equally so the value
    depends only on the list's contents.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> genres = np.array([[1, 0], [0, 1], [0, 1]])
    >>> history = sp.csr_matrix([[1, 1, 0]])  # p = (1/2, 1/2)
    >>> # list {1, 2}: q = (0, 1), q~ = (0.005, 0.995): KL = 0.5 ln 100 + 0.5 ln(0.5/0.995)
    >>> round(float(Miscalibration(2).per_user(np.array([[1, 2]]), history=history,
    ...                                          item_features=genres)[0]), 4)
    1.9585
    """

    alpha: float = 0.01

    label: ClassVar[str] = "miscalibration"
    requires: ClassVar[tuple[str, ...]] = ("history", "item_features")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < float(self.alpha) < 1.0:
            raise ConfigError(f"Miscalibration alpha must be in (0, 1); got {self.alpha!r}.")

    def per_user(self, recs: ArrayLike, *, history: Any, item_features: Any) -> FloatArray:
        """Per-user KL divergence; NaN where the list or history has no attribute mass."""
        dist = attribute_distributions(item_features)
        arr = _as_recs(recs, dist.shape[0])
        p = np.asarray((_history(history, arr.shape[0], dist.shape[0]) @ dist).todense())
        q = np.asarray((_list_members(arr, self.k, dist.shape[0]) @ dist).todense())
        return calibration_kl(p, q, self.alpha)

    def __call__(self, recs: ArrayLike, *, history: Any, item_features: Any) -> float:
        """Mean over users with both distributions (NaN with a warning if there is none)."""
        values = self.per_user(recs, history=history, item_features=item_features)
        return _mean_or_nan(values, self.name, "no user has both a list and a history")

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        values = self.per_user(
            inputs.recs,
            history=inputs.require("history", self.name),
            item_features=inputs.require("item_features", self.name),
        )
        return _mean_or_nan(values, self.name, "no user has both a list and a history"), values


def calibration_kl(p: np.ndarray, q: np.ndarray, alpha: float = 0.01) -> FloatArray:
    """Row-wise Steck KL ``sum_g p log(p / ((1 - alpha) q + alpha p))`` of unnormalised rows.

    Rows are normalised to sum to 1 first; rows where ``p`` or ``q`` sums to 0 give NaN.
    Shared by the metric and the calibrated re-ranker so both use one definition.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    ps, qs = p.sum(axis=1, keepdims=True), q.sum(axis=1, keepdims=True)
    ok = (ps[:, 0] > 0) & (qs[:, 0] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pn = np.where(ps > 0, p / ps, 0.0)
        qn = np.where(qs > 0, q / qs, 0.0)
        mix = (1.0 - alpha) * qn + alpha * pn
        terms = np.where(pn > 0, pn * np.log(pn / np.where(mix > 0, mix, 1.0)), 0.0)
    out = terms.sum(axis=1)
    out[~ok] = np.nan
    return out
