"""Memory-lean factor storage: float16 or int8 (per-vector scale) factors that score directly.

Built on :mod:`lmrec.text.quantize` (same formats: ``int8`` stores ``q = round(x / s)``
with ``s = max|x| / 127`` per vector). Scoring dequantizes one block of items at a time,
so the float32 copy of the whole factor matrix never exists.

Memory per vector of dimension ``d``: ``4d`` bytes (float32), ``2d`` (float16),
``d + 4`` (int8 plus its scale). For ALS on MovieLens-100K the ranking quality barely
moves (``benchmarks/lean.py``, ``benchmarks/results/lean.md``).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmrec.text.quantize import Precision, dequantize, quantize, stored_nbytes

__all__ = ["LeanFactors"]

_BLOCK = 1 << 16


@dataclass(frozen=True)
class LeanFactors:
    """A factor matrix stored in ``precision`` (read-only arrays).

    Attributes
    ----------
    values : ndarray (n, d)
        float32, float16 or int8 values.
    scale : ndarray (n,) or None
        float32 per-vector scales (int8 only).

    Examples
    --------
    >>> x = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    >>> lean = LeanFactors.from_array(x, "int8")
    >>> lean.nbytes, bool(np.abs(lean.to_float32() - x).max() <= 2.0 / 254)
    (12, True)
    >>> np.round(lean.dot(np.array([[1.0, 1.0]], np.float32)), 2).tolist()
    [[-0.5, 2.25]]
    """

    values: np.ndarray
    scale: np.ndarray | None = None

    @classmethod
    def from_array(cls, factors: np.ndarray, precision: Precision) -> LeanFactors:
        """Quantize ``factors`` (n, d) to ``precision`` ("float32", "float16" or "int8")."""
        values, scale = quantize(factors, precision)
        values.flags.writeable = False
        if scale is not None:
            scale.flags.writeable = False
        return cls(values, scale)

    @property
    def precision(self) -> str:
        """The storage precision."""
        return str(self.values.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays."""
        return stored_nbytes(self.values, self.scale)

    def to_float32(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Dequantized float32 factors of ``rows`` (all by default)."""
        scale = None if self.scale is None else self.scale[rows]
        return dequantize(self.values[rows], scale)

    def dot(self, queries: np.ndarray) -> np.ndarray:
        """Scores ``queries @ factors.T`` (float32, (n_queries, n)), one item block at a time."""
        q = np.asarray(queries, dtype=np.float32)
        out = np.empty((len(q), len(self.values)), np.float32)
        for lo in range(0, len(self.values), _BLOCK):
            block = slice(lo, lo + _BLOCK)
            out[:, block] = q @ self.to_float32(block).T
        return out
