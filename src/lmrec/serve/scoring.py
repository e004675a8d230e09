"""Model-agnostic scoring helpers the service builds on.

Everything here goes through the :class:`~lmrec.models.base.Recommender` protocol
(``score_histories``, ``recommend_indices``, ``seen_``, the id maps): no model class is
special-cased. Every built-in model scores a history given at request time (fold-in
models and sequence models, the LM ranker and pipeline included); a plugin model that
cannot falls back to item co-occurrence (cosine similarity of the item columns of the
training matrix ``seen_``). Explanations are the library's
(:meth:`Recommender.explain <lmrec.models.base.Recommender.explain>`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lmrec.errors import ConfigError
from lmrec.models.base import Recommender, history_matrix
from lmrec.models.capabilities import FoldInModel, SequenceModel, supports
from lmrec.ops.topk import topk

__all__ = ["Cooccurrence", "history_matrix", "score_history", "supports_fold_in", "top_from_scores"]


def score_history(model: Recommender, history: sp.csr_matrix) -> np.ndarray:
    """Scores (float32, (n, n_items)) of users described by history rows (fold-in).

    Each row's items go through :meth:`Recommender.score_histories
    <lmrec.models.base.Recommender.score_histories>` (in index order; callers that know
    the order use that method directly); raises :class:`~lmrec.errors.ConfigError` for
    models that score no history given at request time.
    """
    if not supports_fold_in(model):
        raise ConfigError(f"Model {model.name!r} cannot fold in a history given at request time.")
    rows = [
        history.indices[history.indptr[i] : history.indptr[i + 1]] for i in range(history.shape[0])
    ]
    return model.score_histories(rows)


def supports_fold_in(model: Recommender) -> bool:
    """Whether ``model`` declares it can score a history given at request time
    (:class:`~lmrec.models.capabilities.FoldInModel` or, order kept,
    :class:`~lmrec.models.capabilities.SequenceModel`)."""
    return supports(model, FoldInModel) or supports(model, SequenceModel)


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
