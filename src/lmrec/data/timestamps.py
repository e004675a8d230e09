"""Timestamps: one format per column, decided from the whole column or given by the caller.

A timestamp column is read in exactly one way: epoch numbers in one unit (``s``,
``ms``, ``us``, ``ns``), ISO 8601 dates, or one ``strftime`` layout such as
``%d/%m/%Y``. The way is ``timestamp_format`` when the caller gives it (CLI:
``--timestamp-format``); otherwise it is decided from the whole column (its distinct
values), never row by row, so ``01/02/2020`` and ``13/02/2020`` cannot end up in
different months' orders:

- numbers: the unit comes from the column's median magnitude (below 1e11 seconds,
  below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds);
- text: ISO 8601 if every value is ISO, else the one layout among common day-first,
  month-first and year-first layouts that reads every value; when two layouts read
  every value differently (all days <= 12) the column is ambiguous and the error asks
  for ``timestamp_format``; when none reads every value, the one that reads most is
  the column's and the other rows are reported.

Every value must then be a plausible date: between 1900 and 2200, and, in a column
of real dates (median after 1973), not before 1971. That catches a millisecond value
among seconds (the year 51969) and a second value among milliseconds (January 1970),
reported with their rows. Timestamps are returned as float64 seconds since the epoch
(UTC; dates without a time zone are taken as UTC).

In a file read in chunks (:func:`lmrec.data.ingest.ingest`) the first chunk decides,
and later chunks must follow it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.validate import Issue, show
from lmrec.data.vocabulary import fix
from lmrec.errors import ConfigError, DataError

__all__ = ["EPOCH_UNITS", "TimestampParser"]

#: Epoch units and their number per second.
EPOCH_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_EARLIEST = -2208988800.0  # 1900-01-01
_LATEST = 7258118400.0  # 2200-01-01
_DATED = 1e8  # seconds (1973-03-03): a column whose median is later holds real dates
_DATED_EARLIEST = 31536000.0  # 1971-01-01


def _layouts() -> list[str]:
    out = []
    for date in (
        "%d/%m/%Y",
        "%m/%d/%Y",
        "%Y/%m/%d",
        "%d.%m.%Y",
        "%m.%d.%Y",
        "%Y.%m.%d",
        "%d-%m-%Y",
        "%m-%d-%Y",
        "%d/%m/%y",
        "%m/%d/%y",
    ):
        out += [date, f"{date} %H:%M", f"{date} %H:%M:%S"]
    return out


_LAYOUTS = _layouts()


def _check_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    if not isinstance(fmt, str) or not fmt.strip():
        raise ConfigError(
            "timestamp_format must be an epoch unit ('s', 'ms', 'us', 'ns'), 'iso' or a strftime "
            f"layout such as '%d/%m/%Y'; got {fmt!r}."
        )
    low = fmt.strip().lower()
    if low in EPOCH_UNITS or low == "iso":
        return low
    if "%" not in fmt:
        raise ConfigError(
            f"timestamp_format {fmt!r} is neither an epoch unit ('s', 'ms', 'us', 'ns'), 'iso', "
            "nor a strftime layout (e.g. '%d/%m/%Y %H:%M')."
        )
    return fmt


@dataclass
class TimestampParser:
    """Reads one timestamp column, deciding its format once (see the module docstring).

    Attributes
    ----------
    format : str or None
        The format in use: an epoch unit, ``"iso"``, a strftime layout, or
        ``"datetime"`` for a typed (Parquet) column; None until the first call.
    integral : bool
        Epoch values were all integers (so they can be written back as integers).
    chosen_by : str
        ``"caller"`` or ``"column"``.
    """

    column: str
    format: str | None = None
    integral: bool = True
    chosen_by: str = "column"
    notes: list[str] = field(default_factory=list)
    _dated: bool | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.format = _check_format(self.format)
        if self.format is not None:
            self.chosen_by = "caller"

    def parse(self, arr: Any, path: str) -> tuple[np.ndarray, list[Issue]]:
        """Seconds since the epoch (float64, NaN where invalid) and the row issues."""
        import pyarrow as pa
        import pyarrow.compute as pc

        typ = arr.type
        if pa.types.is_dictionary(typ):
            arr = pc.cast(arr, typ.value_type)
            typ = arr.type
        if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
            return self._typed(arr)
        if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            if self.format is None or self.format in EPOCH_UNITS:
                return self._epoch(arr)
            arr = pc.cast(arr, pa.string())
        elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
            raise DataError(
                f"{path}: column {self.column!r} holds {typ} values, which are not timestamps; "
                f"use a column of epoch numbers or dates ({fix('timestamp', 'NAME')})."
            )
        elif arr.null_count == 0 and (self.format is None or self.format in EPOCH_UNITS):
            # Epoch numbers written as text (every CSV): Arrow's cast is the fast path.
            for target in (pa.int64(), pa.float64()):
                try:
                    return self._epoch(pc.cast(arr, target))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    continue
        return self._text(arr, path)

    # ------------------------------------------------------------------ kinds of columns
    def _typed(self, arr: Any) -> tuple[np.ndarray, list[Issue]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.format is None:
            self.format = "datetime"
        if pa.types.is_date(arr.type):
            arr = pc.cast(arr, pa.timestamp("s"))
        unit = arr.type.unit
        raw = pc.cast(pc.cast(arr, pa.timestamp(unit, tz=None)), pa.int64())
        secs = np.asarray(raw.fill_null(0).to_numpy(), np.float64) / EPOCH_UNITS[unit]
        missing = ~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)
        secs[missing] = np.nan
        issues = [Issue(self.column, missing, lambda i: "the timestamp is missing")]
        return secs, issues + self._implausible(secs, lambda i: repr(str(arr[i].as_py())))

    def _epoch(self, arr: Any) -> tuple[np.ndarray, list[Issue]]:
        from lmrec.data.numbers import parse_numbers

        nums = parse_numbers(arr, self.column, "timestamp", float32=False)
        values = nums.values
        self.integral = self.integral and nums.integral
        if self.format is None:
            self.format = _unit_of(values)
            self.notes.append(
                f"column {self.column!r}: timestamps read as epoch {_UNIT_NAMES[self.format]} "
                f"(decided from the column; pass {fix('timestamp_format', 'UNIT')} to choose)"
            )
        secs = values / EPOCH_UNITS[self.format]

        def raw(i: int) -> str:
            v = values[i]
            return show(int(v) if np.isfinite(v) and v == int(v) else v)

        return secs, nums.issues + self._implausible(secs, raw, values=values)

    def _text(self, arr: Any, path: str) -> tuple[np.ndarray, list[Issue]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        enc = pc.dictionary_encode(arr)
        chunks = list(enc.chunks) if isinstance(enc, pa.ChunkedArray) else [enc]
        texts = pd.Series(chunks[0].dictionary.to_pylist() if chunks else [], dtype=object)
        texts = texts.str.strip()
        idx = (
            np.concatenate(
                [
                    np.asarray(c.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
                    for c in chunks
                ]
            )
            if chunks
            else np.empty(0, np.int64)
        )
        empty_value = (texts == "").to_numpy(bool)
        missing = (idx < 0) | (empty_value[np.maximum(idx, 0)] if len(texts) else True)
        filled = texts[~empty_value]
        if self.format is None:
            self._decide_text(filled, path)
        value_secs = np.full(len(texts), np.nan)
        if len(filled):
            value_secs[~empty_value] = self._parse_values(filled)
        secs = np.where(idx >= 0, value_secs[np.maximum(idx, 0)] if len(texts) else np.nan, np.nan)
        bad = ~missing & np.isnan(secs)

        def raw(i: int) -> str:
            return show(texts.iloc[idx[i]])

        expected = self._expected()
        issues = [
            Issue(self.column, missing, lambda i: "the timestamp is missing"),
            Issue(self.column, bad, lambda i: f"{raw(i)} is not a timestamp ({expected})"),
        ]
        return secs, issues + self._implausible(secs, raw)

    # ------------------------------------------------------------------ deciding
    def _decide_text(self, filled: pd.Series, path: str) -> None:
        """Choose the column's format from its distinct non-empty texts.

        Every candidate layout is tried on a sample of 2,000 distinct values; the
        layouts that read all of the sample are then tried on every value.
        """
        if len(filled) == 0:
            self.format = "s"
            return
        num = pd.to_numeric(filled, errors="coerce")
        if num.notna().all():
            self.format = _unit_of(num.to_numpy(np.float64))
            self.integral = bool(filled.str.fullmatch(r"[+-]?\d+").all())
            self.notes.append(
                f"column {self.column!r}: timestamps read as epoch {_UNIT_NAMES[self.format]} "
                f"(decided from the column; pass {fix('timestamp_format', 'UNIT')} to choose)"
            )
            return
        candidates = list(dict.fromkeys(["iso", *_LAYOUTS, *_guesses(filled.iloc[0])]))
        sample = filled.iloc[:2000]
        on_sample = {
            f: int(np.count_nonzero(~np.isnan(_parse_dates(sample, f)))) for f in candidates
        }
        best = max(on_sample.values())
        finalists = [f for f in candidates if on_sample[f] == best] if best else ["iso"]
        scores = {}
        for fmt in finalists:
            parsed = _parse_dates(filled, fmt)
            scores[fmt] = (int(np.count_nonzero(~np.isnan(parsed))), parsed)
        n = len(filled)
        full = [f for f, (k, _) in scores.items() if k == n]
        if n_numbers := int(num.notna().sum()):
            best_dates = max(k for k, _ in scores.values())
            if n_numbers > best_dates:
                self.format = _unit_of(num.dropna().to_numpy(np.float64))
                self.notes.append(
                    f"column {self.column!r}: timestamps read as epoch "
                    f"{_UNIT_NAMES[self.format]} (most values are numbers)"
                )
                return
        distinct = _distinct_readings(full, scores)
        if len(distinct) > 1:
            a, b = distinct[:2]
            example = _ambiguous_example(filled, scores[a][1], scores[b][1])
            raise DataError(
                f"{path}: column {self.column!r} has dates such as {example!r} that read both as "
                f"{a!r} and as {b!r} (day/month order cannot be told from the column); pass "
                f"{fix('timestamp_format', a)} or {fix('timestamp_format', b)}."
            )
        if distinct:
            self.format = distinct[0]
        else:
            self.format = max(scores, key=lambda f: scores[f][0])
            if scores[self.format][0] == 0:
                self.format = "iso"  # nothing reads: every row is reported as not a timestamp
        how = "ISO 8601" if self.format == "iso" else self.format
        self.notes.append(
            f"column {self.column!r}: timestamps read as {how} dates (decided from the column; "
            "dates without a time zone are taken as UTC)"
        )

    def _parse_values(self, filled: pd.Series) -> np.ndarray:
        fmt = self.format or "iso"
        if fmt in EPOCH_UNITS:
            num = pd.to_numeric(filled, errors="coerce").to_numpy(np.float64, copy=True)
            num[np.isinf(num)] = np.nan
            if self.integral and not filled.str.fullmatch(r"[+-]?\d+").all():
                self.integral = False
            return num / EPOCH_UNITS[fmt]
        return _parse_dates(filled, fmt)

    def _expected(self) -> str:
        fmt = self.format
        if fmt in EPOCH_UNITS:
            return f"the column holds epoch {_UNIT_NAMES[str(fmt)]}"
        what = "ISO 8601 dates such as 2020-01-31" if fmt == "iso" else f"dates in the layout {fmt}"
        how = (
            "given"
            if self.chosen_by == "caller"
            else (
                f"decided from the column; pass {fix('timestamp_format', 'FORMAT')} to choose another"
            )
        )
        return f"expected {what}, {how}"

    # ------------------------------------------------------------------ plausibility
    def _implausible(
        self, secs: np.ndarray, raw: Any, values: np.ndarray | None = None
    ) -> list[Issue]:
        if len(secs) == 0 or np.isnan(secs).all():
            return []
        if self._dated is None:  # decided once per column (by the first chunk in ingest)
            self._dated = float(np.nanmedian(secs)) >= _DATED
        dated = self._dated
        low = _DATED_EARLIEST if dated else _EARLIEST
        if low <= float(np.nanmin(secs)) and float(np.nanmax(secs)) < _LATEST:
            return []  # every value plausible, found by two reductions
        finite = np.isfinite(secs)
        with np.errstate(invalid="ignore"):
            out = finite & ((secs < low) | (secs >= _LATEST))
        if not out.any():
            return []
        unit = self.format if self.format in EPOCH_UNITS else None

        def describe(i: int) -> str:
            text = f"the timestamp {raw(i)} is {_date_text(secs[i])}, an implausible date"
            if unit is not None and values is not None:
                other = _fitting_unit(float(values[i]), dated)
                if other and other != unit:
                    return (
                        f"{text}: it looks like {_UNIT_NAMES[other]} while the column holds "
                        f"{_UNIT_NAMES[unit]} (mixed units); convert it, or pass "
                        f"{fix('timestamp_format', unit)} if the column's unit is wrong"
                    )
            return f"{text} (expected 1900-2200{', after 1970 in this column' if dated else ''})"

        return [Issue(self.column, out, describe)]


def _unit_of(values: np.ndarray) -> str:
    finite = np.abs(values[np.isfinite(values)])
    finite = finite[finite > 0]
    if not finite.size:
        return "s"
    median = float(np.median(finite))
    return "s" if median < 1e11 else "ms" if median < 1e14 else "us" if median < 1e17 else "ns"


def _fitting_unit(value: float, dated: bool) -> str | None:
    """The epoch unit in which ``value`` is a plausible (recent, when ``dated``) date."""
    low = _DATED_EARLIEST if dated else _EARLIEST
    for unit, per_second in EPOCH_UNITS.items():
        if low <= value / per_second < _LATEST:
            return unit
    return None


def _date_text(secs: float) -> str:
    year = 1970 + secs / 31556952.0
    if -10000 < year < 10000:
        try:
            return "on " + pd.Timestamp(secs, unit="s", tz="UTC").strftime("%Y-%m-%d")
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            pass
    return f"in the year {year:,.0f}"


def _guesses(first: str) -> list[str]:
    from pandas.tseries.api import guess_datetime_format

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Parsing dates in %d/%m/%Y format ..."
        for dayfirst in (False, True):
            fmt = guess_datetime_format(first, dayfirst=dayfirst)
            if fmt:
                out.append(fmt)
    return out


def _parse_dates(texts: pd.Series, fmt: str) -> np.ndarray:
    """Seconds of every text under one format (NaN where it does not read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if fmt == "iso":
                parsed = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
            else:
                parsed = pd.to_datetime(texts, utc=True, errors="coerce", format=fmt)
        except (ValueError, TypeError):
            return np.full(len(texts), np.nan)
    return _seconds(parsed)


def _seconds(parsed: pd.Series) -> np.ndarray:
    """Float seconds since the epoch of UTC datetimes (NaN for NaT), beyond 2262 too."""
    arr = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
    secs = arr.astype(np.int64) / 1e6
    secs[np.isnat(arr)] = np.nan
    return secs


def _distinct_readings(full: list[str], scores: dict[str, tuple[int, np.ndarray]]) -> list[str]:
    """Formats that read every value, one per distinct result (equal readings are one)."""
    out: list[str] = []
    for fmt in full:
        if not any(np.array_equal(scores[fmt][1], scores[o][1], equal_nan=True) for o in out):
            out.append(fmt)
    return out


def _ambiguous_example(texts: pd.Series, a: np.ndarray, b: np.ndarray) -> str:
    differ = np.flatnonzero(a != b)
    return str(texts.iloc[int(differ[0])]) if len(differ) else str(texts.iloc[0])
