"""implicit's conjugate-gradient ALS half-step, compiled by numba with a per-row buffer.

implicit's CG solver (Takács et al. 2011) solves one row at a time: for a user it
walks the user's items and reads each item's factor vector, once for the residual
and once per CG step, through one BLAS call per stored pair. When the fixed side's
table is far larger than the CPU cache -- 2M users (512 MB of factors) at 100M
interactions -- every one of those reads is a cache miss, for every CG step, and
the half-step grew faster than the data (``benchmarks/results/scaling.md``).

:func:`solve_rows` runs the *same* iteration -- start from the current factors,
``cg_steps`` steps, rows without interactions set to zero, a row stops when its
squared residual falls below ``1e-20`` -- but first gathers the row's fixed factor
vectors into a per-thread buffer, with independent loads that the CPU overlaps, so
the residual and the CG steps read them sequentially from there. Only the order of
float32 sums differs from implicit (tested). Each row is solved by one thread, so
results do not depend on the number of threads.

The kernel is compiled by numba (the ``fast`` extra) on first use and cached on
disk. The buffer holds the longest row, up to 256 MiB per thread (longer rows read
the table directly).

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec import _threads
from lmrec._optional import require

__all__ = ["available", "solve_rows"]

# Per-thread buffer of a row's fixed factor vectors; rows with more vectors than fit
# read the table on every CG step (at 64 factors: rows of over a million pairs).
_BUFFER_BYTES = 256 << 20
# The cost of one row's CG besides its stored pairs, in stored pairs (four products
# with the k x k Gram matrix), to balance the threads' work.
_ROW_WORK = 32
#: Row blocks per thread (scheduled dynamically).
_BLOCKS_PER_THREAD = 4


def available() -> bool:
    """Whether numba (the ``fast`` extra) is installed, so :func:`solve_rows` can run.

    Checked without importing it (numba's import costs about 100 MiB of memory).
    """
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def _kernel() -> Any:
    """The compiled CG kernel (numba compiles it on first use and caches it on disk)."""
    require("numba", "fast")
    from lmrec.models import _als_cg_kernel

    return _als_cg_kernel


def solve_rows(
    confidence: sp.csr_matrix,
    factors: np.ndarray,
    other: np.ndarray,
    regularization: float,
    *,
    cg_steps: int = 3,
    num_threads: int = 0,
) -> None:
    """Update ``factors`` (the rows' side) in place by ``cg_steps`` CG steps per row.

    The half-step of implicit's ``least_squares_cg`` (same arguments, same result up
    to float32 rounding), 2-3.5x faster on 1M-100M interactions
    (``benchmarks/results/scaling.md``).

    Parameters
    ----------
    confidence : csr_matrix, float32 (n_rows, n_other)
        Confidences ``c > 0`` of the stored pairs, major along the solved side.
    factors : ndarray, float32 (n_rows, k), C-contiguous
        The factors to solve, also the CG's starting point; overwritten.
    other : ndarray, float32 (n_other, k)
        The fixed factors.
    regularization : float
        The L2 penalty ``lambda``.
    cg_steps : int, default 3
        CG steps per row, as implicit's ``cg_steps``.
    num_threads : int, default 0
        Threads (0: :func:`lmrec._threads.num_threads`). The result does not depend on it.
    """
    kernel = _kernel()
    numba = kernel.numba
    n_rows, n_other = confidence.shape
    if (
        factors.shape[0] != n_rows
        or other.shape[0] != n_other
        or factors.shape[1] != other.shape[1]
    ):
        raise ValueError(
            f"shapes disagree: confidence {confidence.shape}, factors {factors.shape}, "
            f"other {other.shape}"
        )
    if not (factors.flags.c_contiguous and factors.dtype == np.float32):
        raise ValueError("factors must be a C-contiguous float32 array (it is updated in place)")
    available_threads = numba.config.NUMBA_NUM_THREADS
    wanted = num_threads or _threads.num_threads()
    threads = max(1, min(wanted, available_threads, n_rows))
    other = np.ascontiguousarray(other, np.float32)
    k = other.shape[1]
    gram = other.T @ other + np.float32(regularization) * np.eye(k, dtype=np.float32)
    # Blocks of consecutive rows with about equal work, _BLOCKS_PER_THREAD per thread,
    # handed out one at a time: a thread that shares its core with another process takes
    # fewer blocks instead of holding the others up (issue 18.1).
    indptr = confidence.indptr
    work = indptr + _ROW_WORK * np.arange(n_rows + 1, dtype=np.int64)
    parts = min(n_rows, threads * _BLOCKS_PER_THREAD) if threads > 1 else 1
    bounds = np.searchsorted(work, np.linspace(0, work[-1], parts + 1)).astype(np.int64)
    bounds[0], bounds[-1] = 0, n_rows
    buffered = min(int(np.diff(indptr).max(initial=0)), _BUFFER_BYTES // (4 * k))
    data = confidence.data.astype(np.float32, copy=False)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with numba.parallel_chunksize(1):  # dynamic scheduling of the blocks
            kernel.rows_cg(
                indptr, confidence.indices, data, factors, other, gram, cg_steps, bounds, buffered
            )
    finally:
        numba.set_num_threads(previous)
