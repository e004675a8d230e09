"""Percentile bootstrap over users: confidence intervals and paired model comparisons.

Users are the resampling unit: a metric's per-user values (from
:func:`~lmrec.eval.metrics.compute_ranking_metrics`) are drawn with replacement, and the
mean of each resample gives the bootstrap distribution of the mean. Resampling is
vectorized, a chunk of resamples per NumPy call, and seeded through
:func:`numpy.random.default_rng` so that a seed always gives the same interval.

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmrec._checks import check_int
from lmrec.errors import ConfigError, DataError, DataWarning

__all__ = ["bootstrap_ci", "paired_bootstrap_diff"]

# Index elements drawn per NumPy call (about 32 MiB of int64): bounds memory for many users.
_CHUNK_ELEMENTS = 1 << 22


def _rng(seed: object) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise ConfigError(
        f"The 'seed' parameter must be an int, a numpy.random.Generator or None. Got {seed!r}."
    )


def _check_options(n_resamples: object, confidence: object) -> None:
    check_int(n_resamples, "n_resamples")
    if not isinstance(confidence, (float, int)) or not 0.0 < float(confidence) < 1.0:
        raise ConfigError(
            f"The 'confidence' parameter must be a float in (0, 1). Got {confidence!r} instead."
        )


def _as_values(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D (one value per user); got shape {arr.shape}.")
    if np.isinf(arr).any():
        raise DataError(f"{name} holds infinite values; a bootstrap of the mean needs finite ones.")
    return arr


def _resampled_means(
    x: NDArray[np.float64], n_resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Means of ``n_resamples`` resamples of ``x`` with replacement."""
    n = x.size
    out = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def _interval(boot: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    values: ArrayLike,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> tuple[float, float, float]:
    """Mean of per-user values with a percentile bootstrap confidence interval.

    Draws ``n_resamples`` samples of the users with replacement; the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resample means
    (linear interpolation).

    Parameters
    ----------
    values : array-like of float, shape (n_users,)
        One value per user; NaN entries (users a metric leaves out) are dropped with
        a :class:`~lmrec.errors.DataWarning`.
    n_resamples : int, default 1000
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    seed : int, numpy.random.Generator or None, default 0
        An int or None seeds a fresh generator; a Generator is used (and advanced)
        as given.

    Returns
    -------
    mean, low, high : float
        The sample mean and the interval bounds; all NaN, with a ``DataWarning``, when no
        value remains.

    Raises
    ------
    ConfigError
        If ``n_resamples``, ``confidence`` or ``seed`` is invalid.
    DataError
        If ``values`` is not 1-D or holds infinities.

    Examples
    --------
    >>> mean, low, high = bootstrap_ci([0.0, 1.0, 0.5, 0.25], n_resamples=2000, seed=0)
    >>> mean
    0.4375
    >>> bool(0.0 <= low <= mean <= high <= 1.0)
    True
    """
    _check_options(n_resamples, confidence)
    rng = _rng(seed)
    x = _as_values(values, "values")
    missing = np.isnan(x)
    if missing.any():
        warnings.warn(
            f"bootstrap_ci: dropping {int(missing.sum())} NaN value(s) of {x.size}.",
            DataWarning,
            stacklevel=2,
        )
        x = x[~missing]
    if x.size == 0:
        warnings.warn(
            "bootstrap_ci: no value to resample; returning NaN.", DataWarning, stacklevel=2
        )
        return math.nan, math.nan, math.nan
    low, high = _interval(_resampled_means(x, int(n_resamples), rng), float(confidence))
    return float(x.mean()), low, high


def paired_bootstrap_diff(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> dict[str, float]:
    """Paired bootstrap of the difference in mean between two models on the same users.

    Each resample draws one set of user indices and uses it for both models, so the
    per-user pairing is kept; this is the mean of the resampled per-user differences
    ``a[u] - b[u]``.

    The p-value is two-sided: twice the share of resampled mean differences that lie on
    the other side of 0 from the observed one (at or beyond 0), capped at 1; it is 1
    when the observed difference is exactly 0. Its resolution is ``1 / n_resamples``,
    so 0 means "below ``1 / n_resamples``", not impossible.

    Parameters
    ----------
    a, b : array-like of float, shape (n_users,)
        Per-user values of the two models, row ``u`` the same user in both. Users where
        either is NaN are dropped with a :class:`~lmrec.errors.DataWarning`.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    seed : int, numpy.random.Generator or None, default 0

    Returns
    -------
    dict
        ``mean_diff`` (mean of ``a - b``), ``low`` and ``high`` (percentile interval of
        the difference) and ``p_value``; all NaN, with a ``DataWarning``, when no
        user remains.

    Raises
    ------
    DataError
        If ``a`` and ``b`` have different lengths (a ``ValueError``).
    ConfigError
        If ``n_resamples``, ``confidence`` or ``seed`` is invalid.

    Examples
    --------
    >>> out = paired_bootstrap_diff([0.5, 0.7, 0.9], [0.5, 0.7, 0.9])
    >>> out
    {'mean_diff': 0.0, 'low': 0.0, 'high': 0.0, 'p_value': 1.0}
    """
    _check_options(n_resamples, confidence)
    rng = _rng(seed)
    x = _as_values(a, "a")
    y = _as_values(b, "b")
    if x.shape != y.shape:
        raise DataError(
            f"a and b must hold one value per user for the same users; got {x.size} and "
            f"{y.size} values."
        )
    missing = np.isnan(x) | np.isnan(y)
    if missing.any():
        warnings.warn(
            f"paired_bootstrap_diff: dropping {int(missing.sum())} of {x.size} user(s) with a "
            "NaN value in a or b.",
            DataWarning,
            stacklevel=2,
        )
    diff = x[~missing] - y[~missing]
    if diff.size == 0:
        warnings.warn(
            "paired_bootstrap_diff: no user to resample; returning NaN.", DataWarning, stacklevel=2
        )
        return {"mean_diff": math.nan, "low": math.nan, "high": math.nan, "p_value": math.nan}
    boot = _resampled_means(diff, int(n_resamples), rng)
    low, high = _interval(boot, float(confidence))
    mean_diff = float(diff.mean())
    if mean_diff > 0:
        p_value = min(1.0, 2.0 * float(np.mean(boot <= 0.0)))
    elif mean_diff < 0:
        p_value = min(1.0, 2.0 * float(np.mean(boot >= 0.0)))
    else:
        p_value = 1.0
    return {"mean_diff": mean_diff, "low": low, "high": high, "p_value": p_value}
