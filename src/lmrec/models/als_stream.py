"""The conjugate-gradient ALS half-step for the *smaller* side, streaming the larger one.

implicit's CG solver (Takács et al. 2011) solves one row at a time: for an item it
walks the item's users and reads each user's factor vector, 3-4 times (the residual
and every CG step). When users outnumber items many times over -- 2M users and 160k
items at 100M interactions -- those reads land all over a user table far larger
than the CPU cache, and the item half-step became the part of ALS that grew faster
than the data (``benchmarks/results/scaling.md``).

:func:`solve_streaming` runs the *same* CG iteration for all items at once
("lockstep"): every sparse pass walks the user-major matrix in order, so each user
vector is read once per pass, sequentially, and the random accesses go to the
item-sized arrays instead (the search direction and a per-thread accumulator). With
items numbered by descending popularity (:func:`popularity_order`) the hot ones sit
together and stay cached. Per row the arithmetic is implicit's: start from the
current factors, ``cg_steps`` steps, rows without interactions set to zero, a row
stops when its squared residual falls below ``1e-20``. Only the summation order
differs, so results agree with implicit's to float32 rounding (tested).

The kernels are compiled by numba (the ``fast`` extra) on first use and cached on
disk. Each thread owns a contiguous block of users, split by interaction count, and
its own accumulator, so results are bitwise reproducible for a given thread count;
that accumulator costs ``threads * rows * factors`` floats, which is why
:class:`~lmrec.models.als.ALS` uses this solver only when the solved side is the
small one.

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec._optional import require

__all__ = ["available", "popularity_order", "solve_streaming"]


def available() -> bool:
    """Whether numba (the ``fast`` extra) is installed, so the streaming solver can run.

    Checked without importing it (numba's import costs about 100 MiB of memory).
    """
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def popularity_order(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Columns by descending number of stored entries (ties by index), and each column's rank.

    Returns ``(order, rank)``: ``order[r]`` is the column at rank ``r`` and ``rank[c]``
    the rank of column ``c``, both int32.
    """
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    order = np.argsort(-counts, kind="stable").astype(np.int32)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return order, rank


@functools.cache
def _kernels() -> Any:
    """Compile (or load from numba's cache) the three kernels; numba is imported only here."""
    numba = require("numba", "fast")
    jit = numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    one = np.float32(1.0)

    @jit
    def sparse_pass(indptr, indices, conf, other, v, bounds, first, active, out):  # noqa: ANN001
        # out[t, i] += sum over the stored (u, i) of thread t's users of coef * other[u], where
        # coef = c - (c - 1) * other[u].v[i] on the first pass (the residual's sparse part)
        # and (c - 1) * other[u].v[i] on the others (the sparse part of A p).
        k = other.shape[1]
        for t in numba.prange(len(bounds) - 1):
            acc = out[t]
            for u in range(bounds[t], bounds[t + 1]):
                xu = other[u]
                for j in range(indptr[u], indptr[u + 1]):
                    i = indices[j]
                    if not active[i]:
                        continue
                    c = conf[j]
                    vi = v[i]
                    d = np.float32(0.0)
                    for f in range(k):
                        d += xu[f] * vi[f]
                    coef = c - (c - one) * d if first else (c - one) * d
                    ai = acc[i]
                    for f in range(k):
                        ai[f] += coef * xu[f]

    @numba.njit(fastmath=True, cache=True, nogil=True, inline="always")
    def dense_plus_sparse(gram, v, sign, out, i, dst):  # noqa: ANN001
        # dst = (row i of out summed over threads) + sign * gram @ v; row i of out is zeroed.
        k = v.shape[0]
        for f in range(k):
            s = np.float32(0.0)
            for t in range(out.shape[0]):
                s += out[t, i, f]
                out[t, i, f] = 0
            dst[f] = s
        for g in range(k):
            s = np.float32(0.0)
            for f in range(k):
                s += gram[g, f] * v[f]
            dst[g] += sign * s

    @jit
    def start(y, gram, out, r, p, rs, active):  # noqa: ANN001
        # r = b - A y (the sparse part summed over threads, minus gram @ y); p = r.
        n, k = y.shape
        for i in numba.prange(n):
            if not active[i]:
                y[i, :] = 0  # no interactions: implicit sets the row to zero
                continue
            ri = r[i]
            dense_plus_sparse(gram, y[i], np.float32(-1.0), out, i, ri)
            s = np.float32(0.0)
            for f in range(k):
                p[i, f] = ri[f]
                s += ri[f] * ri[f]
            rs[i] = s
            if s < 1e-20:
                active[i] = False

    @jit
    def step(y, gram, out, r, p, rs, active):  # noqa: ANN001
        # One CG step per active row, from the sparse part of A p in out.
        n, k = y.shape
        for i in numba.prange(n):
            if not active[i]:
                continue
            pi, yi, ri = p[i], y[i], r[i]
            ap = np.empty(k, np.float32)
            dense_plus_sparse(gram, pi, one, out, i, ap)
            pap = np.float32(0.0)
            for f in range(k):
                pap += pi[f] * ap[f]
            alpha = rs[i] / pap
            rsnew = np.float32(0.0)
            for f in range(k):
                yi[f] += alpha * pi[f]
                ri[f] -= alpha * ap[f]
                rsnew += ri[f] * ri[f]
            if rsnew < 1e-20:
                active[i] = False
                continue
            beta = rsnew / rs[i]
            for f in range(k):
                pi[f] = ri[f] + beta * pi[f]
            rs[i] = rsnew

    return numba, sparse_pass, start, step


def solve_streaming(
    confidence: sp.csr_matrix,
    other: np.ndarray,
    factors: np.ndarray,
    regularization: float,
    *,
    cg_steps: int = 3,
    num_threads: int = 0,
) -> None:
    """Update ``factors`` (the columns' side) in place by ``cg_steps`` CG steps, all rows at once.

    Parameters
    ----------
    confidence : csr_matrix, float32 (n_other, n_rows)
        Confidences ``c > 0`` of the stored pairs, major along the *other* side (for
        the item half-step: the user x item matrix).
    other : ndarray, float32 (n_other, k)
        The fixed factors (the users').
    factors : ndarray, float32 (n_rows, k), C-contiguous
        The factors to solve (the items'), also the CG's starting point; overwritten.
    regularization : float
        The L2 penalty ``lambda``.
    cg_steps : int, default 3
        CG steps per row, as implicit's ``cg_steps``.
    num_threads : int, default 0
        Threads (0: numba's default, all cores). Results are bitwise reproducible for
        a given number.
    """
    numba, sparse_pass, start, step = _kernels()
    n_other, n_rows = confidence.shape
    if other.shape[0] != n_other or factors.shape[0] != n_rows:
        raise ValueError(
            f"shapes disagree: confidence {confidence.shape}, other {other.shape}, "
            f"factors {factors.shape}"
        )
    if not (factors.flags.c_contiguous and factors.dtype == np.float32):
        raise ValueError("factors must be a C-contiguous float32 array (it is updated in place)")
    threads = min(num_threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS)
    threads = max(1, min(threads, n_other))
    k = other.shape[1]
    other = np.ascontiguousarray(other, np.float32)
    indptr = confidence.indptr
    # Thread blocks of consecutive rows with about equal numbers of stored pairs.
    bounds = np.searchsorted(indptr, np.linspace(0, confidence.nnz, threads + 1)).astype(np.int64)
    bounds[0], bounds[-1] = 0, n_other
    gram = other.T @ other + np.float32(regularization) * np.eye(k, dtype=np.float32)
    out = np.zeros((threads, n_rows, k), np.float32)
    active = np.bincount(confidence.indices, minlength=n_rows) > 0
    r = np.empty_like(factors)
    p = np.empty_like(factors)
    rs = np.empty(n_rows, np.float32)
    data = confidence.data.astype(np.float32, copy=False)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        sparse_pass(indptr, confidence.indices, data, other, factors, bounds, True, active, out)
        start(factors, gram, out, r, p, rs, active)
        for _ in range(cg_steps):
            if not active.any():
                break
            sparse_pass(indptr, confidence.indices, data, other, p, bounds, False, active, out)
            step(factors, gram, out, r, p, rs, active)
    finally:
        numba.set_num_threads(previous)
