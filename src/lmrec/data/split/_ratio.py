"""Ratio splits: per-user random shares and one global time cut."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.data.split._base import (
    _TEST,
    _TRAIN,
    _VALID,
    SeedLike,
    Split,
    _check_dataset,
    _check_int,
    _check_ratios,
    _check_seed,
    _finish,
    _floor_share,
    _holdout_last,
    _is_real,
    _is_sequence,
    _make_rng,
    _per_user_notes,
    _random_order,
    _ratio_label,
    _timestamps,
)
from lmrec.errors import ConfigError, DataError


def random_split(
    dataset: Dataset,
    *,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: SeedLike = None,
    min_train: int = 1,
) -> Split:
    """Split each user's interactions at random into train, valid and test.

    A user with ``n`` interactions gets ``floor(n * test)`` test rows and
    ``floor(n * valid)`` valid rows, drawn uniformly; the rest are train. A user whose
    held-out rows would leave fewer than ``min_train`` train rows keeps all rows in
    train (counted in the notes).

    Parameters
    ----------
    dataset : Dataset
        The interactions to split.
    ratios : sequence of 2 or 3 float, default (0.8, 0.1, 0.1)
        ``(train, test)`` (``valid`` is then ``None``) or ``(train, valid, test)``,
        summing to 1 within 1e-6. A valid ratio of 0 also means no valid part.
    seed : int, numpy.random.Generator or None
        Randomness. One seed gives one split of the same interactions, in any row order.
    min_train : int, default 1
        The fewest train interactions a user with held-out rows keeps.

    Returns
    -------
    Split

    Raises
    ------
    ConfigError
        An invalid parameter (ratios not summing to 1, a negative ``min_train``...).
    DataError
        An empty data set, or no user big enough for a test (or requested valid) row.

    Examples
    --------
    >>> import pandas as pd
    >>> from lmrec.data import Dataset
    >>> ds = Dataset.from_frame(pd.DataFrame({"user": [1] * 10, "item": range(10)}))
    >>> s = random_split(ds, ratios=(0.6, 0.2, 0.2), seed=0)
    >>> s.train.n_interactions, s.valid.n_interactions, s.test.n_interactions
    (6, 2, 2)
    """
    func = "random_split"
    _check_dataset(dataset, func)
    r_train, r_valid, r_test, with_valid = _check_ratios(ratios, func)
    min_train = _check_int(min_train, "min_train", func, minimum=0)
    _check_seed(seed, func)
    rng, recorded = _make_rng(seed)
    counts = dataset.user_counts()
    n_test, n_valid = _floor_share(counts, r_test), _floor_share(counts, r_valid)
    users = dataset.column("user_idx")
    part, kept = _holdout_last(
        users, _random_order(dataset, rng), counts, n_test, n_valid, min_train
    )
    suffix = f", min_train={min_train}" if min_train != 1 else ""
    return _finish(
        dataset,
        part,
        protocol=f"random({_ratio_label(r_train, r_valid, r_test)}{suffix})",
        seed=recorded,
        notes=_per_user_notes(counts, n_test + n_valid, kept, min_train),
        with_valid=with_valid,
        why_empty=f"A user with n interactions gets floor(n * ratio) rows of a part, and the "
        f"largest has {int(counts.max())}; use larger ratios, leave_one_out_split or "
        f"user_temporal_split(test_n=...).",
    )


def _as_cut(value: object) -> float:
    """A cut in seconds since the epoch: a number, or anything pandas reads as a time."""
    if _is_real(value):
        cut = float(value)
    else:
        try:
            stamp = pd.Timestamp(value)  # type: ignore[arg-type]  # else TypeError, below
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"The 'cuts' parameter of global_temporal_split must hold seconds "
                f"since the epoch or date-times. Got {value!r} instead."
            ) from e
        cut = math.nan if pd.isna(stamp) else stamp.timestamp()
    if not math.isfinite(cut):
        raise ConfigError(
            f"The 'cuts' parameter of global_temporal_split must hold finite "
            f"times. Got {value!r} instead."
        )
    return cut


def _time_label(t: float) -> str:
    try:
        return f"{t:.10g} ({pd.Timestamp(t, unit='s', tz='UTC').isoformat()})"
    except (OverflowError, ValueError):  # beyond pandas' date range: just the number
        return f"{t:.10g}"


def global_temporal_split(
    dataset: Dataset, *, ratios: Sequence[float] | None = None, cuts: Sequence[object] | None = None
) -> Split:
    """Split all interactions at one or two global points in time.

    Rows at or after the test cut are test, rows at or after the valid cut (and before
    the test cut) are valid, the rest train: no train row is later than a held-out row.
    **Rows tied at a cut go to the later part** (a cut means "from this time on").

    With ``ratios`` the cuts are quantiles: the test cut is the timestamp of the
    ``n - floor(n * test)``-th oldest row (0-based), so test holds at least
    ``floor(n * test)`` rows, more when rows tie with the cut; likewise for valid.
    Users and items first seen after a cut are allowed; the notes count them.

    Parameters
    ----------
    dataset : Dataset
        Interactions with timestamps.
    ratios : sequence of 2 or 3 float, optional
        ``(train, test)`` or ``(train, valid, test)`` summing to 1; the default is
        ``(0.8, 0.1, 0.1)`` unless ``cuts`` is given.
    cuts : sequence of 1 or 2 times, optional
        ``(test_start,)`` or ``(valid_start, test_start)``, increasing: seconds since the
        epoch or anything :class:`pandas.Timestamp` reads (naive times are UTC).

    Returns
    -------
    Split
        Its ``seed`` is ``None``: nothing is random.

    Raises
    ------
    ConfigError
        Both ``ratios`` and ``cuts``, or an invalid one.
    DataError
        No (or missing) timestamps, or a part would be empty.
    """
    func = "global_temporal_split"
    _check_dataset(dataset, func)
    if ratios is not None and cuts is not None:
        raise ConfigError(f"Pass either 'ratios' or 'cuts' to {func}, not both.")
    if cuts is not None:
        if not _is_sequence(cuts) or len(cuts) not in (1, 2):
            raise ConfigError(
                f"The 'cuts' parameter of {func} must be 1 time (test start) or 2 "
                f"(valid start, test start). Got {cuts!r} instead."
            )
        values = [_as_cut(c) for c in cuts]
        if len(values) == 2 and not values[0] < values[1]:
            raise ConfigError(
                f"The 'cuts' parameter of {func} must be increasing (valid start "
                f"< test start). Got {cuts!r} instead."
            )
    else:
        ratios = (0.8, 0.1, 0.1) if ratios is None else ratios
        r_train, r_valid, r_test, with_valid = _check_ratios(ratios, func)
    ts = _timestamps(dataset, func)
    n = len(ts)
    if cuts is not None:
        with_valid, t_test, t_valid = len(values) == 2, values[-1], values[0]
        protocol = f"global_temporal(cuts={'/'.join(f'{v:.10g}' for v in values)})"
        why = (
            f"The timestamps run from {_time_label(float(ts.min()))} to "
            f"{_time_label(float(ts.max()))}; move the cuts inside."
        )
    else:
        n_test, n_valid = int(_floor_share(n, r_test)), int(_floor_share(n, r_valid))
        protocol = f"global_temporal({_ratio_label(r_train, r_valid, r_test)})"
        if n_test == 0 or (with_valid and n_valid == 0):
            raise DataError(
                f"The {protocol} split of {dataset.name!r} leaves a part empty: "
                f"floor({n} * ratio) is 0. Use larger ratios or more data."
            )
        quantiles = np.partition(ts, [n - n_test - n_valid, n - n_test])  # O(n), not a sort
        t_test, t_valid = float(quantiles[n - n_test]), float(quantiles[n - n_test - n_valid])
        why = (
            "Rows tied with a cut go to the later part, and too many rows tie at the cut; "
            "use explicit cuts or finer timestamps."
        )
    part = np.full(n, _TRAIN, dtype=np.int8)
    if with_valid:
        part[ts >= t_valid] = _VALID
    part[ts >= t_test] = _TEST
    notes = [f"test: interactions at or after t={_time_label(t_test)}"]
    if with_valid:
        notes.insert(0, f"valid: interactions at or after t={_time_label(t_valid)}, before test")
    share = np.bincount(part, minlength=3) / n
    shares = [share[_TRAIN]] + ([share[_VALID]] if with_valid else []) + [share[_TEST]]
    notes.append(
        f"actual shares {'/'.join(f'{s:.1%}' for s in shares)} (rows tied at a cut go "
        f"to the later part)"
    )
    return _finish(
        dataset,
        part,
        protocol=protocol,
        seed=None,
        notes=notes,
        with_valid=with_valid,
        why_empty=why,
        why_no_train=why,
    )
