"""Seeded, reproducible evaluation splits of a :class:`~lmrec.data.Dataset`.

Every function returns a frozen :class:`Split` whose ``train``, ``valid`` and ``test``
parts are :meth:`Dataset.subset` views of the input: they share its id maps (the same
dense index is the same user or item in all three) and together hold every row once.
Rules common to all protocols:

Rounding
    A share of ``n`` rows at ratio ``r`` is ``floor(n * r)``, with a relative tolerance of
    1e-12 so that ``0.29 * 100`` is 29, not 28: ``n_test = floor(n * r_test)``,
    ``n_valid = floor(n * r_valid)``, and train gets the rest. Test and valid are within
    one row of their exact share (never above it), train within two (never below it).
Too few interactions
    Per-user protocols never hold out a partial share: a user whose held-out rows would
    leave fewer than ``min_train`` train rows keeps *all* rows in train (see the notes).
    A requested part that would be empty raises :class:`~lmrec.errors.DataError`.
Randomness
    ``seed: int | numpy.random.Generator | None`` builds one generator with
    :func:`numpy.random.default_rng`; global RNG state is never touched. Draws are made
    over the rows sorted by ``(user_idx, item_idx)``, so one seed gives one split of the
    same interactions whatever their row order. ``seed=None`` draws OS entropy and
    records it in :attr:`Split.seed`, so every split can be reproduced.
Time
    Timestamps must all be present (no NaN). Of two rows with the same timestamp the
    later row *of the input* counts as the later interaction (the data set's ``order``
    column; without it, the later stored row). In :func:`global_temporal_split`, rows
    tied at a cut go to the later part.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, DataError

__all__ = [
    "PROTOCOLS", "Split", "cold_start_items_split", "cold_start_users_split",
    "global_temporal_split", "leave_one_out_split", "random_split", "split_dataset",
    "user_temporal_split",
]

SeedLike = int | np.random.Generator | None

_TRAIN, _VALID, _TEST = 0, 1, 2
_RATIO_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class Split:
    """The parts of one evaluation split, with how they were made.

    Attributes
    ----------
    train, test : Dataset
        Disjoint subsets of the input; with ``valid`` they partition its rows.
    valid : Dataset or None
        The validation part, or ``None`` when none was asked for.
    protocol : str
        The protocol and its parameters, e.g. ``"random(0.8/0.1/0.1)"``.
    seed : int or None
        The seed that reproduces the split (the OS entropy drawn for ``seed=None``), or
        ``None`` when nothing was random or a ``Generator`` was passed.
    notes : tuple of str
        Facts to know before reading metrics, e.g. how many users were too small to
        hold anything out, or how many test users have no train interactions.

    Splits compare by identity (``eq=False``); compare the parts' interactions instead.
    """

    train: Dataset
    valid: Dataset | None
    test: Dataset
    protocol: str
    seed: int | None = None
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """A few lines describing the parts (rows, share, users, items) and the notes.

        Examples
        --------
        >>> import pandas as pd
        >>> from lmrec.data import Dataset
        >>> ds = Dataset.from_frame(pd.DataFrame({"user": [1, 1, 1, 2, 2, 2],
        ...                                       "item": [1, 2, 3, 1, 2, 3],
        ...                                       "timestamp": [1, 2, 3, 3, 2, 1]}))
        >>> print(leave_one_out_split(ds, valid=False).summary())
        loo(latest) split
          train       4 rows ( 66.7%)       2 users       3 items
          test        2 rows ( 33.3%)       2 users       2 items
          - the latest interaction of each user (by timestamp; ties: the later row) is test
        """
        seed = f", seed {self.seed}" if self.seed is not None else ""
        lines = [f"{self.protocol} split{seed}"]
        parts = {"train": self.train, "valid": self.valid, "test": self.test}
        total = sum(p.n_interactions for p in parts.values() if p is not None) or 1
        for label, p in parts.items():
            if p is None:
                continue
            n_users = int(np.count_nonzero(p.user_counts()))
            n_items = int(np.count_nonzero(p.item_counts()))
            share = p.n_interactions / total
            lines.append(f"  {label:<5} {p.n_interactions:>7,} rows ({share:6.1%}) "
                         f"{n_users:>7,} users {n_items:>7,} items")
        lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)


# ---------------------------------------------------------------------------- validation
def _check_dataset(dataset: object, func: str) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"The 'dataset' parameter of {func} must be an lmrec.data.Dataset. "
                        f"Got {type(dataset).__name__} instead.")
    if dataset.n_interactions == 0:
        raise DataError(f"Data set {dataset.name!r} has no interactions to split.")
    return dataset


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_fraction(value: object, name: str, func: str, *, allow_zero: bool = False) -> float:
    v = float(value) if _is_real(value) else math.nan  # type: ignore[arg-type]
    if not ((0.0 <= v < 1.0) if allow_zero else (0.0 < v < 1.0)):  # NaN fails both
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"The {name!r} parameter of {func} must be in {interval}. "
                          f"Got {value!r} instead.")
    return v


def _check_int(value: object, name: str, func: str, *, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"The {name!r} parameter of {func} must be an int >= {minimum}. "
                          f"Got {value!r} instead.")
    return int(value)


def _is_sequence(value: object) -> bool:
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def _check_ratios(ratios: object, func: str) -> tuple[float, float, float, bool]:
    """``(train, valid, test, with_valid)`` from 2 or 3 ratios summing to 1."""
    if not _is_sequence(ratios) or len(ratios) not in (2, 3):  # type: ignore[arg-type]
        raise ConfigError(f"The 'ratios' parameter of {func} must be 2 numbers (train, test) or "
                          f"3 (train, valid, test). Got {ratios!r} instead.")
    values = [float(r) if _is_real(r) else math.nan for r in ratios]  # type: ignore[union-attr]
    if not all(0.0 <= r <= 1.0 for r in values):
        raise ConfigError(f"The 'ratios' parameter of {func} must hold numbers in [0, 1]. "
                          f"Got {ratios!r} instead.")
    total = math.fsum(values)
    if abs(total - 1.0) > _RATIO_TOLERANCE:
        raise ConfigError(f"The 'ratios' parameter of {func} must sum to 1 (within "
                          f"{_RATIO_TOLERANCE:g}). Got {tuple(values)}, summing to {total:.10g}, "
                          f"instead.")
    train, valid, test = (values[0], 0.0, values[1]) if len(values) == 2 else values
    if train <= 0.0 or test <= 0.0:
        raise ConfigError(f"The 'ratios' parameter of {func} needs train and test ratios > 0. "
                          f"Got {tuple(values)} instead.")
    return train, valid, test, valid > 0.0


def _ratio_label(train: float, valid: float, test: float) -> str:
    return "/".join(f"{r:g}" for r in ((train, valid, test) if valid > 0 else (train, test)))


def _check_seed(seed: object, func: str) -> None:
    ok_int = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0
    if not (ok_int or seed is None or isinstance(seed, np.random.Generator)):
        raise ConfigError(f"The 'seed' parameter of {func} must be an int >= 0, a "
                          f"numpy.random.Generator or None. Got {seed!r} instead.")


def _make_rng(seed: SeedLike) -> tuple[np.random.Generator, int | None]:
    """One generator for the whole split, and the int seed that reproduces it (if any)."""
    if isinstance(seed, np.random.Generator):
        return seed, None
    if seed is None:  # record fresh entropy rather than pass None, so the split reproduces
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    return np.random.default_rng(int(seed)), int(seed)


def _timestamps(dataset: Dataset, func: str) -> np.ndarray:
    if not dataset.has_timestamps:
        raise DataError(f"{func} orders interactions by time, but data set {dataset.name!r} "
                        f"has no timestamps. Pass a timestamp column when reading the "
                        f"interactions, or use random_split / leave_one_out_split, which work "
                        f"without one.")
    ts = dataset.column("timestamp")
    if n_missing := int(np.count_nonzero(np.isnan(ts))):
        raise DataError(f"{n_missing} of {len(ts)} interactions of {dataset.name!r} have a "
                        f"missing (NaN) timestamp; drop or fill them before a temporal "
                        f"split.")
    return ts


# ---------------------------------------------------------------------------- vectorized core
def _floor_share(n: np.ndarray | int, ratio: float) -> np.ndarray:
    """``floor(n * ratio)``, forgiving float error (``100 * 0.29`` is 28.999999999999996)."""
    x = np.asarray(n, dtype=np.float64) * ratio
    return np.floor(x + 1e-12 * np.maximum(x, 1.0)).astype(np.int64)


def _random_order(dataset: Dataset, rng: np.random.Generator) -> np.ndarray:
    """Row positions grouped by ascending user, in random order within each user.

    Random ranks are dealt over the rows sorted by ``(user_idx, item_idx)``, so the
    order depends on the interactions and the generator, not on the row order.
    """
    users = dataset.column("user_idx").astype(np.int64)
    items = dataset.column("item_idx").astype(np.int64)
    canonical = np.argsort(users * dataset.n_items + items, kind="stable")
    rank = rng.permutation(len(users))
    # user * n + rank is unique per row, so this sort has one answer whatever its kind.
    return canonical[np.argsort(users[canonical] * len(users) + rank)]


def _temporal_order(users: np.ndarray, ts: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Row positions grouped by ascending user, oldest first. Rows tied in time keep
    their input order (the ``order`` column; lexsort is stable, so without it the
    stored order): the later row counts as later."""
    if dataset.has_input_order:
        return np.lexsort((dataset.column("order"), ts, users))
    return np.lexsort((ts, users))


def _holdout_last(users: np.ndarray, order: np.ndarray, counts: np.ndarray, n_test: np.ndarray,
                  n_valid: np.ndarray, min_train: int) -> tuple[np.ndarray, np.ndarray]:
    """Part code of every row: each user's last ``n_test`` rows in ``order`` are test and
    the ``n_valid`` before them valid, unless that leaves fewer than ``min_train`` rows,
    in which case the user keeps all rows in train. Also returns that kept-users mask.

    ``order`` must group the rows by ascending user (``counts`` gives the group sizes).
    """
    held = n_test + n_valid
    kept = (held > 0) & (counts - held < min_train)
    n_test, held = np.where(kept, 0, n_test), np.where(kept, 0, held)
    sorted_users = users[order]
    from_end = np.cumsum(counts)[sorted_users] - 1 - np.arange(len(order))
    in_order = np.full(len(order), _TRAIN, dtype=np.int8)
    in_order[from_end < held[sorted_users]] = _VALID
    in_order[from_end < n_test[sorted_users]] = _TEST
    part = np.empty_like(in_order)
    part[order] = in_order
    return part, kept


def _first_per_user(users: np.ndarray, order: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """Mask of each user's first ``n`` rows in ``order`` (grouped by ascending user)."""
    starts = np.cumsum(counts) - counts
    mask = np.empty(len(order), dtype=bool)
    mask[order] = np.arange(len(order)) - starts[users[order]] < n
    return mask


def _per_user_notes(counts: np.ndarray, held: np.ndarray, kept: np.ndarray, min_train: int
                    ) -> list[str]:
    notes = []
    if n_kept := int(np.count_nonzero(kept)):
        notes.append(f"{n_kept} users kept entirely in train: holding out their share would "
                     f"leave fewer than min_train={min_train} train interactions")
    if n_small := int(np.count_nonzero((counts > 0) & (held == 0))):
        notes.append(f"{n_small} users have too few interactions for any held-out row (floor "
                     f"rounding) and are only in train")
    return notes


def _finish(dataset: Dataset, part: np.ndarray, *, protocol: str, seed: int | None,
            notes: list[str], with_valid: bool, why_empty: str,
            why_no_train: str = "Every row was held out; pass min_train >= 1 to keep some.",
            ) -> Split:
    """Check that no requested part is empty, add the notes every split gets, build it."""
    sizes = np.bincount(part, minlength=3)
    for code, label in ((_TEST, "test"), (_VALID, "valid"), (_TRAIN, "train")):
        if sizes[code] == 0 and (code != _VALID or with_valid):
            n_users = int(np.count_nonzero(dataset.user_counts()))
            raise DataError(f"The {protocol} split of {dataset.name!r} ({dataset.n_interactions} "
                            f"interactions, {n_users} users) leaves the {label} part empty. "
                            f"{why_no_train if code == _TRAIN else why_empty}")
    users, items, in_train = dataset.column("user_idx"), dataset.column("item_idx"), part == _TRAIN
    seen_users = np.bincount(users[in_train], minlength=dataset.n_users) > 0
    seen_items = np.bincount(items[in_train], minlength=dataset.n_items) > 0
    for code, label in ((_VALID, "valid"), (_TEST, "test")):
        rows = part == code
        part_users = np.bincount(users[rows], minlength=dataset.n_users) > 0
        if n_cold := int(np.count_nonzero(part_users & ~seen_users)):
            notes.append(f"{n_cold} of {int(np.count_nonzero(part_users))} {label} users have no "
                         f"train interactions")
        part_items = np.bincount(items[rows], minlength=dataset.n_items) > 0
        if n_cold := int(np.count_nonzero(part_items & ~seen_items)):
            n_rows = int(np.count_nonzero(rows & ~seen_items[items]))
            notes.append(f"{n_cold} of {int(np.count_nonzero(part_items))} {label} items never "
                         f"occur in train ({n_rows} {label} interactions)")
    name = dataset.name
    return Split(
        train=dataset.subset(np.flatnonzero(in_train), name=f"{name}:train"),
        valid=dataset.subset(np.flatnonzero(part == _VALID), name=f"{name}:valid")
        if with_valid else None,
        test=dataset.subset(np.flatnonzero(part == _TEST), name=f"{name}:test"),
        protocol=protocol, seed=seed, notes=tuple(notes),
    )


# ---------------------------------------------------------------------------- protocols
def random_split(dataset: Dataset, *, ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: SeedLike = None, min_train: int = 1) -> Split:
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
    part, kept = _holdout_last(users, _random_order(dataset, rng), counts, n_test, n_valid,
                               min_train)
    suffix = f", min_train={min_train}" if min_train != 1 else ""
    return _finish(
        dataset, part, protocol=f"random({_ratio_label(r_train, r_valid, r_test)}{suffix})",
        seed=recorded, notes=_per_user_notes(counts, n_test + n_valid, kept, min_train),
        with_valid=with_valid,
        why_empty=f"A user with n interactions gets floor(n * ratio) rows of a part, and the "
                  f"largest has {int(counts.max())}; use larger ratios, leave_one_out_split or "
                  f"user_temporal_split(test_n=...).",
    )


def _as_cut(value: object) -> float:
    """A cut in seconds since the epoch: a number, or anything pandas reads as a time."""
    if _is_real(value):
        cut = float(value)  # type: ignore[arg-type]
    else:
        try:
            stamp = pd.Timestamp(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"The 'cuts' parameter of global_temporal_split must hold seconds "
                              f"since the epoch or date-times. Got {value!r} instead.") from e
        cut = math.nan if stamp is pd.NaT else stamp.timestamp()
    if not math.isfinite(cut):
        raise ConfigError(f"The 'cuts' parameter of global_temporal_split must hold finite "
                          f"times. Got {value!r} instead.")
    return cut


def _time_label(t: float) -> str:
    try:
        return f"{t:.10g} ({pd.Timestamp(t, unit='s', tz='UTC').isoformat()})"
    except (OverflowError, ValueError):  # beyond pandas' date range: just the number
        return f"{t:.10g}"


def global_temporal_split(dataset: Dataset, *, ratios: Sequence[float] | None = None,
                          cuts: Sequence[object] | None = None) -> Split:
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
            raise ConfigError(f"The 'cuts' parameter of {func} must be 1 time (test start) or 2 "
                              f"(valid start, test start). Got {cuts!r} instead.")
        values = [_as_cut(c) for c in cuts]
        if len(values) == 2 and not values[0] < values[1]:
            raise ConfigError(f"The 'cuts' parameter of {func} must be increasing (valid start "
                              f"< test start). Got {cuts!r} instead.")
    else:
        ratios = (0.8, 0.1, 0.1) if ratios is None else ratios
        r_train, r_valid, r_test, with_valid = _check_ratios(ratios, func)
    ts = _timestamps(dataset, func)
    n = len(ts)
    if cuts is not None:
        with_valid, t_test, t_valid = len(values) == 2, values[-1], values[0]
        protocol = f"global_temporal(cuts={'/'.join(f'{v:.10g}' for v in values)})"
        why = (f"The timestamps run from {_time_label(float(ts.min()))} to "
               f"{_time_label(float(ts.max()))}; move the cuts inside.")
    else:
        n_test, n_valid = int(_floor_share(n, r_test)), int(_floor_share(n, r_valid))
        protocol = f"global_temporal({_ratio_label(r_train, r_valid, r_test)})"
        if n_test == 0 or (with_valid and n_valid == 0):
            raise DataError(f"The {protocol} split of {dataset.name!r} leaves a part empty: "
                            f"floor({n} * ratio) is 0. Use larger ratios or more data.")
        quantiles = np.partition(ts, [n - n_test - n_valid, n - n_test])  # O(n), not a sort
        t_test, t_valid = float(quantiles[n - n_test]), float(quantiles[n - n_test - n_valid])
        why = ("Rows tied with a cut go to the later part, and too many rows tie at the cut; "
               "use explicit cuts or finer timestamps.")
    part = np.full(n, _TRAIN, dtype=np.int8)
    if with_valid:
        part[ts >= t_valid] = _VALID
    part[ts >= t_test] = _TEST
    notes = [f"test: interactions at or after t={_time_label(t_test)}"]
    if with_valid:
        notes.insert(0, f"valid: interactions at or after t={_time_label(t_valid)}, before test")
    share = np.bincount(part, minlength=3) / n
    shares = [share[_TRAIN]] + ([share[_VALID]] if with_valid else []) + [share[_TEST]]
    notes.append(f"actual shares {'/'.join(f'{s:.1%}' for s in shares)} (rows tied at a cut go "
                 f"to the later part)")
    return _finish(dataset, part, protocol=protocol, seed=None, notes=notes,
                   with_valid=with_valid, why_empty=why, why_no_train=why)


def _one_of(fraction: object, count: object, what: str, func: str, *, required: bool
            ) -> tuple[float | None, int | None]:
    if fraction is not None and count is not None:
        raise ConfigError(f"Pass only one of '{what}_fraction' and '{what}_n' to {func}. Got "
                          f"{what}_fraction={fraction!r} and {what}_n={count!r}.")
    if required and fraction is None and count is None:
        raise ConfigError(f"Pass exactly one of '{what}_fraction' and '{what}_n' to {func}.")
    if fraction is not None:
        return _check_fraction(fraction, f"{what}_fraction", func), None
    if count is not None:
        return None, _check_int(count, f"{what}_n", func, minimum=1)
    return None, None


def user_temporal_split(dataset: Dataset, *, test_fraction: float | None = None,
                        test_n: int | None = None, valid_fraction: float | None = None,
                        valid_n: int | None = None, min_train: int = 1) -> Split:
    """Hold out each user's latest interactions: the latest to test, the ones before to valid.

    Give exactly one of ``test_fraction`` / ``test_n`` and at most one of
    ``valid_fraction`` / ``valid_n`` (none: ``valid`` is ``None``). A fraction gives a
    user with ``n`` interactions ``floor(n * fraction)`` rows, a count exactly that many.
    Users whose held-out rows would leave fewer than ``min_train`` train rows (including
    users with fewer rows than ``test_n + valid_n``) keep all rows in train. Rows tied in
    time are ordered by row: the later row is the later interaction.

    Parameters
    ----------
    dataset : Dataset
        Interactions with timestamps.
    test_fraction, valid_fraction : float in (0, 1), optional
        Share of each user's interactions held out; together < 1.
    test_n, valid_n : int >= 1, optional
        Number of each user's interactions held out.
    min_train : int, default 1
        The fewest train interactions a user with held-out rows keeps.

    Returns
    -------
    Split
        Its ``seed`` is ``None``: nothing is random.

    Raises
    ------
    ConfigError
        Not exactly one of ``test_fraction`` / ``test_n``, or an invalid value.
    DataError
        No (or missing) timestamps, or no user big enough to hold out a row.
    """
    func = "user_temporal_split"
    _check_dataset(dataset, func)
    t_frac, t_n = _one_of(test_fraction, test_n, "test", func, required=True)
    v_frac, v_n = _one_of(valid_fraction, valid_n, "valid", func, required=False)
    if t_frac is not None and v_frac is not None and t_frac + v_frac >= 1.0:
        raise ConfigError(f"'test_fraction' + 'valid_fraction' of {func} must be < 1 so that "
                          f"train keeps rows. Got {t_frac:g} + {v_frac:g} instead.")
    min_train = _check_int(min_train, "min_train", func, minimum=0)
    ts = _timestamps(dataset, func)
    users, counts = dataset.column("user_idx"), dataset.user_counts()
    active = counts > 0
    n_test = _floor_share(counts, t_frac) if t_frac is not None else np.where(active, t_n, 0)
    n_valid = _floor_share(counts, v_frac) if v_frac is not None else np.where(active, v_n or 0, 0)
    part, kept = _holdout_last(users, _temporal_order(users, ts, dataset), counts, n_test, n_valid,
                               min_train)
    given = {"test_fraction": t_frac, "test_n": t_n, "valid_fraction": v_frac, "valid_n": v_n}
    params = [f"{k}={v:g}" for k, v in given.items() if v is not None]
    params += [f"min_train={min_train}"] if min_train != 1 else []
    return _finish(
        dataset, part, protocol=f"user_temporal({', '.join(params)})", seed=None,
        notes=_per_user_notes(counts, n_test + n_valid, kept, min_train),
        with_valid=v_frac is not None or v_n is not None,
        why_empty=f"The largest user has {int(counts.max())} interactions; use test_n / "
                  f"valid_n, larger fractions or a smaller min_train.",
    )


def leave_one_out_split(dataset: Dataset, *, valid: bool = True, seed: SeedLike = None) -> Split:
    """Hold out one interaction per user for test (and the one before it for valid).

    With timestamps the held-out rows are each user's latest (ties: the later row) and
    ``seed`` is unused; without, they are drawn at random. Users with fewer than 2
    interactions (3 with ``valid=True``) keep all rows in train (counted in the notes).

    Parameters
    ----------
    dataset : Dataset
        The interactions to split.
    valid : bool, default True
        Also hold out a second interaction per user for validation.
    seed : int, numpy.random.Generator or None
        Randomness, used when the data set has no timestamps.

    Returns
    -------
    Split

    Raises
    ------
    ConfigError
        An invalid parameter.
    DataError
        Missing (NaN) timestamps, or no user with enough interactions.
    """
    func = "leave_one_out_split"
    _check_dataset(dataset, func)
    if not isinstance(valid, (bool, np.bool_)):
        raise ConfigError(f"The 'valid' parameter of {func} must be a bool. Got {valid!r} instead.")
    _check_seed(seed, func)
    users, counts = dataset.column("user_idx"), dataset.user_counts()
    one = (counts > 0).astype(np.int64)
    if dataset.has_timestamps:
        ts = _timestamps(dataset, func)
        order, recorded, how = _temporal_order(users, ts, dataset), None, "latest"
        notes = ["the latest interaction of each user (by timestamp; ties: the later row) is "
                 "test" + (", the one before is valid" if valid else "")]
    else:
        rng, recorded = _make_rng(seed)
        order, how = _random_order(dataset, rng), "random"
        notes = ["no timestamps: the held-out interactions are drawn at random"]
    part, kept = _holdout_last(users, order, counts, one, one * bool(valid), 1)
    need = 3 if valid else 2
    if n_kept := int(np.count_nonzero(kept)):
        notes.append(f"{n_kept} users with fewer than {need} interactions kept entirely in train")
    return _finish(dataset, part, protocol=f"loo({how}{', valid' if valid else ''})",
                   seed=recorded, notes=notes, with_valid=bool(valid),
                   why_empty=f"Every user has fewer than {need} interactions.")


def _held_out(
    active: np.ndarray, fraction: object, valid_fraction: object, what: str, func: str,
    seed: SeedLike,
) -> tuple[np.ndarray, np.ndarray, np.random.Generator, int | None]:
    """Validate the fractions and seed; draw a random ``fraction`` (test) and
    ``valid_fraction`` (valid) of the ``active`` ids. Also returns the generator and seed."""
    f = _check_fraction(fraction, f"{what}_fraction", func)
    v = _check_fraction(valid_fraction, "valid_fraction", func, allow_zero=True)
    if f + v >= 1.0:
        raise ConfigError(f"'{what}_fraction' + 'valid_fraction' of {func} must be < 1 so that "
                          f"train keeps some. Got {f:g} + {v:g} instead.")
    _check_seed(seed, func)
    m = len(active)
    n_test, n_valid = int(_floor_share(m, f)), int(_floor_share(m, v))
    if n_test == 0 or (v > 0 and n_valid == 0):
        raise DataError(f"{func} would hold out no {what}: floor({m} {what}s with interactions "
                        f"* fraction) is 0. Use a larger fraction or more data.")
    rng, recorded = _make_rng(seed)
    shuffled = rng.permutation(active)
    return shuffled[:n_test], shuffled[n_test : n_test + n_valid], rng, recorded


def cold_start_items_split(dataset: Dataset, *, item_fraction: float = 0.2,
                           valid_fraction: float = 0.0, seed: SeedLike = None) -> Split:
    """Hold out a random set of items with all their interactions (item cold start).

    ``floor(m * item_fraction)`` of the ``m`` items with interactions go to test with all
    their interactions, and ``floor(m * valid_fraction)`` others to valid; train never
    contains a held-out item.

    Parameters
    ----------
    dataset : Dataset
        The interactions to split.
    item_fraction : float in (0, 1), default 0.2
        Share of the items with interactions held out to test.
    valid_fraction : float in [0, 1), default 0.0
        Share held out to valid (0: ``valid`` is ``None``).
    seed : int, numpy.random.Generator or None
        Randomness.

    Returns
    -------
    Split

    Raises
    ------
    ConfigError
        A fraction out of range, or fractions summing to 1 or more.
    DataError
        Too few items to hold one out.
    """
    func = "cold_start_items_split"
    _check_dataset(dataset, func)
    active = np.flatnonzero(dataset.item_counts() > 0)
    test_items, valid_items, _, recorded = _held_out(active, item_fraction, valid_fraction,
                                                     "item", func, seed)
    role = np.full(dataset.n_items, _TRAIN, dtype=np.int8)
    role[test_items], role[valid_items] = _TEST, _VALID
    notes = [f"{len(test_items)} of {len(active)} items with interactions held out to test"]
    notes += [f"{len(valid_items)} other items held out to valid"] if len(valid_items) else []
    label = "/".join(f"{f:g}" for f in (item_fraction, valid_fraction) if f)
    return _finish(dataset, role[dataset.column("item_idx")], protocol=f"cold_items({label})",
                   seed=recorded, notes=notes, with_valid=len(valid_items) > 0,
                   why_empty="Use a smaller item_fraction.")


def cold_start_users_split(dataset: Dataset, *, user_fraction: float = 0.2,
                           valid_fraction: float = 0.0, seed: SeedLike = None,
                           n_known: int = 0) -> Split:
    """Hold out a random set of users (user cold start), optionally with a few known rows.

    ``floor(m * user_fraction)`` of the ``m`` users with interactions go to test and
    ``floor(m * valid_fraction)`` others to valid. With ``n_known > 0`` each held-out
    user's first ``n_known`` interactions (by timestamp, ties by row order; at random
    without timestamps) stay in train and only the rest are held out: the points of a
    cold-start-user curve.

    The held-out users and the random row ranking do not depend on ``n_known``: with one
    seed every ``n_known`` holds out the same users, and the known rows for a smaller
    ``n_known`` are a subset of those for a larger one. Held-out users with at most
    ``n_known`` interactions have nothing left to hold out (counted in the notes).

    Parameters
    ----------
    dataset : Dataset
        The interactions to split.
    user_fraction : float in (0, 1), default 0.2
        Share of the users with interactions held out to test.
    valid_fraction : float in [0, 1), default 0.0
        Share held out to valid (0: ``valid`` is ``None``).
    seed : int, numpy.random.Generator or None
        Randomness.
    n_known : int >= 0, default 0
        Interactions of each held-out user revealed in train.

    Returns
    -------
    Split

    Raises
    ------
    ConfigError
        An invalid parameter.
    DataError
        Too few users, missing (NaN) timestamps with ``n_known > 0``, or no held-out user
        with more than ``n_known`` interactions.
    """
    func = "cold_start_users_split"
    _check_dataset(dataset, func)
    n_known = _check_int(n_known, "n_known", func, minimum=0)
    counts = dataset.user_counts()
    test_users, valid_users, rng, recorded = _held_out(
        np.flatnonzero(counts > 0), user_fraction, valid_fraction, "user", func, seed)
    role = np.full(dataset.n_users, _TRAIN, dtype=np.int8)
    role[test_users], role[valid_users] = _TEST, _VALID
    users = dataset.column("user_idx")
    part = role[users]
    notes = [f"{len(test_users)} of {len(counts.nonzero()[0])} users with interactions to test"]
    notes += [f"{len(valid_users)} other users held out to valid"] if len(valid_users) else []
    if n_known > 0:
        if dataset.has_timestamps:
            order = _temporal_order(users, _timestamps(dataset, func), dataset)
            how = "earliest (by timestamp; ties: the earlier row)"
        else:  # drawn after the users, so the users do not depend on n_known
            order, how = _random_order(dataset, rng), "randomly drawn (no timestamps)"
        part[_first_per_user(users, order, counts, n_known)] = _TRAIN
        notes.append(f"the {how} {n_known} interactions of each held-out user stay in train")
        held = np.concatenate([test_users, valid_users])
        if n_small := int(np.count_nonzero(counts[held] <= n_known)):
            notes.append(f"{n_small} held-out users have at most n_known={n_known} interactions "
                         f"and so nothing held out")
    else:
        notes.append("train holds no interaction of a held-out user")
    label = "/".join(f"{f:g}" for f in (user_fraction, valid_fraction) if f)
    return _finish(dataset, part, protocol=f"cold_users({label}, n_known={n_known})",
                   seed=recorded, notes=notes, with_valid=len(valid_users) > 0,
                   why_empty=f"No held-out user has more than n_known={n_known} interactions.")


#: Split functions by protocol name, as :func:`split_dataset` and configs refer to them.
PROTOCOLS: Mapping[str, Callable[..., Split]] = MappingProxyType({
    "random": random_split,
    "global_temporal": global_temporal_split,
    "user_temporal": user_temporal_split,
    "loo": leave_one_out_split,
    "cold_items": cold_start_items_split,
    "cold_users": cold_start_users_split,
})


def split_dataset(dataset: Dataset, protocol: str, **kwargs: Any) -> Split:
    """Split ``dataset`` with the protocol named ``protocol`` and its keyword parameters.

    Parameters
    ----------
    dataset : Dataset
        The interactions to split.
    protocol : str
        One of ``"random"``, ``"global_temporal"``, ``"user_temporal"``, ``"loo"``,
        ``"cold_items"``, ``"cold_users"`` (the keys of :data:`PROTOCOLS`).
    **kwargs
        Keyword parameters of that protocol's function.

    Returns
    -------
    Split

    Raises
    ------
    ConfigError
        An unknown protocol or parameter (the message lists the valid ones), or an
        invalid value.

    Examples
    --------
    >>> import pandas as pd
    >>> from lmrec.data import Dataset
    >>> ds = Dataset.from_frame(pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 2, 1, 2]}))
    >>> split_dataset(ds, "loo", valid=False, seed=3).test.n_interactions
    2
    """
    func = PROTOCOLS.get(protocol) if isinstance(protocol, str) else None
    if func is None:
        raise ConfigError(f"Unknown split protocol {protocol!r}. Valid names: "
                          f"{', '.join(PROTOCOLS)}.")
    valid_params = [p for p in inspect.signature(func).parameters if p != "dataset"]
    if unknown := sorted(set(kwargs) - set(valid_params)):
        raise ConfigError(f"Unknown parameter(s) {unknown} for split protocol {protocol!r}. "
                          f"Valid parameters: {', '.join(valid_params)}.")
    return func(dataset, **kwargs)
