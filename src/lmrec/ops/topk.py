"""Top-k selection over score matrices, with exclusion masks, in blocks."""

from __future__ import annotations

import threading

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
    """The ``k`` best columns per row, best first, ties broken by the smaller item index.

    The order is total (score descending, then item index ascending), so the result is
    deterministic and the top-``k`` list is always a prefix of the top-``(k + m)`` list:
    a metric at ``k`` does not depend on which other cut-offs were asked for.
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
        part = _lowest_index_ties(scores, part)
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


def _lowest_index_ties(scores: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Make a partition's selection keep the lowest-index items among those tied at its edge.

    ``argpartition`` keeps an arbitrary subset of the items whose score equals the
    k-th largest one. For the (usually few) rows where more items share that score
    than were kept, the selection is rebuilt as every item scored above it plus the
    lowest-index items scored exactly at it.
    """
    edge = np.take_along_axis(scores, part, axis=1).min(axis=1)
    kept_at_edge = (np.take_along_axis(scores, part, axis=1) == edge[:, None]).sum(axis=1)
    total_at_edge = (scores == edge[:, None]).sum(axis=1)
    rows = np.flatnonzero(total_at_edge > kept_at_edge)
    if len(rows) == 0:
        return part
    part = part.copy()
    kk = part.shape[1]
    for r in rows:
        row, v = scores[r], edge[r]
        above = np.flatnonzero(row > v)
        tied = np.flatnonzero(row == v)[: kk - len(above)]
        part[r] = np.concatenate([above, tied])
    return part


_CHUNK = 32  # columns per chunk of the chunk-max pre-selection in dot_topk
_BLOCK_CELLS = 1 << 25  # scores per block of dot_topk (128 MiB of float32)


def n_cores() -> int:
    """Threads for :func:`dot_topk` by default: :func:`lmrec._threads.num_threads` (the
    CPUs this process may use, by affinity and cgroup quota, or ``LMREC_NUM_THREADS``)."""
    from lmrec._threads import num_threads

    return num_threads()


def select_topk(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk` of a score block, reading each score about once instead of partitioning rows.

    The columns are split into ``n_chunks`` interleaved chunks of 32 (chunk ``g`` holds
    columns ``g, g + n_chunks, ...``), so the chunk maxima are one vectorised
    reduction over contiguous rows. The ``k`` chunks with the largest maxima hold every
    score above the ``k``-th largest maximum, and at least ``k`` scores at or above it,
    so the exact top ``k`` lies among their ``32 k`` scores (plus the tail columns),
    which :func:`topk` then ranks; rows whose k-th score ties the k-th largest chunk
    maximum are ranked by :func:`topk` over the whole row. Same result and conventions
    as :func:`topk`, ties included. Scores must not be NaN.
    """
    n, m = block.shape
    n_chunks = m // _CHUNK
    if n_chunks < 4 * k or n == 0:
        return topk(block, k)
    main = block[:, : _CHUNK * n_chunks].reshape(n, _CHUNK, n_chunks)
    chunk_max = main.max(axis=1)
    best = np.argpartition(chunk_max, n_chunks - k, axis=1)[:, n_chunks - k :]
    cols = (best[:, :, None] + n_chunks * np.arange(_CHUNK)[None, None, :]).reshape(n, -1)
    if m > _CHUNK * n_chunks:
        tail = np.arange(_CHUNK * n_chunks, m)
        cols = np.hstack([cols, np.broadcast_to(tail, (n, len(tail)))])
    cols.sort(axis=1)  # candidate position order == item order, so topk's ties match
    local, vals = topk(np.take_along_axis(block, cols, axis=1), k)
    items = np.where(local >= 0, np.take_along_axis(cols, np.maximum(local, 0), axis=1), -1)
    # Unselected chunks have maxima <= the smallest selected maximum (threshold) <= the
    # k-th score. A row needs an exact re-rank only where an unselected chunk may hold an
    # item tied with the k-th score (and a lower index): its k-th score equals the
    # threshold and more chunks reach the threshold than were selected. (Comparing the
    # k-th score with the threshold alone re-ranked most rows: with distinct scores the
    # k-th score is usually the smallest selected maximum itself.)
    selected_max = np.take_along_axis(chunk_max, best, axis=1)
    threshold = selected_max.min(axis=1)
    at_threshold = (chunk_max == threshold[:, None]).sum(axis=1)
    selected_at_threshold = (selected_max == threshold[:, None]).sum(axis=1)
    kth = vals[:, -1]
    redo = np.flatnonzero(
        (kth < threshold) | ((kth == threshold) & (at_threshold > selected_at_threshold))
    )
    if len(redo):
        items[redo], vals[redo] = topk(block[redo], k)
    return items, vals


def dot_topk(
    queries: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    n_threads: int | None = None,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of ``queries @ items.T`` without holding the full score matrix.

    Queries are scored in blocks of rows (float32 BLAS products into a reused buffer of
    about 128 MiB per thread), excluded entries are set to ``-inf`` in place, and each block is reduced with
    :func:`select_topk`. With ``n_threads > 1`` blocks run in that many threads, each
    with single-threaded BLAS, so one block's selection overlaps another's product
    (numpy releases the GIL in both).

    Parameters
    ----------
    queries : float32 (n, dim)
    items : float32 (n_items, dim)
    k : int
    exclude : CSR (n, n_items), optional
        Stored entries of row ``i`` are never returned for query ``i``.
    n_threads : int, optional
        Worker threads (default: the cores this process may use).
    block_rows : int, optional
        Queries per block (default: as many as fit 2**25 scores, at most 2048).

    Returns
    -------
    items : int64 (n, k), -1 padded
    scores : float32 (n, k), best first
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    y = np.ascontiguousarray(items, dtype=np.float32)
    n, m = len(q), len(y)
    rows = block_rows or max(1, min(2048, _BLOCK_CELLS // max(m, 1)))
    out_i = np.empty((n, k), np.int64)
    out_v = np.empty((n, k), np.float32)
    yt = y.T
    local = threading.local()  # one reused score buffer per thread: no page faults per block

    def run(lo: int) -> None:
        part = q[lo : lo + rows]
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = np.empty((min(rows, n), m), np.float32)
        block = np.matmul(part, yt, out=buf[: len(part)])
        if exclude is not None:
            mask_rows(block, exclude[lo : lo + rows])
        out_i[lo : lo + rows], out_v[lo : lo + rows] = select_topk(block, k)

    starts = range(0, n, rows)
    threads = min(n_threads or n_cores(), len(starts))
    if threads <= 1:
        for lo in starts:
            run(lo)
        return out_i, out_v
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"), ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, starts))
    return out_i, out_v
