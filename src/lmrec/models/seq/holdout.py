"""Data a sequence model holds out of its own training data to choose its epoch count.

With ``epochs_from="last_item"`` or ``"new_items"`` (:class:`~lmrec.models.seq.config.SequenceConfig`)
a fit needs no validation data: it trains on :attr:`Holdout.inner`, measures NDCG@10 on
the held-out part after every epoch, keeps the best epoch count and refits on all of
the data for that many epochs.

``last_item``
    Each user's latest interaction (:func:`lmrec.data.split.leave_one_out_split`), ranked
    among every item, the user's other items excluded: the next-item task itself.
``new_items``
    A share of the items with interactions is removed from training; their interactions
    after the median timestamp are ranked among the held-out items alone, from each
    user's remaining history. This measures what a catalog of new items needs (items
    known only by their text competing with each other) and stops before the text
    adaptor fits the known items too closely: on MovieLens-100K's cold-item variant the
    best epoch for new items comes long before the best one for known items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec.data.dataset import Dataset
from lmrec.data.sequences import user_sequences
from lmrec.errors import DataError
from lmrec.eval.metrics import compute_ranking_metrics

__all__ = ["Holdout", "holdout_ndcg", "last_item_holdout", "new_item_holdout"]


@dataclass(frozen=True)
class Holdout:
    """What a fit trains on and what it measures after each epoch.

    ``truth`` and ``exclude`` have one row per entry of ``users`` and one column per
    entry of ``candidates`` (every item when ``candidates`` is None).
    """

    inner: Dataset
    """The training data without the held-out interactions (same id maps)."""
    users: np.ndarray
    """Indices of the users measured."""
    histories: list[np.ndarray]
    """The users' item histories in ``inner``, oldest first (one per entry of ``users``)."""
    truth: sp.csr_matrix
    """Held-out items of each measured user (binary)."""
    candidates: np.ndarray | None = None
    """Item indices ranked (None: the whole catalog)."""
    exclude: sp.csr_matrix | None = None
    """Items never recommended to the user (her items in ``inner``), or None."""


def last_item_holdout(dataset: Dataset) -> Holdout:
    """Each user's latest interaction held out (users with at least 2 interactions)."""
    from lmrec.data.split import leave_one_out_split

    split = leave_one_out_split(dataset, valid=False)
    users = np.flatnonzero(split.test.user_counts() > 0)
    if len(users) == 0:
        raise DataError(
            "epochs_from='last_item' needs users with at least 2 interactions; this data "
            "set has none. Train a fixed number of epochs (epochs_from='valid', no valid data)."
        )
    return Holdout(
        inner=split.train,
        users=users,
        histories=user_sequences(split.train).rows(users),
        truth=_binary(split.test.matrix[users]),
        exclude=_binary(split.train.matrix[users]),
    )


def new_item_holdout(dataset: Dataset, share: float, seed: int) -> Holdout:
    """A random ``share`` of the items with interactions held out (seeded), see the module doc.

    The measured users have interactions with held-out items at or after the median
    timestamp and a history without them.
    """
    items = dataset.column("item_idx")
    active = np.flatnonzero(dataset.item_counts() > 0)
    n_held = int(len(active) * share)
    if n_held < 2:
        raise DataError(
            f"epochs_from='new_items' holds out {share:g} of the {len(active)} items with "
            f"interactions, which is {n_held}; it needs at least 2. Raise new_item_share "
            "or use epochs_from='last_item'."
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    held = np.zeros(dataset.n_items, bool)
    held[rng.choice(active, size=n_held, replace=False)] = True
    inner = dataset.subset(~held[items], name=f"{dataset.name or 'data'} without held-out items")
    timestamps = dataset.column("timestamp")
    later = dataset.subset(held[items] & (timestamps >= np.median(timestamps)))
    users = np.flatnonzero((later.user_counts() > 0) & (inner.user_counts() > 0))
    if len(users) == 0:
        raise DataError(
            "epochs_from='new_items': no user with a history interacts with the held-out "
            "items after the median time, so there is nothing to measure. Raise "
            "new_item_share or use epochs_from='last_item'."
        )
    candidates = np.flatnonzero(held)
    return Holdout(
        inner=inner,
        users=users,
        histories=user_sequences(inner).rows(users),
        truth=_binary(later.matrix[users][:, candidates]),
        candidates=candidates,
    )


def holdout_ndcg(user_states: np.ndarray, item_table: np.ndarray, holdout: Holdout) -> float:
    """Mean NDCG@10 of the held-out items given the users' encoder states and the item table.

    ``user_states`` has one row per measured user; ``item_table`` one row per item of
    the catalog (no padding row).
    """
    from lmrec.ops.topk import mask_rows, topk

    items = item_table if holdout.candidates is None else item_table[holdout.candidates]
    scores = np.asarray(user_states @ items.T, dtype=np.float32)
    if holdout.exclude is not None:
        mask_rows(scores, holdout.exclude)
    recs, _ = topk(scores, min(10, scores.shape[1]))
    summary, _ = compute_ranking_metrics(recs, holdout.truth, ["ndcg@10"], n_items=items.shape[0])
    return float(next(iter(summary.values())))


def _binary(matrix: Any) -> sp.csr_matrix:
    """A copy of a sparse matrix with every stored nonzero set to 1 (float32)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out
