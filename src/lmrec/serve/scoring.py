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
from lmrec.models.capabilities import FoldInModel, supports
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
    """Whether ``model`` declares it can score a history given at request time."""
    return supports(model, FoldInModel)


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
    full = score_history(model, history_matrix([history], model.n_items))[0, item]
    out = np.empty(len(history), np.float32)
    for start in range(0, len(history), block):  # bounds memory to block x n_items
        stop = min(start + block, len(history))
        rows = [np.delete(history, j) for j in range(start, stop)]
        out[start:stop] = full - score_history(model, history_matrix(rows, model.n_items))[:, item]
    return out
