"""What every split protocol shares: the Split result, argument checks, and the vectorised core.

See :mod:`lmrec.data.split` for the rules all protocols follow.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from lmrec._checks import check_int
from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, DataError

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
        >>> from lmrec.data.split import leave_one_out_split
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
            lines.append(
                f"  {label:<5} {p.n_interactions:>7,} rows ({share:6.1%}) "
                f"{n_users:>7,} users {n_items:>7,} items"
            )
        lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)


# ---------------------------------------------------------------------------- validation
def _check_dataset(dataset: object, func: str) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"The 'dataset' parameter of {func} must be an lmrec.data.Dataset. "
            f"Got {type(dataset).__name__} instead."
        )
    if dataset.n_interactions == 0:
        raise DataError(f"Data set {dataset.name!r} has no interactions to split.")
    return dataset


def _is_real(value: object) -> TypeGuard[numbers.Real]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_fraction(value: object, name: str, func: str, *, allow_zero: bool = False) -> float:
    v = float(value) if _is_real(value) else math.nan
    if not ((0.0 <= v < 1.0) if allow_zero else (0.0 < v < 1.0)):  # NaN fails both
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(
            f"The {name!r} parameter of {func} must be in {interval}. Got {value!r} instead."
        )
    return v


def _check_int(value: object, name: str, func: str, *, minimum: int) -> int:
    return check_int(value, name, minimum=minimum, where=func)


def _is_sequence(value: object) -> TypeGuard[Sequence[Any] | np.ndarray]:
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def _check_ratios(ratios: object, func: str) -> tuple[float, float, float, bool]:
    """``(train, valid, test, with_valid)`` from 2 or 3 ratios summing to 1."""
    if not _is_sequence(ratios) or len(ratios) not in (2, 3):
        raise ConfigError(
            f"The 'ratios' parameter of {func} must be 2 numbers (train, test) or "
            f"3 (train, valid, test). Got {ratios!r} instead."
        )
    values = [float(r) if _is_real(r) else math.nan for r in ratios]
    if not all(0.0 <= r <= 1.0 for r in values):
        raise ConfigError(
            f"The 'ratios' parameter of {func} must hold numbers in [0, 1]. Got {ratios!r} instead."
        )
    total = math.fsum(values)
    if abs(total - 1.0) > _RATIO_TOLERANCE:
        raise ConfigError(
            f"The 'ratios' parameter of {func} must sum to 1 (within "
            f"{_RATIO_TOLERANCE:g}). Got {tuple(values)}, summing to {total:.10g}, "
            f"instead."
        )
    train, valid, test = (values[0], 0.0, values[1]) if len(values) == 2 else values
    if train <= 0.0 or test <= 0.0:
        raise ConfigError(
            f"The 'ratios' parameter of {func} needs train and test ratios > 0. "
            f"Got {tuple(values)} instead."
        )
    return train, valid, test, valid > 0.0


def _ratio_label(train: float, valid: float, test: float) -> str:
    return "/".join(f"{r:g}" for r in ((train, valid, test) if valid > 0 else (train, test)))


def _check_seed(seed: object, func: str) -> None:
    ok_int = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0
    if not (ok_int or seed is None or isinstance(seed, np.random.Generator)):
        raise ConfigError(
            f"The 'seed' parameter of {func} must be an int >= 0, a "
            f"numpy.random.Generator or None. Got {seed!r} instead."
        )


def _make_rng(seed: SeedLike) -> tuple[np.random.Generator, int | None]:
    """One generator for the whole split, and the int seed that reproduces it (if any)."""
    if isinstance(seed, np.random.Generator):
        return seed, None
    if seed is None:  # record fresh entropy rather than pass None, so the split reproduces
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # fresh: an int
    return np.random.default_rng(int(seed)), int(seed)


def _timestamps(dataset: Dataset, func: str) -> np.ndarray:
    if not dataset.has_timestamps:
        raise DataError(
            f"{func} orders interactions by time, but data set {dataset.name!r} "
            f"has no timestamps. Pass a timestamp column when reading the "
            f"interactions, or use random_split / leave_one_out_split, which work "
            f"without one."
        )
    ts = dataset.column("timestamp")
    if n_missing := int(np.count_nonzero(np.isnan(ts))):
        raise DataError(
            f"{n_missing} of {len(ts)} interactions of {dataset.name!r} have a "
            f"missing (NaN) timestamp; drop or fill them before a temporal "
            f"split."
        )
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


def _holdout_last(
    users: np.ndarray,
    order: np.ndarray,
    counts: np.ndarray,
    n_test: np.ndarray,
    n_valid: np.ndarray,
    min_train: int,
) -> tuple[np.ndarray, np.ndarray]:
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


def _per_user_notes(
    counts: np.ndarray, held: np.ndarray, kept: np.ndarray, min_train: int
) -> list[str]:
    notes = []
    if n_kept := int(np.count_nonzero(kept)):
        notes.append(
            f"{n_kept} users kept entirely in train: holding out their share would "
            f"leave fewer than min_train={min_train} train interactions"
        )
    if n_small := int(np.count_nonzero((counts > 0) & (held == 0))):
        notes.append(
            f"{n_small} users have too few interactions for any held-out row (floor "
            f"rounding) and are only in train"
        )
    return notes


def _finish(
    dataset: Dataset,
    part: np.ndarray,
    *,
    protocol: str,
    seed: int | None,
    notes: list[str],
    with_valid: bool,
    why_empty: str,
    why_no_train: str = "Every row was held out; pass min_train >= 1 to keep some.",
) -> Split:
    """Check that no requested part is empty, add the notes every split gets, build it."""
    sizes = np.bincount(part, minlength=3)
    for code, label in ((_TEST, "test"), (_VALID, "valid"), (_TRAIN, "train")):
        if sizes[code] == 0 and (code != _VALID or with_valid):
            n_users = int(np.count_nonzero(dataset.user_counts()))
            raise DataError(
                f"The {protocol} split of {dataset.name!r} ({dataset.n_interactions} "
                f"interactions, {n_users} users) leaves the {label} part empty. "
                f"{why_no_train if code == _TRAIN else why_empty}"
            )
    users, items, in_train = dataset.column("user_idx"), dataset.column("item_idx"), part == _TRAIN
    seen_users = np.bincount(users[in_train], minlength=dataset.n_users) > 0
    seen_items = np.bincount(items[in_train], minlength=dataset.n_items) > 0
    for code, label in ((_VALID, "valid"), (_TEST, "test")):
        rows = part == code
        part_users = np.bincount(users[rows], minlength=dataset.n_users) > 0
        if n_cold := int(np.count_nonzero(part_users & ~seen_users)):
            notes.append(
                f"{n_cold} of {int(np.count_nonzero(part_users))} {label} users have no "
                f"train interactions"
            )
        part_items = np.bincount(items[rows], minlength=dataset.n_items) > 0
        if n_cold := int(np.count_nonzero(part_items & ~seen_items)):
            n_rows = int(np.count_nonzero(rows & ~seen_items[items]))
            notes.append(
                f"{n_cold} of {int(np.count_nonzero(part_items))} {label} items never "
                f"occur in train ({n_rows} {label} interactions)"
            )
    name = dataset.name
    return Split(
        train=dataset.subset(np.flatnonzero(in_train), name=f"{name}:train"),
        valid=dataset.subset(np.flatnonzero(part == _VALID), name=f"{name}:valid")
        if with_valid
        else None,
        test=dataset.subset(np.flatnonzero(part == _TEST), name=f"{name}:test"),
        protocol=protocol,
        seed=seed,
        notes=tuple(notes),
    )
