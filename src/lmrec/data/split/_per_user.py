"""Per-user hold-outs: each user's latest interactions, or one per user (leave one out)."""

from __future__ import annotations

import numpy as np

from lmrec.data.dataset import Dataset
from lmrec.data.split._base import (
    SeedLike,
    Split,
    _check_dataset,
    _check_fraction,
    _check_int,
    _check_seed,
    _finish,
    _floor_share,
    _holdout_last,
    _make_rng,
    _per_user_notes,
    _random_order,
    _temporal_order,
    _timestamps,
)
from lmrec.errors import ConfigError


def _one_of(
    fraction: object, count: object, what: str, func: str, *, required: bool
) -> tuple[float | None, int | None]:
    if fraction is not None and count is not None:
        raise ConfigError(
            f"Pass only one of '{what}_fraction' and '{what}_n' to {func}. Got "
            f"{what}_fraction={fraction!r} and {what}_n={count!r}."
        )
    if required and fraction is None and count is None:
        raise ConfigError(f"Pass exactly one of '{what}_fraction' and '{what}_n' to {func}.")
    if fraction is not None:
        return _check_fraction(fraction, f"{what}_fraction", func), None
    if count is not None:
        return None, _check_int(count, f"{what}_n", func, minimum=1)
    return None, None


def _share(
    counts: np.ndarray, active: np.ndarray, fraction: float | None, n: int | None
) -> np.ndarray:
    """Rows per user held out for one part: ``floor(count * fraction)``, or ``n`` per active user."""
    if fraction is not None:
        return _floor_share(counts, fraction)
    return np.where(active, n or 0, 0)


def user_temporal_split(
    dataset: Dataset,
    *,
    test_fraction: float | None = None,
    test_n: int | None = None,
    valid_fraction: float | None = None,
    valid_n: int | None = None,
    min_train: int = 1,
) -> Split:
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
        raise ConfigError(
            f"'test_fraction' + 'valid_fraction' of {func} must be < 1 so that "
            f"train keeps rows. Got {t_frac:g} + {v_frac:g} instead."
        )
    min_train = _check_int(min_train, "min_train", func, minimum=0)
    ts = _timestamps(dataset, func)
    users, counts = dataset.column("user_idx"), dataset.user_counts()
    active = counts > 0
    n_test = _share(counts, active, t_frac, t_n)
    n_valid = _share(counts, active, v_frac, v_n)
    part, kept = _holdout_last(
        users, _temporal_order(users, ts, dataset), counts, n_test, n_valid, min_train
    )
    given = {"test_fraction": t_frac, "test_n": t_n, "valid_fraction": v_frac, "valid_n": v_n}
    params = [f"{k}={v:g}" for k, v in given.items() if v is not None]
    params += [f"min_train={min_train}"] if min_train != 1 else []
    return _finish(
        dataset,
        part,
        protocol=f"user_temporal({', '.join(params)})",
        seed=None,
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
        notes = [
            "the latest interaction of each user (by timestamp; ties: the later row) is "
            "test" + (", the one before is valid" if valid else "")
        ]
    else:
        rng, recorded = _make_rng(seed)
        order, how = _random_order(dataset, rng), "random"
        notes = ["no timestamps: the held-out interactions are drawn at random"]
    part, kept = _holdout_last(users, order, counts, one, one * bool(valid), 1)
    need = 3 if valid else 2
    if n_kept := int(np.count_nonzero(kept)):
        notes.append(f"{n_kept} users with fewer than {need} interactions kept entirely in train")
    return _finish(
        dataset,
        part,
        protocol=f"loo({how}{', valid' if valid else ''})",
        seed=recorded,
        notes=notes,
        with_valid=bool(valid),
        why_empty=f"Every user has fewer than {need} interactions.",
    )
