"""Each user's interactions as a sequence in time order: the input of next-item models.

A :class:`~lmrec.data.Dataset` stores interactions in CSR order (by user, then item),
which says nothing about *when* they happened. Sequence models (SASRec, GRU4Rec) read
each user's items oldest first. The order rule, stated once here and used by the
temporal splits too:

- by ``timestamp`` ascending;
- ties (equal timestamps; MovieLens has many, its clock ticks in seconds) keep the
  order of the rows *in the input* (the data set's ``order`` column, recorded when it
  was built from a frame with timestamps); a data set without that column (e.g. from
  :meth:`Dataset.from_csr`) falls back to the stored order, i.e. the item index.

Histories are truncated to their most recent ``max_len`` items when asked.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lmrec.data.dataset import Dataset
from lmrec.errors import DataError, DataWarning

__all__ = ["Sequences", "time_order", "user_sequences"]


@dataclass(frozen=True, eq=False)
class Sequences:
    """Users' item sequences in CSR layout: user ``u``'s items are ``items[indptr[u]:indptr[u+1]]``.

    Items are dense item indices (int32), oldest first.
    """

    indptr: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        """Sequence length of every user (int64)."""
        return np.diff(self.indptr)

    def of(self, user_idx: int) -> np.ndarray:
        """User ``user_idx``'s items, oldest first (a view)."""
        return self.items[self.indptr[user_idx] : self.indptr[user_idx + 1]]

    def rows(self, user_idx: np.ndarray) -> list[np.ndarray]:
        """The sequences of ``user_idx`` as a list of arrays (views)."""
        return [self.of(int(u)) for u in np.asarray(user_idx, dtype=np.int64)]

    def truncate(self, max_len: int) -> Sequences:
        """Keep each user's ``max_len`` most recent items."""
        if max_len < 1:
            raise DataError(f"max_len must be >= 1. Got {max_len!r} instead.")
        lengths = self.lengths()
        keep = np.minimum(lengths, max_len)
        if (keep == lengths).all():
            return self
        indptr = np.zeros_like(self.indptr)
        np.cumsum(keep, out=indptr[1:])
        # position of every kept item in the old array: the last `keep` of each row
        starts = self.indptr[1:] - keep
        pos = np.repeat(starts - indptr[:-1], keep) + np.arange(indptr[-1])
        return Sequences(indptr, self.items[pos])


def time_order(dataset: Dataset, *, what: str = "This model") -> np.ndarray:
    """Row positions of ``dataset`` grouped by user, each user's rows oldest first.

    Ties in time keep the input order (see the module docstring). Raises
    :class:`~lmrec.errors.DataError` without timestamps or with non-finite ones;
    ``what`` names the caller in the message.
    """
    if not dataset.has_timestamps:
        raise DataError(
            f"{what} orders each user's history by time, but the data set {dataset.name!r} has "
            "no timestamps. Read the interactions with their timestamp column (lmrec train "
            "--timestamp-col COLUMN; read_interactions(..., timestamp='COLUMN'))."
        )
    ts = dataset.column("timestamp")
    bad = ~np.isfinite(ts)
    if bad.any():
        raise DataError(
            f"{what} orders each user's history by time, but {int(bad.sum())} of "
            f"{len(ts)} timestamps of {dataset.name!r} are missing or not finite, so they "
            "cannot be sorted. Drop or fill those rows first."
        )
    users = dataset.column("user_idx")
    if dataset.has_input_order:
        return np.lexsort((dataset.column("order"), ts, users))
    return np.lexsort((ts, users))  # stable: ties keep the stored order


def user_sequences(
    dataset: Dataset,
    *,
    max_len: int | None = None,
    min_pairs: bool = False,
    what: str = "This model",
) -> Sequences:
    """Every user's items ordered by time (ties: input order), the most recent ``max_len`` kept.

    Parameters
    ----------
    dataset : Dataset
        Interactions with timestamps.
    max_len : int, optional
        Keep each user's ``max_len`` most recent items.
    min_pairs : bool
        Check that the data can train a next-item model: at least one user with two
        or more items (else :class:`~lmrec.errors.DataError`); users with a single
        item give no (history, next item) pair, which a :class:`~lmrec.errors.DataWarning`
        counts.
    what : str
        The caller, for error messages.

    Examples
    --------
    >>> import pandas as pd
    >>> ds = Dataset.from_frame(pd.DataFrame({"user": ["a", "a", "a", "b"],
    ...     "item": ["z", "x", "y", "x"], "timestamp": [5, 9, 5, 1]}))
    >>> seqs = user_sequences(ds)
    >>> [ds.item_ids.lookup(seqs.of(0)).tolist(), ds.item_ids.lookup(seqs.of(1)).tolist()]
    [['z', 'y', 'x'], ['x']]
    """
    order = time_order(dataset, what=what)
    indptr = np.zeros(dataset.n_users + 1, np.int64)
    np.cumsum(dataset.user_counts(), out=indptr[1:])
    seqs = Sequences(indptr, np.ascontiguousarray(dataset.column("item_idx")[order]))
    if min_pairs:
        lengths = seqs.lengths()
        if not (lengths >= 2).any():
            raise DataError(
                f"{what} learns from consecutive interactions, but every user of "
                f"{dataset.name!r} has at most one, so there is nothing to learn from. Use "
                "data with longer histories (or a non-sequential model such as ease)."
            )
        single = int((lengths == 1).sum())
        if single:
            warnings.warn(
                f"{single} of {int((lengths > 0).sum())} users have a single interaction: "
                "they give no training pair (their one item still conditions their "
                "recommendations).",
                DataWarning,
                stacklevel=2,
            )
    return seqs if max_len is None else seqs.truncate(max_len)
