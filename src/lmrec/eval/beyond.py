"""Beyond-accuracy metrics: catalog coverage, exposure Gini, novelty and intra-list diversity.

These read the recommendation matrix ``recs`` (``(n_users, K)`` dense item indices,
``-1`` padding) but not the test set. As for the accuracy metrics, a list counts as the
set of its first occurrences: padding and repeated items are ignored.

Coverage, Gini and novelty summarise the whole matrix (one number, no per-user
values); intra-list diversity is per user. Every metric warns
:class:`~lmrec.errors.DataWarning` and returns ``NaN`` when there is nothing to measure
(no recommended item at all, or no user with two items for diversity).

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from lmrec._checks import check_k
from lmrec.errors import DataError
from lmrec.eval.ranking import (
    CutoffMetric,
    FloatArray,
    IntArray,
    _as_csr,
    _as_recs,
    _first_occurrence,
    _mean_or_nan,
    _nan_with_warning,
    _nonzero_coords,
)

if TYPE_CHECKING:
    from lmrec.eval.metrics import _EvalInputs

__all__ = ["Coverage", "GiniIndex", "IntraListDiversity", "Novelty", "item_exposure"]

# Users per chunk when forming per-user feature sums, to bound memory for dense embeddings.
_ILD_CHUNK = 4096


def _check_n_items(n_items: object) -> int:
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise DataError(f"n_items must be an int >= 1 (the catalog size). Got {n_items!r} instead.")
    return int(n_items)


def _recommended(recs: ArrayLike, k: int, n_items: int | None) -> tuple[IntArray, IntArray]:
    """Row and item of every counted slot (first occurrences, no padding) in the top ``k``.

    Rows come out sorted (row-major order).
    """
    arr = _as_recs(recs, n_items)[:, :k]
    keep = _first_occurrence(arr)
    if keep.all():
        rows = np.repeat(np.arange(arr.shape[0], dtype=np.int64), arr.shape[1])
        return rows, arr.ravel()
    rows = np.nonzero(keep)[0].astype(np.int64)
    return rows, arr[keep]


def item_exposure(recs: ArrayLike, n_items: int, *, k: int | None = None) -> IntArray:
    """Count how many lists each catalog item appears in.

    Parameters
    ----------
    recs : array-like of int, shape (n_users, K)
    n_items : int
        Catalog size; the result has one count per catalog item.
    k : int, optional
        Only the first ``k`` slots count (default: all).

    Returns
    -------
    ndarray of int64, shape (n_items,)

    Examples
    --------
    >>> import numpy as np
    >>> item_exposure(np.array([[0, 1], [1, -1], [1, 1]]), 3)
    array([1, 3, 0])
    """
    n = _check_n_items(n_items)
    arr = _as_recs(recs, n)
    width = arr.shape[1] if k is None else check_k(k, "item_exposure")
    _, items = _recommended(arr, width, n)
    return np.bincount(items, minlength=n).astype(np.int64)


@dataclass(frozen=True)
class Coverage(CutoffMetric):
    r"""Catalog coverage@K: the share of catalog items that appear in some top-``k`` list.

    .. math:: Cov@k = \frac{|\bigcup_u L_u^{k}|}{n_{items}}

    Parameters
    ----------
    k : int
        List length cut-off.

    Examples
    --------
    >>> import numpy as np
    >>> Coverage(2)(np.array([[0, 1, 4], [1, -1, -1]]), n_items=5)  # {0, 1} of 5
    0.4
    """

    label: ClassVar[str] = "coverage"
    requires: ClassVar[tuple[str, ...]] = ("n_items",)

    def __call__(self, recs: ArrayLike, *, n_items: int) -> float:
        """Coverage of ``recs`` over a catalog of ``n_items`` items.

        Warns :class:`~lmrec.errors.DataWarning` and returns NaN when ``recs`` holds
        no item at all.
        """
        counts = item_exposure(recs, n_items, k=self.k)
        if not counts.any():
            return _nan_with_warning(f"{self.name}: recs holds no item; returning NaN.")
        return float(np.count_nonzero(counts) / len(counts))

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        return self(inputs.recs, n_items=inputs.n_items), None


@dataclass(frozen=True)
class GiniIndex(CutoffMetric):
    r"""Gini coefficient of item exposure in the top-``k`` lists, over the whole catalog.

    With :math:`c_{(1)} \le \dots \le c_{(n)}` the exposure counts of all
    :math:`n = n_{items}` catalog items (items never recommended count as 0) sorted
    ascending,

    .. math:: G = \frac{\sum_{i=1}^{n} (2i - n - 1)\, c_{(i)}}{n \sum_{i=1}^{n} c_{(i)}}

    0 means every item is shown equally often; all exposure on one item gives
    :math:`(n - 1) / n`, which tends to 1 for a large catalog.

    Examples
    --------
    >>> import numpy as np
    >>> GiniIndex(1)(np.array([[0], [1], [2], [3]]), n_items=4)  # equal exposure
    0.0
    >>> GiniIndex(1)(np.array([[0], [0], [0], [0]]), n_items=4)  # (4 - 1) / 4
    0.75
    """

    label: ClassVar[str] = "gini"
    requires: ClassVar[tuple[str, ...]] = ("n_items",)

    def __call__(self, recs: ArrayLike, *, n_items: int) -> float:
        """Gini index of exposure of ``recs`` over a catalog of ``n_items`` items.

        Warns :class:`~lmrec.errors.DataWarning` and returns NaN when ``recs`` holds
        no item at all.
        """
        exposure = item_exposure(recs, n_items, k=self.k)
        if not exposure.any():
            return _nan_with_warning(f"{self.name}: recs holds no item; returning NaN.")
        n = len(exposure)
        counts = np.sort(exposure).astype(np.float64)
        weights = 2.0 * np.arange(1, n + 1) - n - 1.0
        return float(weights @ counts / (n * counts.sum()))

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        return self(inputs.recs, n_items=inputs.n_items), None


@dataclass(frozen=True)
class Novelty(CutoffMetric):
    r"""Mean self-information of the recommended items, in bits.

    .. math::
        Nov@k = \frac{1}{|S|} \sum_{(u, i) \in S} -\log_2 p_i, \qquad
        p_i = \frac{|\{v : (v, i) \in \mathrm{train}\}|}{N_{train}}

    :math:`S` is the set of recommended (user, item) slots in the top ``k`` (padding
    and repeats excluded) and :math:`N_{train}` the number of training users, meaning
    rows of ``train`` with at least one nonzero entry (as RecTools counts them). An
    item no training user touched would have :math:`p_i = 0` and infinite novelty, so
    it gets :math:`p_i = 1 / (N_{train} + 1)`, just below the rarest observed item.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> train = sp.csr_matrix([[1, 1, 0], [1, 0, 0]])  # p = [2/2, 1/2, 1/(2+1)]
    >>> # slots: item 0 -> 0 bits, item 1 -> 1 bit, item 2 -> log2(3) = 1.585 bits
    >>> round(Novelty(2)(np.array([[0, 1], [2, -1]]), train=train), 4)  # 2.585 / 3
    0.8617
    """

    label: ClassVar[str] = "novelty"
    requires: ClassVar[tuple[str, ...]] = ("train",)

    def __call__(self, recs: ArrayLike, *, train: Any) -> float:
        """Novelty of ``recs`` against the popularity in ``train``.

        Parameters
        ----------
        recs : array-like of int, shape (n_users, K)
        train : scipy.sparse matrix, shape (n_train_users, n_items)
            Training interactions; nonzero entries count.

        Warns :class:`~lmrec.errors.DataWarning` and returns NaN when ``recs`` holds
        no item at all.
        """
        csr = _as_csr(train, "train")
        _, items = _recommended(recs, self.k, csr.shape[1])
        if items.size == 0:
            return _nan_with_warning(f"{self.name}: recs holds no item; returning NaN.")
        rows, cols = _nonzero_coords(csr)
        n_train_users = int(np.count_nonzero(np.bincount(rows, minlength=csr.shape[0])))
        popularity = np.bincount(cols, minlength=csr.shape[1]).astype(np.float64)
        p = np.where(popularity > 0, popularity / max(n_train_users, 1), 1.0 / (n_train_users + 1))
        return float(np.mean(-np.log2(p[items])))

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        return self(inputs.recs, train=inputs.require("train", self.name)), None


@dataclass(frozen=True)
class IntraListDiversity(CutoffMetric):
    r"""Intra-list diversity@K: mean pairwise cosine distance within each user's list.

    .. math::
        ILD_u = \frac{2}{m(m-1)} \sum_{i < j} \left(1 - \cos(f_i, f_j)\right)

    over the :math:`m` distinct items of the top ``k`` with feature rows :math:`f_i`.
    Users with fewer than two items get NaN and are left out of the mean. A zero
    feature row has cosine similarity 0 with every item. Computed without pairwise
    loops from :math:`\sum_{i<j} \cos(f_i, f_j) = (\lVert \sum_i \hat f_i \rVert^2
    - \sum_i \lVert \hat f_i \rVert^2) / 2` with unit rows :math:`\hat f_i`.

    Examples
    --------
    >>> import numpy as np
    >>> genres = np.array([[1, 0], [1, 0], [0, 1]])  # items 0, 1 share a genre
    >>> # user 0: pairs (0,1) -> 0, (0,2) -> 1, (1,2) -> 1, mean 2/3; user 1: one item
    >>> IntraListDiversity(3).per_user(np.array([[0, 1, 2], [2, -1, -1]]), item_features=genres)
    array([0.66666667,        nan])
    """

    label: ClassVar[str] = "ild"
    requires: ClassVar[tuple[str, ...]] = ("item_features",)

    def per_user(self, recs: ArrayLike, *, item_features: Any) -> FloatArray:
        """Per-user diversity; NaN for users with fewer than two distinct items.

        Parameters
        ----------
        recs : array-like of int, shape (n_users, K)
        item_features : ndarray or scipy.sparse matrix, shape (n_items, n_features)
            One row per catalog item, such as genre one-hot vectors or embeddings.

        Returns
        -------
        ndarray of float64, shape (n_users,)
        """
        unit = _unit_rows(item_features)
        n_users = np.asarray(recs).shape[0]
        rows, items = _recommended(recs, self.k, unit.shape[0])
        m = np.bincount(rows, minlength=n_users).astype(np.float64)
        nonzero = np.asarray(abs(unit).sum(axis=1)).ravel() > 0
        self_sim = np.bincount(rows, weights=nonzero[items], minlength=n_users)  # sum ||f_i||^2
        # Membership matrix (users x items), built straight from CSR parts: rows is sorted.
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n_users))))
        member = sp.csr_matrix((np.ones(items.size), items, indptr), shape=(n_users, unit.shape[0]))
        sq_norm = np.zeros(n_users)
        for start in range(0, n_users, _ILD_CHUNK):
            stop = min(start + _ILD_CHUNK, n_users)
            summed = member[start:stop] @ unit  # per-user sum of unit feature rows
            if isinstance(summed, np.ndarray):
                sq_norm[start:stop] = np.einsum("ij,ij->i", summed, summed)
            else:
                sq_norm[start:stop] = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
        out = np.full(n_users, np.nan)
        ok = m >= 2
        pair_sim = (sq_norm[ok] - self_sim[ok]) / 2.0
        n_pairs = m[ok] * (m[ok] - 1.0) / 2.0
        # Clip rounding error; cosine distance lies in [0, 2].
        out[ok] = np.clip(1.0 - pair_sim / n_pairs, 0.0, 2.0)
        return out

    def __call__(self, recs: ArrayLike, *, item_features: Any) -> float:
        """Mean diversity over users with at least two items.

        Warns :class:`~lmrec.errors.DataWarning` and returns NaN when no user has two.
        """
        values = self.per_user(recs, item_features=item_features)
        return _mean_or_nan(values, self.name, "no list holds two or more items")

    def _evaluate(self, inputs: _EvalInputs) -> tuple[float, FloatArray | None]:
        values = self.per_user(
            inputs.recs, item_features=inputs.require("item_features", self.name)
        )
        return _mean_or_nan(values, self.name, "no list holds two or more items"), values


def _unit_rows(features: Any) -> Any:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float64 dense or CSR."""
    if sp.issparse(features):
        csr = sp.csr_matrix(features, dtype=np.float64)  # type: ignore[call-overload]  # scipy-stubs: issparse narrows to SparseABC, which csr_matrix() does not take
        norms = np.sqrt(np.asarray(csr.multiply(csr).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(csr.multiply(scale[:, None]))
    dense = np.asarray(features, dtype=np.float64)
    if dense.ndim != 2:
        raise DataError(
            f"item_features must be 2-D (n_items, n_features); got shape {dense.shape}."
        )
    if not np.isfinite(dense).all():
        raise DataError("item_features holds NaN or infinite values.")
    norms = np.linalg.norm(dense, axis=1)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return dense * scale[:, None]
