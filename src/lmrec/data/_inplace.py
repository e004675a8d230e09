"""Array helpers for data that does not fit twice in memory (used by :mod:`lmrec.data.ingest`).

Each works in place or in blocks of a million rows, so that ingesting 100M interactions
costs about one int64 per row at the peak.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["_Column", "_group_starts", "_items_in_place", "_sort_in_place"]


class _Column:
    """A growable 1-D array: chunks are appended in place, growth is a ``realloc``.

    Large numpy buffers are ``mmap``-ed, and glibc grows them with ``mremap``, which
    moves pages instead of copying them; so collecting N rows costs N rows of memory
    (a list of chunks concatenated at the end would cost 2N at the peak). numpy
    zero-fills grown space, so the buffer grows by 1/4 at a time; with ``capacity``
    (the Parquet row count, known from the file footers) it never grows.
    """

    def __init__(self, dtype: Any, capacity: int = 0) -> None:
        self.buf = np.empty(max(capacity, 1 << 16), dtype)
        self.n = 0

    def append(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.buf):
            self.buf.resize(max(need, len(self.buf) * 5 // 4), refcheck=False)
        self.buf[self.n : need] = values
        self.n = need

    def take(self) -> np.ndarray:
        """The filled part as one array (the buffer shrinks to it; the column is spent)."""
        buf, self.buf = self.buf, np.empty(0, self.buf.dtype)
        buf.resize(self.n, refcheck=False)
        return buf


def _sort_in_place(key: np.ndarray, min_parallel: int = 1 << 22) -> None:
    """Sort ``key`` in place, on all cores for arrays of ``min_parallel`` values or more.

    An O(N) partition (``ndarray.partition``) cuts the array into one piece per
    thread, every value of a piece below every value of the next; the pieces are then
    sorted by parallel threads (numpy sorts without the GIL). No extra memory.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    n, threads = len(key), min(os.cpu_count() or 1, 8)
    if threads < 2 or n < max(min_parallel, threads):
        key.sort()
        return
    cuts = [n * j // threads for j in range(1, threads)]
    key.partition(cuts)
    edges = [0, *cuts, n]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda lo, hi: key[lo:hi].sort(), edges[:-1], edges[1:]))


def _group_starts(key: np.ndarray) -> np.ndarray | None:
    """Start positions of runs of equal values in sorted ``key``; None if all differ.

    The common case (no repeated pair) is detected block by block, without a
    per-row temporary.
    """
    step = 1 << 20
    for lo in range(0, len(key), step):
        block = key[max(lo - 1, 0) : lo + step]
        if (block[1:] == block[:-1]).any():
            break
    else:
        return None
    return np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))


def _items_in_place(key: np.ndarray, n_items: int) -> np.ndarray:
    """``key % n_items`` as int32, written over ``key``'s own memory, which then shrinks.

    Block ``[lo, hi)`` is read into a temporary before its int32 results are written
    to bytes ``4*lo .. 4*hi``, which only overlap keys below ``hi`` (already read),
    so no key is overwritten before use. The buffer is then reallocated to half its
    size (``ndarray.resize``, a shrinking ``realloc``), so the item column costs no
    memory beyond the keys it replaces. ``key`` must not be used afterwards.
    """
    n = len(key)
    if not key.flags.owndata or not key.flags.c_contiguous:
        return (key % n_items).astype(np.int32)
    out = key.view(np.int32)
    step, block = 1 << 20, None
    for lo in range(0, n, step):
        block = key[lo : lo + step] % n_items
        out[lo : lo + len(block)] = block
    del block
    del out
    key.resize((n + 1) // 2, refcheck=False)
    return key.view(np.int32)[:n]
