"""Pointwise metrics: rating error (RMSE, MAE) and click / relevance prediction (AUC, log loss, F1).

Each metric is a function (``rmse(y_true, y_pred)``) and a small frozen class with the
same ``__call__`` (``RMSE()``), the form the registry in :mod:`lmrec.eval.metrics`
builds from a spec such as ``"rmse"``. Empty input warns
:class:`~lmrec.errors.DataWarning` and returns ``NaN``; so does a metric that is
undefined for the input (AUC with one class, F1 with no positive at all).

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmrec.errors import ConfigError, DataError
from lmrec.eval.ranking import _nan_with_warning

__all__ = ["AUC", "F1", "MAE", "RMSE", "LogLoss", "auc", "f1", "log_loss", "mae", "rmse"]


def _pair(y_true: ArrayLike, y_pred: ArrayLike, name: str) -> tuple[NDArray[np.float64], ...]:
    """Validate two 1-D float arrays of equal length with finite values."""
    a = np.asarray(y_true, dtype=np.float64).ravel()
    b = np.asarray(y_pred, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise DataError(f"{name}: y_true has {a.size} values but the prediction has {b.size}.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError(f"{name}: inputs hold NaN or infinite values.")
    return a, b


def _binary(y: NDArray[np.float64], name: str) -> NDArray[np.bool_]:
    if not np.isin(y, (0.0, 1.0)).all():
        bad = np.unique(y[~np.isin(y, (0.0, 1.0))])[:5].tolist()
        raise DataError(f"{name}: y_true must hold only 0 and 1 (or bool); found {bad}.")
    return y == 1.0


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""Root mean squared error, :math:`\sqrt{\frac{1}{n}\sum_i (y_i - \hat y_i)^2}`.

    Parameters
    ----------
    y_true, y_pred : array-like of float, shape (n,)

    Returns
    -------
    float
        NaN, with a :class:`~lmrec.errors.DataWarning`, for empty input.

    Raises
    ------
    DataError
        If the lengths differ or a value is not finite.

    Examples
    --------
    >>> rmse([3, 4, 5], [3, 5, 3])  # sqrt((0 + 1 + 4) / 3)
    1.2909944487358056
    """
    a, b = _pair(y_true, y_pred, "rmse")
    if a.size == 0:
        return _nan_with_warning("rmse: empty input; returning NaN.")
    return math.sqrt(float(np.mean((a - b) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""Mean absolute error, :math:`\frac{1}{n}\sum_i |y_i - \hat y_i|`.

    Parameters
    ----------
    y_true, y_pred : array-like of float, shape (n,)

    Returns
    -------
    float
        NaN, with a :class:`~lmrec.errors.DataWarning`, for empty input.

    Examples
    --------
    >>> mae([3, 4, 5], [3, 5, 3])  # (0 + 1 + 2) / 3
    1.0
    """
    a, b = _pair(y_true, y_pred, "mae")
    if a.size == 0:
        return _nan_with_warning("mae: empty input; returning NaN.")
    return float(np.mean(np.abs(a - b)))


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    r"""Area under the ROC curve, by the Mann-Whitney U statistic.

    .. math::
        AUC = \frac{\sum_{i \in pos} r_i - n_+ (n_+ + 1) / 2}{n_+ n_-}

    where :math:`r_i` are the ranks of the scores among all ``n`` (1 = lowest) with tied
    scores given their average rank. This equals the share of (positive, negative)
    pairs ordered correctly, a tie counting 1/2, and matches
    ``sklearn.metrics.roc_auc_score``.

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n,)
    y_score : array-like of float, shape (n,)
        Higher means more likely positive.

    Returns
    -------
    float
        NaN, with a :class:`~lmrec.errors.DataWarning`, for empty input or when only
        one class is present (AUC is undefined then).

    Raises
    ------
    DataError
        If ``y_true`` holds values other than 0 and 1, or the lengths differ.

    Examples
    --------
    >>> # pairs (pos, neg): (0.8, 0.1) ok, (0.8, 0.4) ok, (0.4, 0.1) ok, (0.4, 0.4) tie
    >>> auc([1, 0, 1, 0], [0.8, 0.1, 0.4, 0.4])  # (3 + 0.5) / 4
    0.875
    """
    a, s = _pair(y_true, y_score, "auc")
    if a.size == 0:
        return _nan_with_warning("auc: empty input; returning NaN.")
    pos = _binary(a, "auc")
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return _nan_with_warning(
            f"auc: y_true holds only one class ({n_pos} positives, {n_neg} negatives); "
            "AUC is undefined, returning NaN."
        )
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # Average rank of each distinct score: the tie group spans ranks end-count+1 .. end.
    ends = np.cumsum(counts).astype(np.float64)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def log_loss(y_true: ArrayLike, p: ArrayLike, eps: float = 1e-7) -> float:
    r"""Mean binary cross-entropy, with probabilities clipped to ``[eps, 1 - eps]``.

    .. math:: LL = -\frac{1}{n} \sum_i \left(y_i \log p_i + (1 - y_i) \log(1 - p_i)\right)

    Natural logarithm. The clip keeps a confident wrong prediction finite
    (:math:`-\log(10^{-7}) \approx 16.1`).

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n,)
    p : array-like of float in [0, 1], shape (n,)
        Predicted probability of the positive class.
    eps : float, default 1e-7
        Clipping bound, in ``(0, 0.5)``.

    Returns
    -------
    float
        NaN, with a :class:`~lmrec.errors.DataWarning`, for empty input.

    Raises
    ------
    ConfigError
        If ``eps`` is outside ``(0, 0.5)``.
    DataError
        If ``y_true`` is not 0/1 or ``p`` leaves ``[0, 1]``.

    Examples
    --------
    >>> round(log_loss([1, 0], [0.8, 0.4]), 4)  # -(ln 0.8 + ln 0.6) / 2
    0.367
    """
    if not 0.0 < eps < 0.5:
        raise ConfigError(f"The 'eps' parameter of log_loss must be in (0, 0.5). Got {eps!r}.")
    a, q = _pair(y_true, p, "log_loss")
    if a.size == 0:
        return _nan_with_warning("log_loss: empty input; returning NaN.")
    pos = _binary(a, "log_loss")
    if q.min() < 0.0 or q.max() > 1.0:
        raise DataError(
            "log_loss: p must hold probabilities in [0, 1]; got values in "
            f"[{q.min():g}, {q.max():g}]. Apply a sigmoid to raw scores first."
        )
    q = np.clip(q, eps, 1.0 - eps)
    return float(-np.mean(np.where(pos, np.log(q), np.log1p(-q))))


def f1(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    r"""F1 score of the predictions ``y_score >= threshold``.

    .. math:: F_1 = \frac{2\,TP}{2\,TP + FP + FN}

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n,)
    y_score : array-like of float, shape (n,)
    threshold : float, default 0.5
        Scores at or above it are predicted positive.

    Returns
    -------
    float
        NaN, with a :class:`~lmrec.errors.DataWarning`, for empty input or when there is
        no positive label and no positive prediction (``2TP + FP + FN = 0``; scikit-learn
        returns 0 there by default).

    Examples
    --------
    >>> # predicted [1, 1, 0, 0]: TP = 1, FP = 1, FN = 1 -> 2 / 4
    >>> f1([1, 0, 1, 0], [0.9, 0.6, 0.2, 0.1])
    0.5
    """
    a, s = _pair(y_true, y_score, "f1")
    if a.size == 0:
        return _nan_with_warning("f1: empty input; returning NaN.")
    pos = _binary(a, "f1")
    pred = s >= threshold
    tp = int((pos & pred).sum())
    denom = 2 * tp + int((~pos & pred).sum()) + int((pos & ~pred).sum())
    if denom == 0:
        return _nan_with_warning(
            "f1: no positive label and no positive prediction; F1 is undefined, returning NaN."
        )
    return 2.0 * tp / denom


# ------------------------------------------------------------------ registry forms


@dataclass(frozen=True)
class RMSE:
    """Registry form of :func:`rmse`; ``RMSE()(y_true, y_pred)``."""

    name: ClassVar[str] = "rmse"

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        return rmse(y_true, y_pred)


@dataclass(frozen=True)
class MAE:
    """Registry form of :func:`mae`; ``MAE()(y_true, y_pred)``."""

    name: ClassVar[str] = "mae"

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        return mae(y_true, y_pred)


@dataclass(frozen=True)
class AUC:
    """Registry form of :func:`auc`; ``AUC()(y_true, y_score)``."""

    name: ClassVar[str] = "auc"

    def __call__(self, y_true: ArrayLike, y_score: ArrayLike) -> float:
        return auc(y_true, y_score)


@dataclass(frozen=True)
class LogLoss:
    """Registry form of :func:`log_loss`; ``LogLoss(eps=1e-7)(y_true, p)``."""

    eps: float = 1e-7
    name: ClassVar[str] = "log_loss"

    def __post_init__(self) -> None:
        if not 0.0 < self.eps < 0.5:
            raise ConfigError(
                f"The 'eps' parameter of LogLoss must be in (0, 0.5). Got {self.eps!r}."
            )

    def __call__(self, y_true: ArrayLike, p: ArrayLike) -> float:
        return log_loss(y_true, p, eps=self.eps)


@dataclass(frozen=True)
class F1:
    """Registry form of :func:`f1`; ``F1(threshold=0.5)(y_true, y_score)``."""

    threshold: float = 0.5
    name: ClassVar[str] = "f1"

    def __call__(self, y_true: ArrayLike, y_score: ArrayLike) -> float:
        return f1(y_true, y_score, threshold=self.threshold)
