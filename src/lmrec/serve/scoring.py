"""Model-agnostic scoring helpers the service builds on.

Everything here goes through the :class:`~lmrec.models.base.Recommender` protocol
(``score_history``, ``recommend_indices``, ``seen_``, the id maps): no model class is
special-cased. Models that cannot fold in a history fall back to item co-occurrence
(cosine similarity of the item columns of the training matrix ``seen_``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lmrec.errors import ConfigError
from lmrec.models.base import Recommender, history_matrix
from lmrec.models.capabilities import FoldInModel, SequenceModel, supports
from lmrec.ops.topk import topk


def score_history(model: Recommender, history: sp.csr_matrix) -> np.ndarray:
    """Scores (float32, (n, n_items)) of users described by binary history rows (fold-in).

    A writable copy of :meth:`FoldInModel.score_history
    <lmrec.models.capabilities.FoldInModel.score_history>`; raises
    :class:`~lmrec.errors.ConfigError` for models that do not declare the capability.
    """
    if not supports(model, FoldInModel):
        raise ConfigError(f"Model {model.name!r} cannot fold in a history given at request time.")
    return np.array(model.score_history(history), dtype=np.float32, copy=True)  # type: ignore[attr-defined]


def supports_fold_in(model: Recommender) -> bool:
    """Whether ``model`` declares it can score a history given at request time
    (as a set, :class:`FoldInModel`, or in order, :class:`SequenceModel`)."""
    return supports(model, FoldInModel) or supports(model, SequenceModel)


def score_sequence(model: Recommender, items: np.ndarray) -> np.ndarray:
    """Scores (float32, (n_items,)) after one history of dense item indices, oldest first.

    A :class:`SequenceModel` reads it in that order (a session as the client sent it, or a
    user's training sequence extended by fresh feedback); a :class:`FoldInModel` reads
    it as a set.
    """
    items = np.asarray(items, dtype=np.int64)
    if supports(model, SequenceModel):
        return np.array(model.score_sequences([items])[0], dtype=np.float32, copy=True)  # type: ignore[attr-defined]
    return score_history(model, history_matrix([items], model.n_items))[0]


def user_history(model: Recommender, user_idx: int | None, new_items: np.ndarray) -> np.ndarray:
    """A user's history extended by ``new_items`` (dense indices, in feedback order).

    For a :class:`SequenceModel` the user's training sequence, in order, followed by the
    new items (an item seen again moves to the end); for other models the training items
    and the new ones, sorted (a set).
    """
    new_items = np.asarray(new_items, dtype=np.int64)
    if user_idx is None:
        return new_items if supports(model, SequenceModel) else np.unique(new_items)
    if supports(model, SequenceModel):
        past = np.asarray(model.user_sequence(user_idx), dtype=np.int64)  # type: ignore[attr-defined]
        return np.concatenate([past[~np.isin(past, new_items)], new_items])
    seen = model.seen_
    row = seen.indices[seen.indptr[user_idx] : seen.indptr[user_idx + 1]]  # type: ignore[union-attr]
    return np.union1d(row, new_items)


@dataclass(frozen=True)
class Cooccurrence:
    """Cosine similarity of item columns of the training pattern, computed on demand."""

    by_item: sp.csr_matrix  # items x users (the transposed training pattern)
    norms: np.ndarray  # float32 (n_items,)

    @classmethod
    def from_seen(cls, seen: sp.csr_matrix) -> Cooccurrence:
        by_item = sp.csr_matrix(seen.T, dtype=np.float32)
        by_item.data[:] = 1.0
        norms = np.sqrt(np.diff(by_item.indptr).astype(np.float32))
        return cls(by_item, norms)

    def similarity(self, items: np.ndarray) -> np.ndarray:
        """Cosine similarities (float32, (len(items), n_items)) of ``items`` to every item."""
        items = np.asarray(items, dtype=np.int64)
        sims = np.asarray((self.by_item[items] @ self.by_item.T).toarray(), dtype=np.float32)
        denom = self.norms[items, None] * self.norms[None, :]
        np.divide(sims, denom, out=sims, where=denom > 0)
        return sims


def top_from_scores(
    scores: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (items, scores) of one score vector, dropping ``exclude`` and non-``keep`` items.

    Returns 1-d arrays with the -1 padding of :func:`lmrec.ops.topk.topk` removed.
    """
    row = np.array(scores, dtype=np.float32, copy=True).reshape(1, -1)
    row[~np.isfinite(row)] = -np.inf
    if exclude is not None and len(exclude):
        row[0, exclude] = -np.inf
    if keep is not None:
        row[0, ~keep] = -np.inf
    items, vals = topk(row, min(k, row.shape[1]))
    valid = items[0] >= 0
    return items[0][valid], vals[0][valid]


def leave_one_out(
    model: Recommender, history: np.ndarray, item: int, *, block: int = 512
) -> np.ndarray:
    """How much each history item contributes to ``item``'s score, by leaving it out.

    ``contribution[j] = score(history)[item] - score(history without history[j])[item]``,
    from batched ``score_history`` calls (``block`` rows each). For EASE this
    is ``B[j, item]``, for item-kNN ``S[j, item]``; for ALS it is the exact effect of
    removing the interaction from the fold-in solve.
    """
    history = np.asarray(history, dtype=np.int64)
    if supports(model, SequenceModel):  # order matters: drop one item, keep the others' order
        rows = [history] + [np.delete(history, j) for j in range(len(history))]
        scores = np.concatenate([
            np.asarray(model.score_sequences(rows[s : s + block]))[:, item]  # type: ignore[attr-defined]
            for s in range(0, len(rows), block)
        ])  # fmt: skip
        return (scores[0] - scores[1:]).astype(np.float32)
    full = score_history(model, history_matrix([history], model.n_items))[0, item]
    out = np.empty(len(history), np.float32)
    for start in range(0, len(history), block):  # bounds memory to block x n_items
        stop = min(start + block, len(history))
        rows = [np.delete(history, j) for j in range(start, stop)]
        out[start:stop] = full - score_history(model, history_matrix(rows, model.n_items))[:, item]
    return out
