"""Compact storage of embeddings (float16, int8 with a per-vector scale) and its cost.

``int8`` stores each vector ``x`` as ``q = round(x / s)`` with ``s = max|x| / 127`` (one
float32 scale per vector), so ``q`` uses the whole range [-127, 127] whatever the
vector's norm and the worst-case error per component is ``s / 2``. ``float16`` is a
plain cast. Both are judged by :func:`neighbour_overlap`, the share of each item's
top-k cosine neighbours that survive the round trip.

Memory per vector of dimension ``d``: ``4d`` bytes (float32), ``2d`` (float16),
``d + 4`` (int8 plus its scale); for all-MiniLM-L6-v2 (``d = 384``) that is 1,536,
768 and 388 bytes.

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from lmrec.errors import ConfigError

__all__ = [
    "PRECISIONS",
    "Precision",
    "dequantize",
    "neighbour_overlap",
    "quantize",
    "stored_nbytes",
]

Precision = Literal["float32", "float16", "int8"]
PRECISIONS: tuple[str, ...] = ("float32", "float16", "int8")


def _check_matrix(emb: object, name: str = "emb") -> np.ndarray:
    arr = np.asarray(emb)
    if arr.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D array (n, d). Got shape {arr.shape} instead.")
    return arr


def quantize(emb: np.ndarray, precision: Precision) -> tuple[np.ndarray, np.ndarray | None]:
    """Store embeddings ``emb`` (n, d) in ``precision``; returns ``(values, scale)``.

    ``scale`` is a float32 array (n,) for ``int8`` and ``None`` otherwise.

    Examples
    --------
    >>> x = np.array([[0.5, -1.0, 0.25]], dtype=np.float32)
    >>> q, s = quantize(x, "int8")
    >>> q.tolist(), round(float(s[0]), 5)
    ([[64, -127, 32]], 0.00787)
    >>> bool(np.abs(dequantize(q, s) - x).max() <= s[0] / 2)
    True
    """
    arr = _check_matrix(emb).astype(np.float32, copy=False)
    if precision == "float32":
        return np.array(arr, dtype=np.float32, copy=True), None
    if precision == "float16":
        return arr.astype(np.float16), None
    if precision == "int8":
        peak = np.abs(arr).max(axis=1) if arr.shape[1] else np.zeros(len(arr), np.float32)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.rint(arr / scale[:, None]), -127, 127).astype(np.int8)
        return q, scale
    raise ConfigError(
        f"The 'precision' parameter must be one of {', '.join(PRECISIONS)}. "
        f"Got {precision!r} instead."
    )


def dequantize(values: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Float32 embeddings back from :func:`quantize` output (the dtype says the precision)."""
    arr = _check_matrix(values, "values")
    if arr.dtype == np.int8:
        if scale is None:
            raise ConfigError("int8 embeddings need their per-vector scale to be dequantized.")
        scale = np.asarray(scale, dtype=np.float32).reshape(-1)
        if len(scale) != len(arr):
            raise ConfigError(f"Got {len(scale)} scales for {len(arr)} int8 vectors.")
        return arr.astype(np.float32) * scale[:, None]
    return arr.astype(np.float32, copy=True)


def stored_nbytes(values: np.ndarray, scale: np.ndarray | None = None) -> int:
    """Bytes of the stored arrays (values plus scales)."""
    return int(values.nbytes + (0 if scale is None else np.asarray(scale).nbytes))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _topk_neighbours(x: np.ndarray, k: int, block: int) -> np.ndarray:
    """Indices of each row's ``k`` highest-cosine other rows (self excluded), unordered."""
    n = len(x)
    out = np.empty((n, k), np.int64)
    for start in range(0, n, block):
        sims = x[start : start + block] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        out[start : start + block] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def neighbour_overlap(
    reference: np.ndarray, other: np.ndarray, k: int = 20, *, block: int = 2048
) -> float:
    """Mean share of top-``k`` cosine neighbours that ``other`` keeps from ``reference``.

    For every row ``i``, ``N_ref(i)`` and ``N_other(i)`` are the ``k`` rows most
    cosine-similar to ``i`` (excluding ``i`` itself) under each matrix; the result is
    ``mean_i |N_ref(i) & N_other(i)| / k``, in [0, 1]. 1.0 means quantization changed
    no neighbour list. Rows are re-normalised first, so the scale of a dequantized
    matrix does not matter. Exact ties at the k-th place may be broken differently by
    the two matrices and count as misses.

    Parameters
    ----------
    reference, other : array (n, d)
        The float32 embeddings and, e.g., ``dequantize(*quantize(reference, "int8"))``.
    k : int
        Neighbours per row; must be < n.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 32)).astype(np.float32)
    >>> neighbour_overlap(x, x, k=10)
    1.0
    >>> neighbour_overlap(x, dequantize(*quantize(x, "float16")), k=10) > 0.99
    True
    """
    ref = _normalise(_check_matrix(reference, "reference"))
    oth = _normalise(_check_matrix(other, "other"))
    if ref.shape != oth.shape:
        raise ConfigError(
            f"reference and other must have the same shape; got {ref.shape} and {oth.shape}."
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < len(ref):
        raise ConfigError(
            f"The 'k' parameter of neighbour_overlap must be an int in [1, n) with n={len(ref)}. "
            f"Got {k!r} instead."
        )
    a = np.sort(_topk_neighbours(ref, int(k), block), axis=1)
    b = np.sort(_topk_neighbours(oth, int(k), block), axis=1)
    hits = sum(len(np.intersect1d(x, y, assume_unique=True)) for x, y in zip(a, b, strict=True))
    return float(hits / (len(ref) * k))
