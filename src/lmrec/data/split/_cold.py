"""Cold-start splits: held-out items or users with all (or all but a few) interactions."""

from __future__ import annotations

import numpy as np

from lmrec.data.dataset import Dataset
from lmrec.data.split._base import (
    _TEST,
    _TRAIN,
    _VALID,
    SeedLike,
    Split,
    _check_dataset,
    _check_fraction,
    _check_int,
    _check_seed,
    _finish,
    _first_per_user,
    _floor_share,
    _make_rng,
    _random_order,
    _temporal_order,
    _timestamps,
)
from lmrec.errors import ConfigError, DataError


def _held_out(
    active: np.ndarray,
    fraction: object,
    valid_fraction: object,
    what: str,
    func: str,
    seed: SeedLike,
) -> tuple[np.ndarray, np.ndarray, np.random.Generator, int | None]:
    """Validate the fractions and seed; draw a random ``fraction`` (test) and
    ``valid_fraction`` (valid) of the ``active`` ids. Also returns the generator and seed."""
    f = _check_fraction(fraction, f"{what}_fraction", func)
    v = _check_fraction(valid_fraction, "valid_fraction", func, allow_zero=True)
    if f + v >= 1.0:
        raise ConfigError(
            f"'{what}_fraction' + 'valid_fraction' of {func} must be < 1 so that "
            f"train keeps some. Got {f:g} + {v:g} instead."
        )
    _check_seed(seed, func)
    m = len(active)
    n_test, n_valid = int(_floor_share(m, f)), int(_floor_share(m, v))
    if n_test == 0 or (v > 0 and n_valid == 0):
        raise DataError(
            f"{func} would hold out no {what}: floor({m} {what}s with interactions "
            f"* fraction) is 0. Use a larger fraction or more data."
        )
    rng, recorded = _make_rng(seed)
    shuffled = rng.permutation(active)
    return shuffled[:n_test], shuffled[n_test : n_test + n_valid], rng, recorded


def cold_start_items_split(
    dataset: Dataset,
    *,
    item_fraction: float = 0.2,
    valid_fraction: float = 0.0,
    seed: SeedLike = None,
) -> Split:
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
    test_items, valid_items, _, recorded = _held_out(
        active, item_fraction, valid_fraction, "item", func, seed
    )
    role = np.full(dataset.n_items, _TRAIN, dtype=np.int8)
    role[test_items], role[valid_items] = _TEST, _VALID
    notes = [f"{len(test_items)} of {len(active)} items with interactions held out to test"]
    notes += [f"{len(valid_items)} other items held out to valid"] if len(valid_items) else []
    label = "/".join(f"{f:g}" for f in (item_fraction, valid_fraction) if f)
    return _finish(
        dataset,
        role[dataset.column("item_idx")],
        protocol=f"cold_items({label})",
        seed=recorded,
        notes=notes,
        with_valid=len(valid_items) > 0,
        why_empty="Use a smaller item_fraction.",
    )


def cold_start_users_split(
    dataset: Dataset,
    *,
    user_fraction: float = 0.2,
    valid_fraction: float = 0.0,
    seed: SeedLike = None,
    n_known: int = 0,
) -> Split:
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
        np.flatnonzero(counts > 0), user_fraction, valid_fraction, "user", func, seed
    )
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
            notes.append(
                f"{n_small} held-out users have at most n_known={n_known} interactions "
                f"and so nothing held out"
            )
    else:
        notes.append("train holds no interaction of a held-out user")
    label = "/".join(f"{f:g}" for f in (user_fraction, valid_fraction) if f)
    return _finish(
        dataset,
        part,
        protocol=f"cold_users({label}, n_known={n_known})",
        seed=recorded,
        notes=notes,
        with_valid=len(valid_users) > 0,
        why_empty=f"No held-out user has more than n_known={n_known} interactions.",
    )
