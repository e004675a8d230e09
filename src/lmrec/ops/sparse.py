"""Small sparse-matrix constructors shared across layers."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["empty_csr"]


def empty_csr(n_rows: int, n_cols: int) -> sp.csr_matrix:
    """An all-zero float32 CSR matrix of shape ``(n_rows, n_cols)`` with no stored entries.

    The same matrix as ``sp.csr_matrix((n_rows, n_cols), dtype=np.float32)``, built from
    its (empty) arrays, which the type stubs accept for a float32 result.

    >>> m = empty_csr(2, 3)
    >>> m.shape, m.nnz, m.dtype
    ((2, 3), 0, dtype('float32'))
    """
    return sp.csr_matrix(
        (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(n_rows + 1, np.int32)),
        shape=(n_rows, n_cols),
    )
