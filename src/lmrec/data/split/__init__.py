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
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from lmrec.data.dataset import Dataset
from lmrec.data.split._base import SeedLike, Split, _check_ratios, _ratio_label  # noqa: F401 - used by lmrec.spark.split
from lmrec.data.split._cold import cold_start_items_split, cold_start_users_split
from lmrec.data.split._per_user import leave_one_out_split, user_temporal_split
from lmrec.data.split._ratio import (
    _time_label,  # noqa: F401 - used by lmrec.spark.split
    global_temporal_split,
    random_split,
)
from lmrec.errors import ConfigError

__all__ = [
    "PROTOCOLS",
    "SeedLike",
    "Split",
    "cold_start_items_split",
    "cold_start_users_split",
    "global_temporal_split",
    "leave_one_out_split",
    "random_split",
    "split_dataset",
    "user_temporal_split",
]


#: Split functions by protocol name, as :func:`split_dataset` and configs refer to them.
PROTOCOLS: Mapping[str, Callable[..., Split]] = MappingProxyType(
    {
        "random": random_split,
        "global_temporal": global_temporal_split,
        "user_temporal": user_temporal_split,
        "loo": leave_one_out_split,
        "cold_items": cold_start_items_split,
        "cold_users": cold_start_users_split,
    }
)


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
        raise ConfigError(
            f"Unknown split protocol {protocol!r}. Valid names: {', '.join(PROTOCOLS)}."
        )
    valid_params = [p for p in inspect.signature(func).parameters if p != "dataset"]
    if unknown := sorted(set(kwargs) - set(valid_params)):
        raise ConfigError(
            f"Unknown parameter(s) {unknown} for split protocol {protocol!r}. "
            f"Valid parameters: {', '.join(valid_params)}."
        )
    return func(dataset, **kwargs)
