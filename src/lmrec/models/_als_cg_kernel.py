"""The numba kernel of :mod:`lmrec.models.als_cg`; importing this module imports numba.

Kept at module level, apart from :mod:`lmrec.models.als_cg`, so that ``import lmrec``
does not load numba and numba's on-disk cache finds the compiled kernel again in
the next process (functions defined inside another function were compiled anew
every time).
"""

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

ONE = np.float32(1.0)
# How many stored pairs ahead the gather prefetches (measured at 10M and 100M
# interactions: 32 beat 8, 16 and 64).
PREFETCH_AHEAD = 32


@intrinsic
def prefetch_row(typingctx, table, row):  # noqa: ANN001, ARG001
    """Ask the CPU to start loading the first 256 bytes of ``table[row]`` into cache.

    256 bytes are 64 float32 factors; prefetches never fault, so a shorter row only
    prefetches some of the next row too.
    """

    def codegen(context, builder, signature, args):  # noqa: ANN001, ARG001
        array_type, row_type = signature.args
        array = context.make_array(array_type)(context, builder, args[0])
        index = context.cast(builder, args[1], row_type, types.intp)
        zero = context.get_constant(types.intp, 0)
        start = cgutils.get_item_pointer(
            context, builder, array_type, array, [index, zero], wraparound=False
        )
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
            "llvm.prefetch.p0i8",
        )
        first = builder.bitcast(start, byte_ptr)
        for line in range(4):  # read, keep in all cache levels, data cache
            offset = ir.Constant(ir.IntType(64), 64 * line)
            builder.call(prefetch, [builder.gep(first, [offset]), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(table, row), codegen


@numba.njit(fastmath=True, cache=True, nogil=True, inline="always")
def symv(gram, v, sign, dst):  # noqa: ANN001
    # dst = sign * gram @ v
    k = v.shape[0]
    for g in range(k):
        s = np.float32(0.0)
        for f in range(k):
            s += gram[g, f] * v[f]
        dst[g] = sign * s


@numba.njit(fastmath=True, cache=True, nogil=True, inline="always")
def dot(a, b):  # noqa: ANN001
    # Every sum of the kernel goes through here, out of loops that also store: LLVM
    # guards a vectorised loop with stores by a check on the distance between the
    # arrays and falls back to scalar code (another order of sums) when small arrays
    # happen to lie close together, which made results depend on where the heap put them.
    s = np.float32(0.0)
    for f in range(a.shape[0]):
        s += a[f] * b[f]
    return s


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def rows_cg(indptr, indices, conf, x, y, gram, cg_steps, bounds, buffered):  # noqa: ANN001
    # x[u] takes cg_steps CG steps on (gram + Y^T (C_u - I) Y) x = Y^T C_u p_u,
    # block t (one thread at a time) solving rows bounds[t]:bounds[t + 1].
    k = x.shape[1]
    for t in numba.prange(len(bounds) - 1):
        buf = np.empty((buffered, k), np.float32)
        r = np.empty(k, np.float32)
        p = np.empty(k, np.float32)
        ap = np.empty(k, np.float32)
        last = indptr[bounds[t + 1]]  # the thread's stored pairs end here
        for u in range(bounds[t], bounds[t + 1]):
            lo, hi = indptr[u], indptr[u + 1]
            xu = x[u]
            if lo == hi:
                xu[:] = 0  # no interactions: implicit sets the row to zero
                continue
            keep = hi - lo <= buffered
            if keep:
                for j in range(lo, hi):
                    if j + PREFETCH_AHEAD < last:
                        prefetch_row(y, indices[j + PREFETCH_AHEAD])
                    buf[j - lo, :] = y[indices[j]]
            # r = C_u p_u - (gram + Y^T (C_u - I) Y) x, summed over the stored pairs
            symv(gram, xu, np.float32(-1.0), r)
            for j in range(lo, hi):
                yi = buf[j - lo] if keep else y[indices[j]]
                c = conf[j]
                coef = c - (c - ONE) * dot(yi, xu)
                for f in range(k):
                    r[f] += coef * yi[f]
            p[:] = r
            rs = dot(r, r)
            if rs < 1e-20:
                continue
            for _ in range(cg_steps):
                symv(gram, p, ONE, ap)
                for j in range(lo, hi):
                    yi = buf[j - lo] if keep else y[indices[j]]
                    coef = (conf[j] - ONE) * dot(yi, p)
                    for f in range(k):
                        ap[f] += coef * yi[f]
                alpha = rs / dot(p, ap)
                for f in range(k):
                    xu[f] += alpha * p[f]
                    r[f] -= alpha * ap[f]
                rsnew = dot(r, r)
                if rsnew < 1e-20:
                    break
                beta = rsnew / rs
                for f in range(k):
                    p[f] = r[f] + beta * p[f]
                rs = rsnew
