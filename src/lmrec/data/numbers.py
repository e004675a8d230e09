"""Numeric columns (weights, ratings, epoch timestamps) from Arrow arrays, checked.

Part of the readers' one validation step (:func:`lmrec.data.rows.check_rows`): values
come back as float64 with an :class:`~lmrec.data.validate.Issue` per problem --
missing, not a number, NaN, infinite, negative (weights), or beyond float32, the
type weights and ratings are stored in (an error, or clipped and counted with
``on_overflow="clip"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.columns import _apply_lut, _chunks
from lmrec.data.validate import Issue, show
from lmrec.data.vocabulary import fix

__all__ = ["Numbers", "parse_numbers"]

_F32 = np.finfo(np.float32)


@dataclass
class Numbers:
    """A numeric column as float64, its row issues, and facts for the report.

    ``integral``: every value was written as an integer (so ``lmrec split`` writes
    integers back); ``n_clipped``: values clipped into float32 (``on_overflow="clip"``).
    """

    values: np.ndarray
    issues: list[Issue]
    integral: bool
    n_clipped: int = 0


def _as_float(arr: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(float64 values, missing mask, not-a-number mask, integral) of any Arrow column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = arr.type
    if pa.types.is_dictionary(typ):
        arr = (
            arr.cast(typ.value_type) if isinstance(arr, pa.Array) else pc.cast(arr, typ.value_type)
        )
        typ = arr.type
    n = len(arr)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        missing = (
            ~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)
            if arr.null_count
            else np.zeros(n, bool)
        )
        num = np.asarray(pc.cast(arr, pa.float64()).fill_null(np.nan).to_numpy(), np.float64).copy()
        return num, missing, np.zeros(n, bool), pa.types.is_integer(typ)
    if pa.types.is_boolean(typ) or pa.types.is_null(typ):
        missing = ~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)
        num = np.asarray(pc.cast(arr, pa.float64()).fill_null(np.nan).to_numpy(), np.float64).copy()
        return num, missing, np.zeros(n, bool), True
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        arr = pc.cast(arr, pa.string())
    if arr.null_count == 0:
        try:
            ints = pc.cast(arr, pa.int64())
            return (
                np.asarray(ints.to_numpy(), np.float64),
                np.zeros(n, bool),
                np.zeros(n, bool),
                True,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        try:
            num = np.asarray(pc.cast(arr, pa.float64()).to_numpy(), np.float64).copy()
            return num, np.zeros(n, bool), np.zeros(n, bool), False
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    # Slow path (bad or empty cells): cell by cell, on the distinct texts only.
    enc = pc.dictionary_encode(arr)
    chunks = _chunks(enc)
    texts = chunks[0].dictionary.to_pylist() if chunks else []
    stripped = pd.Series(texts, dtype=object).str.strip()
    parsed = pd.to_numeric(stripped.where(stripped != ""), errors="coerce").to_numpy(np.float64)
    empty = (stripped == "").to_numpy(bool)
    lut = np.arange(len(texts))
    idx = _apply_lut(chunks, lut)
    num = np.where(idx >= 0, parsed[np.maximum(idx, 0)] if len(parsed) else np.nan, np.nan)
    missing = (idx < 0) | (empty[np.maximum(idx, 0)] if len(empty) else True)
    nan_token = stripped.str.lower().isin(("nan", "-nan", "+nan")).to_numpy(bool)
    garbage = ~missing & np.isnan(num) & ~(nan_token[np.maximum(idx, 0)] if len(texts) else False)
    integral = bool(np.all(np.mod(num[np.isfinite(num)], 1) == 0)) and not any(
        "." in t or "e" in t.lower() for t in stripped[~empty].tolist()
    )
    return num, missing, garbage, integral


def parse_numbers(
    arr: Any,
    column: str,
    what: str,
    *,
    nonnegative: bool = False,
    float32: bool = True,
    on_overflow: str = "raise",
) -> Numbers:
    """Float64 values of a numeric column, with issues for missing, non-numeric, NaN,
    infinite and (if ``nonnegative``) negative cells.

    With ``float32`` (weights and ratings are stored as float32) a finite value that
    float32 cannot hold -- beyond +-3.4e38, or so small it would round to 0 -- is an
    issue too, unless ``on_overflow="clip"``, which clips it to the nearest float32
    value and counts it.
    """
    num, missing, garbage, integral = _as_float(arr)
    if not missing.any() and not garbage.any() and _all_fit(num, nonnegative, float32):
        return Numbers(num, [], integral)  # the common case, checked by reductions alone
    cells = _Texts(arr, num)
    nan = ~missing & ~garbage & np.isnan(num)
    infinite = np.isinf(num)
    issues = [
        Issue(column, missing, lambda i: f"the {what} is missing"),
        Issue(column, garbage, lambda i: f"{cells.show(i)} is not a number", "not a number"),
        Issue(column, nan, lambda i: f"the {what} is NaN"),
        Issue(column, infinite, lambda i: f"the {what} {cells.show(i)} is infinite"),
    ]
    if nonnegative:
        issues.append(
            Issue(
                column,
                num < 0,
                lambda i: f"the {what} {cells.show(i)} is negative; {what}s must be >= 0",
            )
        )
    n_clipped = 0
    if float32:
        with np.errstate(invalid="ignore", over="ignore"):
            mag = np.abs(num)
            too_big = np.isfinite(num) & (mag > _F32.max)
            too_small = (mag > 0) & (mag < float(_F32.smallest_subnormal) / 2)
        unfit = too_big | too_small
        if unfit.any() and on_overflow == "clip":
            n_clipped = int(unfit.sum())
            num[too_big] = np.sign(num[too_big]) * float(_F32.max)
            num[too_small] = np.sign(num[too_small]) * float(_F32.tiny)
        elif unfit.any():
            hint = f"pass {fix('on_overflow', 'clip')} to clip such values into float32"
            issues.append(
                Issue(
                    column,
                    unfit,
                    lambda i: (
                        f"the {what} {cells.show(i)} does not fit float32, the type {what}s are stored in "
                        f"(magnitudes {float(_F32.smallest_subnormal):.1e} to {float(_F32.max):.2e}); "
                        f"rescale the column or {hint}"
                    ),
                )
            )
    return Numbers(num, issues, integral, n_clipped)


def _all_fit(num: np.ndarray, nonnegative: bool, float32: bool) -> bool:
    """Whether every value is finite (>= 0, within float32), from min/max reductions.

    Tiny magnitudes that float32 would round to 0 need a look at each value: only when
    the smallest magnitude could be one.
    """
    if len(num) == 0:
        return True
    lo, hi = float(num.min()), float(num.max())  # NaN propagates: not finite
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return False
    if nonnegative and lo < 0:
        return False
    if not float32:
        return True
    if max(-lo, hi) > float(_F32.max):
        return False
    tiny = float(_F32.smallest_subnormal) / 2
    if lo >= tiny or hi <= -tiny:  # no value can be a nonzero magnitude below tiny
        return True
    return not bool(((num != 0) & (np.abs(num) < tiny)).any())


class _Texts:
    """A column's cells as text, for messages only (read one at a time)."""

    def __init__(self, arr: Any, num: np.ndarray) -> None:
        self._arr, self._num = arr, num

    def show(self, i: int) -> str:
        import pyarrow as pa

        value = self._arr[i]
        value = value.as_py() if isinstance(value, pa.Scalar) else value
        if isinstance(value, str):
            return show(value.strip())
        return show(repr(float(self._num[i])) if value is None else value)
