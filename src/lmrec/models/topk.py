"""Top-k selection over score matrices, with exclusion masks, in blocks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def mask_rows(scores: np.ndarray, rows: sp.csr_matrix) -> None:
    """Set ``scores[i, j] = -inf`` in place wherever ``rows[i, j]`` is stored."""
    if rows.nnz == 0:
        return
    counts = np.diff(rows.indptr)
    r = np.repeat(np.arange(rows.shape[0]), counts)
    scores[r, rows.indices] = -np.inf


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns per row, best first.

    Selected items with equal scores are ordered by item index; which of several items
    tied at the k-th place is kept is deterministic but unspecified.
    Entries scored ``-inf`` (excluded) are never returned: such slots hold item -1
    and score ``-inf``.

    Returns
    -------
    items : int64 array (n_rows, k)
    values : float32 array (n_rows, k)
    """
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    if kk < m:
        part = np.argpartition(scores, m - kk, axis=1)[:, m - kk :]
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    items[~np.isfinite(vals) & (vals < 0)] = -1
    if kk < k:
        items = np.pad(items, ((0, 0), (0, k - kk)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return items, vals
