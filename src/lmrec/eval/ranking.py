"""Top-K accuracy metrics over recommendation lists: the hit matrix and six ranking metrics.

Every metric here reads two inputs in dense indices:

``recs``
    ``int`` array of shape ``(n_users, K)``, the items recommended to each user, best
    first; ``-1`` pads lists shorter than ``K``.
``truth``
    ``scipy.sparse`` matrix of shape ``(n_users, n_items)``; a nonzero entry marks a
    relevant (test) item; row ``u`` is the test set of the user in ``recs`` row ``u``.

The join between the two is done once, by :func:`hit_matrix`; every metric is then a
cheap function of the boolean hit matrix and the number of relevant items per user
(:meth:`RankingMetric.per_user_from_hits`). Users with no relevant item get ``NaN``
per-user values and are left out of the mean. See ``docs/metrics.md`` for the
definitions and a worked example.

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from lmrec._checks import check_k
from lmrec.errors import DataError, DataWarning

if TYPE_CHECKING:
    from lmrec.eval.metrics import _EvalInputs

__all__ = [
    "NDCG",
    "MAP",
    "MRR",
    "HitRate",
    "Precision",
    "RankingMetric",
    "Recall",
    "hit_matrix",
    "relevant_counts",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------- helpers
# Shared with beyond.py and metrics.py; private to the package.


def _as_recs(recs: ArrayLike, n_items: int | None = None) -> IntArray:
    """Validate a recommendation matrix and return it as a read-only int64 array."""
    arr = np.asarray(recs)
    if arr.ndim != 2:
        raise DataError(
            "recs must be a 2-D int array of shape (n_users, K) with -1 padding; "
            f"got an array with {arr.ndim} dimension(s) and shape {arr.shape}."
        )
    if arr.size == 0:
        arr = arr.astype(np.int64)
    elif not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"recs must hold integer item indices; got dtype {arr.dtype}.")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < -1:
            raise DataError(f"recs holds {lo}; item indices must be >= 0, with -1 as padding.")
        if n_items is not None and hi >= n_items:
            raise DataError(
                f"recs holds item index {hi}, but there are only n_items={n_items} items "
                f"(valid indices are 0..{n_items - 1})."
            )
    return arr


def _as_csr(matrix: Any, name: str) -> sp.csr_matrix:
    """Return ``matrix`` as canonical CSR (sorted, no duplicates), never mutating the input."""
    if not sp.issparse(matrix):
        raise DataError(
            f"{name} must be a scipy.sparse matrix of shape (n_users, n_items); "
            f"got {type(matrix).__name__}."
        )
    # A new object; shares buffers when already CSR.
    out = sp.csr_matrix(matrix)  # type: ignore[call-overload]  # scipy-stubs: issparse narrows to SparseABC, which csr_matrix() does not take
    if not out.has_canonical_format:
        out = out.copy()
        out.sum_duplicates()
    return out


def _nonzero_coords(csr: sp.csr_matrix) -> tuple[IntArray, IntArray]:
    """Row and column of each stored entry whose value is nonzero, in row-major order."""
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    cols = csr.indices.astype(np.int64, copy=False)
    keep = np.asarray(csr.data != 0)
    if not keep.all():  # explicit zeros are stored but not relevant
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def _first_occurrence(recs: IntArray) -> BoolArray:
    """Mask of the slots that hold a real item seen for the first time in their row.

    A list is treated as the *set* of its first occurrences: a repeated item and ``-1``
    padding are masked out. Vectorized: one row-wise sort finds the rows with a repeat
    (usually none), and only those rows pay for a stable argsort.
    """
    valid = recs >= 0
    if recs.shape[1] < 2:
        return valid
    srt = np.sort(recs, axis=1)
    repeat = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    dup_rows = np.flatnonzero(repeat.any(axis=1))
    if dup_rows.size == 0:
        return valid
    sub = recs[dup_rows]
    order = np.argsort(sub, axis=1, kind="stable")
    sub_sorted = np.take_along_axis(sub, order, axis=1)
    dup_sorted = np.zeros(sub.shape, dtype=bool)
    # Stable sort keeps equal items in list order, so the earliest copy comes first.
    dup_sorted[:, 1:] = sub_sorted[:, 1:] == sub_sorted[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    valid[dup_rows] &= ~dup
    return valid


def _nan_with_warning(message: str, stacklevel: int = 3) -> float:
    warnings.warn(message, DataWarning, stacklevel=stacklevel)
    return math.nan


def _mean_or_nan(values: FloatArray, name: str, why: str) -> float:
    """Mean of the non-NaN entries; ``DataWarning`` and NaN when there are none."""
    keep = ~np.isnan(values)
    if not keep.any():
        return _nan_with_warning(f"{name}: {why}; returning NaN.", stacklevel=4)
    return float(values[keep].mean())


# ------------------------------------------------------------------------- the join


def relevant_counts(truth: Any) -> IntArray:
    """Count the relevant items of each user.

    Parameters
    ----------
    truth : scipy.sparse matrix, shape (n_users, n_items)
        Nonzero entries mark relevant items; explicit zeros are not counted.

    Returns
    -------
    ndarray of int64, shape (n_users,)

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> relevant_counts(sp.csr_matrix([[1, 0, 1], [0, 0, 0]]))
    array([2, 0])
    """
    csr = _as_csr(truth, "truth")
    rows, _ = _nonzero_coords(csr)
    return np.bincount(rows, minlength=csr.shape[0]).astype(np.int64)


def hit_matrix(recs: ArrayLike, truth: Any) -> BoolArray:
    """Mark which recommended items are relevant.

    ``hits[u, r]`` is True when the item at rank ``r + 1`` of user ``u``'s list is a
    nonzero of ``truth`` row ``u``. Computed without a loop over users: each
    (user, item) pair is encoded as ``user * n_items + item`` and looked up with
    :func:`numpy.searchsorted` in the sorted keys of ``truth``.

    Padding (``-1``) never hits. When an item appears more than once in a list, only
    its first occurrence can hit, so a list cannot earn credit twice for one item and
    every metric stays within its bounds.

    Parameters
    ----------
    recs : array-like of int, shape (n_users, K)
        Item indices per user, best first; ``-1`` pads short lists.
    truth : scipy.sparse matrix, shape (n_users, n_items)
        Nonzero entries mark the relevant items of each user.

    Returns
    -------
    ndarray of bool, shape (n_users, K)

    Raises
    ------
    DataError
        If ``recs`` is not a 2-D int array, holds an index outside ``-1..n_items-1``,
        or has a different number of rows than ``truth``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[0, 1, 1, 0], [1, 0, 0, 0]])
    >>> hit_matrix(np.array([[1, 3, 1], [0, -1, -1]]), truth)
    array([[ True, False, False],
           [ True, False, False]])
    """
    csr = _as_csr(truth, "truth")
    n_users, n_items = csr.shape
    arr = _as_recs(recs, n_items)
    if arr.shape[0] != n_users:
        raise DataError(
            f"recs has {arr.shape[0]} rows but truth has {n_users}; row u of both must be "
            "the same user."
        )
    rows, cols = _nonzero_coords(csr)
    keys = rows * n_items + cols  # sorted: canonical CSR is row-major with sorted columns
    if keys.size == 0 or arr.size == 0:
        return np.zeros(arr.shape, dtype=bool)
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + arr
    pos = np.searchsorted(keys, query)
    found = keys[np.minimum(pos, keys.size - 1)] == query
    return found & _first_occurrence(arr)


# ------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class CutoffMetric:
    """A metric of the top ``k`` of each list: the cut-off, its spec name and what it needs.

    The base of the accuracy metrics (:class:`RankingMetric`) and of the beyond-accuracy
    ones (coverage, Gini, novelty, diversity in :mod:`lmrec.eval.beyond`).

    Parameters
    ----------
    k : int
        List length cut-off; only the first ``k`` slots of each list count.

    Raises
    ------
    ConfigError
        If ``k`` is not an int >= 1.
    """

    k: int

    label: ClassVar[str] = ""
    #: Arguments of :func:`~lmrec.eval.metrics.compute_ranking_metrics` this metric needs.
    requires: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_k(self.k, type(self).__name__))

    @property
    def name(self) -> str:
        """The registry spec of this metric, for example ``"ndcg@10"``."""
        return f"{self.label}@{self.k}"


@dataclass(frozen=True)
class RankingMetric(CutoffMetric, ABC):
    """Base of the top-K accuracy metrics; subclasses define ``_score``."""

    def per_user_from_hits(self, hits: ArrayLike, n_relevant: ArrayLike) -> FloatArray:
        """Per-user values from a hit matrix (see :func:`hit_matrix`).

        Parameters
        ----------
        hits : array-like of bool, shape (n_users, K)
            Any width ``K``; columns past ``k`` are ignored and a width below ``k``
            means the lists were shorter than ``k``.
        n_relevant : array-like of int, shape (n_users,)
            Number of relevant items per user (see :func:`relevant_counts`).

        Returns
        -------
        ndarray of float64, shape (n_users,)
            ``NaN`` for users with no relevant item.
        """
        h = np.asarray(hits)
        if h.ndim != 2 or not (h.dtype == np.bool_ or np.issubdtype(h.dtype, np.integer)):
            raise DataError(f"hits must be a 2-D bool array; got shape {h.shape}, dtype {h.dtype}.")
        n_rel = np.asarray(n_relevant).astype(np.int64, copy=False)
        if n_rel.shape != (h.shape[0],):
            raise DataError(
                f"n_relevant must have shape ({h.shape[0]},) to match hits; got {n_rel.shape}."
            )
        out = np.full(h.shape[0], np.nan)
        has = n_rel > 0
        width = min(h.shape[1], self.k)
        if has.any():
            out[has] = self._score(h[has, :width].astype(bool), n_rel[has])
        return out

    def per_user(self, recs: ArrayLike, truth: Any) -> FloatArray:
        """Per-user values; ``NaN`` for users with no relevant item.

        Parameters
        ----------
        recs : array-like of int, shape (n_users, K)
        truth : scipy.sparse matrix, shape (n_users, n_items)

        Returns
        -------
        ndarray of float64, shape (n_users,)
        """
        arr = _as_recs(recs)
        return self.per_user_from_hits(hit_matrix(arr[:, : self.k], truth), relevant_counts(truth))

    def __call__(self, recs: ArrayLike, truth: Any) -> float:
        """Mean over the users with at least one relevant item.

        Warns :class:`~lmrec.errors.DataWarning` and returns ``NaN`` when no user has
        a relevant item.
        """
        return _mean_or_nan(self.per_user(recs, truth), self.name, "no user has a relevant item")

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        values = self.per_user_from_hits(inputs.hits, inputs.n_relevant)
        return _mean_or_nan(values, self.name, "no user has a relevant item"), values

    @abstractmethod
    def _score(self, hits: BoolArray, n_relevant: IntArray) -> FloatArray:
        """Values for users with ``n_relevant >= 1``; ``hits`` has at most ``k`` columns."""


@dataclass(frozen=True)
class Precision(RankingMetric):
    r"""Precision@K: the share of the ``k`` slots that hold a relevant item.

    .. math:: P@k = \frac{1}{k} \sum_{i=1}^{k} rel_i

    The denominator is ``k`` even when the list is shorter (a short list is not let off).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[1, 1, 0, 0, 0], [0, 0, 0, 1, 0]])
    >>> recs = np.array([[0, 4, 1], [3, -1, -1]])
    >>> Precision(3).per_user(recs, truth)  # [2/3, 1/3]
    array([0.66666667, 0.33333333])
    >>> Precision(3)(recs, truth)
    0.5
    """

    label: ClassVar[str] = "precision"

    def _score(self, hits: BoolArray, n_relevant: IntArray) -> FloatArray:
        return hits.sum(axis=1) / self.k


@dataclass(frozen=True)
class Recall(RankingMetric):
    r"""Recall@K: the share of the user's relevant items found in the top ``k``.

    .. math:: R@k = \frac{1}{|T_u|} \sum_{i=1}^{k} rel_i

    The denominator is ``|T_u|``, all relevant items, not ``min(k, |T_u|)``: a user with
    more relevant items than ``k`` cannot reach 1 (LensKit uses the ``min`` form).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[1, 1, 1, 1, 0]])
    >>> Recall(2)(np.array([[0, 4, 1]]), truth)  # 1 hit in top 2, of 4 relevant
    0.25
    """

    label: ClassVar[str] = "recall"

    def _score(self, hits: BoolArray, n_relevant: IntArray) -> FloatArray:
        return hits.sum(axis=1) / n_relevant


@dataclass(frozen=True)
class NDCG(RankingMetric):
    r"""NDCG@K with binary gains and a ``log2(rank + 1)`` discount.

    .. math::
        DCG@k = \sum_{i=1}^{k} \frac{rel_i}{\log_2(i + 1)}, \qquad
        IDCG@k = \sum_{i=1}^{\min(k, |T_u|)} \frac{1}{\log_2(i + 1)}, \qquad
        NDCG@k = \frac{DCG@k}{IDCG@k}

    The ideal list puts ``min(k, |T_u|)`` relevant items first, so a perfect list scores
    1 even when the user has fewer relevant items than ``k``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[1, 1, 0, 0]])
    >>> # DCG = 1/log2(3) = 0.6309; IDCG = 1 + 1/log2(3) = 1.6309
    >>> round(NDCG(3)(np.array([[2, 0, 3]]), truth), 4)
    0.3869
    """

    label: ClassVar[str] = "ndcg"

    def _score(self, hits: BoolArray, n_relevant: IntArray) -> FloatArray:
        discount = 1.0 / np.log2(np.arange(2, self.k + 2, dtype=np.float64))
        dcg = hits @ discount[: hits.shape[1]]
        ideal = np.concatenate(([0.0], np.cumsum(discount)))  # ideal[m] = IDCG of m hits
        return dcg / ideal[np.minimum(n_relevant, self.k)]


@dataclass(frozen=True)
class MAP(RankingMetric):
    r"""MAP@K: mean over users of the average precision AP@K.

    .. math::
        AP@k = \frac{1}{\min(k, |T_u|)} \sum_{i=1}^{k} P@i \cdot rel_i

    ``P@i`` is the precision of the first ``i`` slots. Dividing by ``min(k, |T_u|)``
    (as ``ml_metrics.apk`` does) makes a perfect list score 1; RecTools divides by
    ``|T_u|`` by default.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[1, 1, 0, 0, 0]])
    >>> # hits at ranks 1 and 3: (1/1 + 2/3) / min(3, 2) = 0.8333
    >>> round(MAP(3)(np.array([[0, 4, 1]]), truth), 4)
    0.8333
    """

    label: ClassVar[str] = "map"

    def _score(self, hits: BoolArray, n_relevant: IntArray) -> FloatArray:
        # Hits are few: visit only them. np.nonzero is row-major, so within a row the
        # hits come in rank order and the j-th hit (from 0) has P@rank = (j + 1) / rank.
        rows, cols = np.nonzero(hits)
        row_start = np.searchsorted(rows, rows)  # index of the row's first hit
        precision = (np.arange(rows.size) - row_start + 1.0) / (cols + 1.0)
        total = np.bincount(rows, weights=precision, minlength=hits.shape[0])
        return total / np.minimum(n_relevant, self.k)


@dataclass(frozen=True)
class MRR(RankingMetric):
    r"""MRR@K: the reciprocal rank of the first relevant item in the top ``k``, else 0.

    .. math:: RR@k = \max_{i \le k} \frac{rel_i}{i}

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[0, 0, 1], [1, 0, 0]])
    >>> MRR(2).per_user(np.array([[0, 2, 1], [1, 2, 0]]), truth)  # [1/2, 0 (hit at 3 > k)]
    array([0.5, 0. ])
    """

    label: ClassVar[str] = "mrr"

    def _score(self, hits: BoolArray, n_relevant: IntArray) -> FloatArray:
        if hits.shape[1] == 0:
            return np.zeros(hits.shape[0])
        first = np.argmax(hits, axis=1)
        return np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)


@dataclass(frozen=True)
class HitRate(RankingMetric):
    r"""HitRate@K: 1 when any of the top ``k`` items is relevant, else 0.

    .. math:: HR@k = \mathbb{1}\left[\sum_{i=1}^{k} rel_i > 0\right]

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix([[0, 0, 1], [1, 0, 0]])
    >>> HitRate(2)(np.array([[0, 2, 1], [1, 2, 0]]), truth)
    0.5
    """

    label: ClassVar[str] = "hit_rate"

    def _score(self, hits: BoolArray, n_relevant: IntArray) -> FloatArray:
        return np.asarray(hits.any(axis=1), dtype=np.float64)
