"""Exact batched ALS solves with per-row L2 penalties (ALS-WR, Spark MLlib's objective).

:class:`lmrec.models.als.ALS` with ``l2_scaling="count"`` fits

.. math::

    \\sum_{u,i} c_{ui} (p_{ui} - x_u^\\top y_i)^2
    + \\lambda \\Big(\\sum_u n_u \\lVert x_u \\rVert^2 + \\sum_i n_i \\lVert y_i \\rVert^2\\Big)

where ``n_u`` (``n_i``) is the number of stored (positive) pairs of user ``u`` (item
``i``) and ``c = 1 + alpha * r`` on stored pairs, 1 elsewhere. This is the objective
of Spark MLlib's implicit ALS (``ALS.scala`` ``computeFactors`` solves with
``numExplicits * regParam``; Zhou et al. 2008 call the scaling "weighted-lambda").
implicit's solvers take one scalar ``lambda``, so the solves are done here: for
each row, the exact normal equations

.. math:: (Y^\\top Y + Y^\\top (C_u - I) Y + \\lambda_u I)\\, x_u = Y^\\top C_u p_u

batched: per-row sums in float32 by default (factors, ``Y^T Y`` and the solves in
float64). Rows are sorted by their number of stored pairs and taken in
chunks whose padded gather ``(rows, longest row, factors)`` stays under a fixed
element budget, so memory stays bounded whatever the data size; a row too long for
the budget on its own is accumulated in slices. The batch of small systems is solved
with ``numpy.linalg.solve`` (LAPACK, one call per chunk).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

#: Most elements of one padded gather ``(rows, longest row, factors)`` (16 MiB in float32).
GATHER_BUDGET = 1 << 22
#: Most rows solved in one batch (bounds the ``(rows, factors, factors)`` systems).
MAX_BATCH = 1024


def solve_rows(
    conf: sp.csr_matrix,
    other: np.ndarray,
    penalty: np.ndarray,
    *,
    gram: np.ndarray | None = None,
    budget: int = GATHER_BUDGET,
    dtype: type = np.float64,
) -> np.ndarray:
    """Exact implicit-ALS solves of every row of ``conf`` against the fixed factors ``other``.

    Row ``u`` with stored columns ``I_u`` and confidences ``c`` gets
    ``x_u = (G + Y_I^T diag(c - 1) Y_I + penalty[u] I)^{-1} Y_I^T c`` with
    ``G = other^T other``; rows with no stored pairs get zero vectors (their
    preference vector is all zero). Used for the fit and for folding in new users.

    Parameters
    ----------
    conf : csr_matrix
        Confidences ``1 + alpha * r`` on the stored pairs (rows x len(other)).
    other : ndarray
        The fixed side's factors, (len(other), factors).
    penalty : ndarray
        The L2 penalty of each row, (rows,).
    gram : ndarray, optional
        ``other^T other`` in float64 when the caller already has it.
    budget : int
        Most elements gathered at once (memory bound, see the module docstring).
    dtype : numpy float type
        Precision of the gathered factors and of the per-row sums ``Y_I^T diag(c - 1)
        Y_I``, ``Y_I^T c`` (float32 is ~3x faster: half the memory traffic). ``G``, the
        penalty and the solve are always float64.

    Returns
    -------
    ndarray
        float64 (rows, factors).
    """
    Y64 = np.asarray(other, dtype=np.float64)
    n_other, f = Y64.shape
    G = Y64.T @ Y64 if gram is None else gram
    # The gathered copy with a zero row at the end: padded slots point there and add nothing.
    Y = np.zeros((n_other + 1, f), dtype)
    Y[:n_other] = Y64
    counts = np.diff(conf.indptr)
    out = np.zeros((conf.shape[0], f), np.float64)
    order = np.argsort(counts, kind="stable")
    order = order[counts[order] > 0]
    indices = conf.indices
    data: np.ndarray = conf.data.astype(dtype, copy=False)
    diag = np.arange(f)
    start, n = 0, len(order)
    while start < n:
        if int(counts[order[start]]) * f > budget:  # one long row at a time, in slices
            row = int(order[start])
            lo, hi = conf.indptr[row], conf.indptr[row + 1]
            A = G + penalty[row] * np.eye(f)
            b = np.zeros(f)
            step = max(1, budget // f)
            for s in range(lo, hi, step):
                Yi = np.take(Y, indices[s : min(s + step, hi)], axis=0)
                c = data[s : min(s + step, hi)]
                A += (Yi.T * (c - 1)) @ Yi
                b += Yi.T @ c
            out[row] = np.linalg.solve(A, b)
            start += 1
            continue
        # Rows ascend by count, so the padded gather of the next s rows is s * (count of
        # the s-th) * f: take the most rows that keep it within the budget (at least one).
        window = counts[order[start : start + MAX_BATCH]]
        fits = np.arange(1, len(window) + 1) * window * f <= budget
        size = len(window) if fits.all() else int(np.argmin(fits))
        rows = order[start : start + size]
        longest = int(counts[rows[-1]])
        n_r = counts[rows]
        cols = np.arange(longest)
        mask = cols[None, :] < n_r[:, None]
        pos = np.where(mask, conf.indptr[rows][:, None] + cols[None, :], 0)
        idx = np.where(mask, indices[pos], n_other)
        Yg = np.take(Y, idx, axis=0)  # (B, L, f)
        c = np.where(mask, data[pos], 0)
        w = c - 1
        w[~mask] = 0
        if w.size and bool((w[mask] == w[mask][0]).all()):  # one confidence (binary data)
            A = np.matmul(Yg.transpose(0, 2, 1), Yg) * w[mask][0]
        else:
            A = np.matmul((Yg * w[:, :, None]).transpose(0, 2, 1), Yg)
        b = np.matmul(c[:, None, :], Yg)[:, 0, :].astype(np.float64)
        A = A.astype(np.float64) + G
        A[:, diag, diag] += penalty[rows][:, None]
        out[rows] = np.linalg.solve(A, b[:, :, None])[:, :, 0]
        start += size
    return out


def init_factors(n: int, factors: int, rng: np.random.Generator) -> np.ndarray:
    """Spark's initial factors: Gaussian rows scaled to unit length, float64 (n, factors)."""
    Y = rng.standard_normal((n, factors))
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    return Y / np.where(norms > 0, norms, 1.0)


def objective(conf: sp.csr_matrix, X: np.ndarray, Y: np.ndarray, regularization: float) -> float:
    """The ALS-WR loss of factors ``X``, ``Y`` (see the module docstring); for tests and logs.

    The sum over all (user, item) cells uses ``sum((X^T X) * (Y^T Y))`` plus a correction
    on the stored pairs, so it costs O((users + items) f^2 + nnz f), not users x items.
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    coo = conf.tocoo()
    total = float(np.sum((X.T @ X) * (Y.T @ Y)))
    for lo in range(0, coo.nnz, 1 << 20):
        r, c = coo.row[lo : lo + (1 << 20)], coo.col[lo : lo + (1 << 20)]
        s = np.einsum("ij,ij->i", X[r], Y[c])
        w = coo.data[lo : lo + (1 << 20)].astype(np.float64)
        total += float(np.sum(w * (1.0 - s) ** 2 - s**2))
    n_u = np.diff(conf.indptr)
    n_i = np.bincount(conf.indices, minlength=conf.shape[1])
    total += regularization * float(n_u @ np.sum(X**2, 1) + n_i @ np.sum(Y**2, 1))
    return total


def fit_als_wr(
    conf: sp.csr_matrix,
    *,
    factors: int,
    regularization: float,
    iterations: int,
    seed: int,
    dtype: type = np.float32,
    callback: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS-WR on the confidence matrix ``conf`` (users x items); float64 ``(X, Y)``.

    Item factors start as :func:`init_factors` drawn from ``seed``; each iteration solves
    all users, then all items, exactly, with penalties ``regularization * n``. Every
    half-step minimises the objective over one side exactly, so the objective never
    increases (up to rounding: ``dtype`` is the precision of the per-row sums, see
    :func:`solve_rows`; the factors are kept in float64). ``callback(iteration, X, Y)``
    runs after each iteration (1-based).
    """
    conf = sp.csr_matrix(conf)
    conf_t = conf.T.tocsr()
    rng = np.random.default_rng(seed)
    Y = init_factors(conf.shape[1], factors, rng)
    X = np.zeros((conf.shape[0], factors))
    pen_u = regularization * np.diff(conf.indptr).astype(np.float64)
    pen_i = regularization * np.diff(conf_t.indptr).astype(np.float64)
    for it in range(1, iterations + 1):
        X = solve_rows(conf, Y, pen_u, dtype=dtype)
        Y = solve_rows(conf_t, X, pen_i, dtype=dtype)
        if callback is not None:
            callback(it, X, Y)
    return X, Y
