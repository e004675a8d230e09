"""Row-level validation of interaction tables: ids, numbers, timestamps, duplicates, coverage.

The readers in :mod:`lmrec.data.io` turn a file into a raw table (strings for text
formats, typed columns for Parquet) and hand it here. Each check returns an
:class:`Issue` (a row mask plus a way to describe one bad value), so a caller can
either raise on the first bad row with its file position, or drop every bad row and
report how many went and why. Nothing here drops a row silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from lmrec.errors import DataError, DataWarning

DuplicatePolicy = Literal["raise", "last", "first", "sum", "max"]
DUPLICATE_POLICIES: tuple[str, ...] = ("raise", "last", "first", "sum", "max")
ON_INVALID: tuple[str, ...] = ("raise", "drop")

#: Id cells that mean "no value" (how pandas, R and SQL exports write a missing value).
#: ``"NA"`` is deliberately absent: it is a real id in some data sets (a country code).
MISSING_ID_TOKENS = frozenset({"", "nan", "NaN", "NAN", "<NA>", "None", "null", "NULL", "NaT"})

_DROP_HINT = "Fix the value or pass on_invalid='drop' (CLI: --drop-invalid) to skip such rows."
_TS_FORMATS = "epoch seconds or a date such as 2020-01-31 or 2020-01-31T12:00:00Z"
_EPOCH = pd.Timestamp(0, tz="UTC")


# ---------------------------------------------------------------------- file positions
@dataclass
class Locator:
    """Maps rows of a raw table back to positions in the file for error messages.

    ``records`` holds, per kept row, its record index in the parsed file (0-based,
    after the header); ``header_lines`` is 1 for a text file with a header, 0
    otherwise. Physical line numbers are computed only when a message needs one,
    because a quoted value with a newline shifts every later line.
    """

    path: str
    records: np.ndarray
    header_lines: int = 0
    text: bool = True
    raw: pd.DataFrame | None = None
    #: Returns the text of a 1-based physical line (for the short-line hint), or None.
    read_line: Callable[[int], str | None] | None = None
    #: Counts the fields of one line of text with the file's delimiter.
    count_fields: Callable[[str], int] | None = None
    _line_offsets: np.ndarray | None = field(default=None, repr=False)

    def line(self, record: int) -> int | None:
        """1-based physical line of a record, or None for a binary format."""
        if not self.text:
            return None
        if self._line_offsets is None:
            extra = np.zeros(0 if self.raw is None else len(self.raw), dtype=np.int64)
            if self.raw is not None:
                for col in self.raw.columns:
                    s = self.raw[col]
                    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                        extra += s.astype(str).str.count("\n").to_numpy(dtype=np.int64)
            self._line_offsets = np.concatenate([[0], np.cumsum(extra)])
        return self.header_lines + 1 + record + int(self._line_offsets[record])

    def where(self, pos: int) -> str:
        """``"row 5 (line 6)"`` for the kept row at position ``pos``."""
        row = pos + 1
        line = self.line(int(self.records[pos]))
        return f"row {row}" if line is None else f"row {row} (line {line})"


# ---------------------------------------------------------------------- issues
@dataclass
class Issue:
    """Rows of one column that failed one check, and how to describe a failing value."""

    column: str
    mask: np.ndarray
    describe: Callable[[int], str]

    def text(self, pos: int) -> str:
        return f"column {self.column!r}: {self.describe(pos)}"


def _show(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _strings(series: pd.Series) -> np.ndarray:
    """Stripped cell texts as an object array; missing cells (None/NaN) become ``None``."""
    values = series.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
            out[i] = None
        else:
            out[i] = str(v).strip()
    return out


def _text_strings(series: pd.Series) -> np.ndarray:
    """Fast path of :func:`_strings` for string columns (the CSV reader's output)."""
    if pd.api.types.is_string_dtype(series.dtype) and not series.isna().any():
        return series.str.strip().to_numpy(dtype=object)
    return _strings(series)


def parse_ids(series: pd.Series, column: str, role: str) -> tuple[np.ndarray, list[Issue]]:
    """External ids as python ``str`` (object array); missing or empty ids are issues.

    Integers become their decimal text; integral floats (how Parquet stores an integer
    column that had a null) become integers first, so ``7.0`` is the id ``"7"``.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_float_dtype(dtype)
    ):
        values = series.astype(str).to_numpy(dtype=object)
        if series.isna().any():  # nullable integer columns
            values[series.isna().to_numpy()] = None
    elif pd.api.types.is_float_dtype(dtype):
        f = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(f)
        integral = finite & (np.mod(np.where(finite, f, 0), 1) == 0)
        values = np.array(
            [str(int(v)) if ok else None for v, ok in zip(f, integral, strict=True)], dtype=object
        )
        nonint = finite & ~integral
        issues = [
            Issue(column, nonint, lambda i: f"{role} id {f[i]!r} is a non-integral number; "
                  "store ids as strings or integers")
        ] if nonint.any() else []
        missing = ~finite
        issues.append(Issue(column, missing, lambda i: f"{role} id is missing ({f[i]!r})"))
        return values, issues
    else:
        values = _text_strings(series)
    missing = np.array([v is None for v in values], dtype=bool)
    empty = np.array([v == "" for v in values], dtype=bool)
    token = np.array([v in MISSING_ID_TOKENS and v != "" for v in values], dtype=bool)
    issues = [
        Issue(column, missing, lambda i: f"{role} id is missing"),
        Issue(column, empty, lambda i: f"{role} id is empty"),
        Issue(column, token, lambda i: f"{role} id is missing ({values[i]!r} means no value)"),
    ]
    return values, issues


def parse_numbers(
    series: pd.Series, column: str, what: str, *, nonnegative: bool = False
) -> tuple[np.ndarray, list[Issue]]:
    """Finite float64 values; missing, non-numeric, NaN, infinite (and negative) cells are issues."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        num = series.to_numpy(dtype=np.float64, na_value=np.nan)
        raw = num.astype(object)
        missing = np.isnan(num)
        garbage = np.zeros(len(num), dtype=bool)
        nan_token = np.zeros(len(num), dtype=bool)
    else:
        raw = _text_strings(series)
        missing = np.array([v is None or v == "" for v in raw], dtype=bool)
        num = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        nan_token = ~missing & np.array(
            [isinstance(v, str) and v.lower() in ("nan", "-nan", "+nan") for v in raw], dtype=bool
        )
        garbage = ~missing & ~nan_token & np.isnan(num)
    infinite = np.isinf(num)
    issues = [
        Issue(column, missing, lambda i: f"the {what} is missing"),
        Issue(column, garbage, lambda i: f"{_show(raw[i])} is not a number"),
        Issue(column, nan_token, lambda i: f"the {what} is NaN"),
        Issue(column, infinite, lambda i: f"the {what} {_show(raw[i])} is infinite"),
    ]
    if nonnegative:
        negative = num < 0
        issues.append(
            Issue(column, negative, lambda i: f"the {what} {_show(raw[i])} is negative; "
                  f"{what}s must be >= 0")
        )
    return num, issues


def parse_timestamps(series: pd.Series, column: str) -> tuple[np.ndarray, list[Issue], list[str]]:
    """Seconds since the epoch (float64) from epoch numbers, datetimes or date strings (UTC).

    Returns the values, the issues and notes for the report (how the column was read).
    Date strings without a time zone are taken as UTC.
    """
    notes: list[str] = []
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        ts = series if isinstance(dtype, pd.DatetimeTZDtype) else series.dt.tz_localize("UTC")
        secs = ((ts - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(secs)
        return secs, [Issue(column, missing, lambda i: "the timestamp is missing")], notes
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        secs, issues = parse_numbers(series, column, "timestamp")
        _note_units(secs, column, notes)
        return secs, issues, notes
    raw = _text_strings(series)
    missing = np.array([v is None or v == "" for v in raw], dtype=bool)
    secs = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    secs[np.isinf(secs)] = np.nan  # "inf" is no point in time
    todo = ~missing & np.isnan(secs)
    if todo.any():
        texts = pd.Series(raw[todo], dtype=object)
        parsed = _to_datetime(texts)
        secs[todo] = ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        n_dates = int(np.count_nonzero(~np.isnan(secs[todo])))
        if n_dates:
            notes.append(
                f"column {column!r}: {n_dates} timestamp(s) parsed as dates; "
                "dates without a time zone are taken as UTC"
            )
    _note_units(secs, column, notes)
    bad = ~missing & np.isnan(secs)
    issues = [
        Issue(column, missing, lambda i: "the timestamp is missing"),
        Issue(column, bad, lambda i: f"{_show(raw[i])} is not a timestamp (expected {_TS_FORMATS})"),
    ]
    return secs, issues, notes


def _to_datetime(texts: pd.Series) -> pd.Series:
    """Parse date strings as UTC: ISO-8601 vectorised first, other layouts one by one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' "could not infer format"
        out = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
        rest = out.isna().to_numpy()
        if rest.any():
            out[rest] = pd.to_datetime(texts[rest], utc=True, errors="coerce", format="mixed")
    return out


def _note_units(secs: np.ndarray, column: str, notes: list[str]) -> None:
    finite = secs[np.isfinite(secs)]
    if finite.size and float(np.median(np.abs(finite))) > 1e11:
        notes.append(
            f"column {column!r}: timestamps look like milliseconds (median "
            f"{float(np.median(finite)):.0f}); lmrec expects seconds, so divide them by 1000"
        )


# ---------------------------------------------------------------------- raising / dropping
def resolve_issues(
    issues: list[Issue], locator: Locator, n_rows: int, on_invalid: str
) -> tuple[np.ndarray, list[str]]:
    """Raise on the first bad row, or return the keep-mask and up to 5 drop examples."""
    bad = np.zeros(n_rows, dtype=bool)
    for issue in issues:
        bad |= issue.mask
    if not bad.any():
        return ~bad, []
    positions = np.flatnonzero(bad)

    def reason(pos: int) -> str:
        return next(issue.text(pos) for issue in issues if issue.mask[pos])

    if on_invalid == "raise":
        first = int(positions[0])
        more = ""
        if len(positions) > 1:
            others = ", ".join(str(int(p) + 1) for p in positions[1:4])
            etc = ", ..." if len(positions) > 4 else ""
            more = f" {len(positions) - 1} more row(s) are invalid too (rows {others}{etc})."
        hint = ragged_hint(locator, first)
        raise DataError(
            f"{locator.path}, {locator.where(first)}, {reason(first)}.{hint}{more} {_DROP_HINT}"
        )
    examples = [f"{locator.where(int(p))}: {reason(int(p))}" for p in positions[:5]]
    return ~bad, examples


def ragged_hint(locator: Locator, pos: int) -> str:
    """`` The line has 2 field(s) but the file has 3 columns: '4,5'.`` for a short line.

    pandas pads a short line with empty fields, which would otherwise surface as a
    puzzling "value is missing"; re-reading that one line tells the two apart.
    """
    raw, read_line, count_fields = locator.raw, locator.read_line, locator.count_fields
    if raw is None or read_line is None or count_fields is None:
        return ""
    line_no = locator.line(int(locator.records[pos]))
    text = read_line(line_no) if line_no is not None else None
    if text is None:
        return ""
    n = count_fields(text)
    if n >= raw.shape[1]:
        return ""
    return f" The line has {n} field(s) but the file has {raw.shape[1]} columns: {_show(text)}."


# ---------------------------------------------------------------------- duplicates
def merge_duplicates(frame: pd.DataFrame, policy: str, locator: Locator) -> tuple[pd.DataFrame, int]:
    """Apply the duplicate (user, item) policy; return the merged frame and rows merged away.

    Pairs keep the order of their first appearance. ``"sum"`` adds weights (each row
    counts 1 when the file has no weight column), keeps the last rating and the latest
    timestamp; ``"max"`` takes the maximum of each; ``"first"``/``"last"`` keep one
    whole row in file order.
    """
    keys = ["user", "item"]
    dup_later = frame.duplicated(keys, keep="first").to_numpy()
    n_dup = int(dup_later.sum())
    if n_dup == 0:
        if policy == "sum" and "weight" not in frame:
            frame = frame.assign(weight=np.ones(len(frame), dtype=np.float64))
        return frame, 0
    if policy == "raise":
        raise DataError(_duplicate_message(frame, n_dup, locator))
    if policy == "first":
        out = frame[~dup_later]
    elif policy == "last":
        group = frame.groupby(keys, sort=False).ngroup().to_numpy()
        keep = ~frame.duplicated(keys, keep="last").to_numpy()
        order = np.argsort(group[keep], kind="stable")
        out = frame[keep].iloc[order]
    else:
        if policy == "sum" and "weight" not in frame:
            frame = frame.assign(weight=np.ones(len(frame), dtype=np.float64))
        how = {
            "weight": "sum" if policy == "sum" else "max",
            "rating": "last" if policy == "sum" else "max",
            "timestamp": "max",
            "_pos": "first",
        }
        agg = {c: f for c, f in how.items() if c in frame.columns}
        out = frame.groupby(keys, sort=False, as_index=False).agg(agg)
    return out.reset_index(drop=True), n_dup


def _duplicate_message(frame: pd.DataFrame, n_dup: int, locator: Locator) -> str:
    both = frame.duplicated(["user", "item"], keep=False).to_numpy()
    sub = frame.loc[both, ["user", "item", "_pos"]]
    examples = []
    for (u, i), grp in list(sub.groupby(["user", "item"], sort=False))[:3]:
        where = " and ".join(locator.where(int(p)) for p in grp["_pos"].to_numpy()[:3])
        examples.append(f"user {u!r} / item {i!r} at {where}")
    return (
        f"{locator.path}: {n_dup} duplicate (user, item) row(s), e.g. " + "; ".join(examples)
        + ". Choose how to merge them: duplicates='last' or 'first' (keep one row), 'sum' (add "
        "weights) or 'max' (keep the largest); CLI: --duplicates last|first|sum|max."
    )


# ---------------------------------------------------------------------- coverage
def check_coverage(
    frame: pd.DataFrame, items: pd.DataFrame | None = None, users: pd.DataFrame | None = None
) -> list[str]:
    """Compare interaction ids with catalog ids; return notes and warn about mismatches.

    Reports ids used in ``frame`` but absent from the ``items``/``users`` table (they
    will have no attributes) and catalog ids that never occur in ``frame`` (they are
    cold-start ids), each as a count plus up to 5 examples. Emits one
    :class:`~lmrec.errors.DataWarning` per note and never raises.

    Parameters
    ----------
    frame : DataFrame
        Interactions with ``user`` and ``item`` columns of external ids.
    items, users : DataFrame, optional
        Attribute tables indexed by external id (as returned by :func:`read_items`).

    Returns
    -------
    list of str
        Human-readable notes; empty when the ids match exactly.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"user": ["u1"], "item": ["a"]})
    >>> cat = pd.DataFrame({"title": ["A", "B"]}, index=["a", "b"])
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     check_coverage(f, items=cat)
    ["1 catalog item id(s) never occur in the interactions (cold-start items), e.g. 'b'"]
    """
    notes: list[str] = []
    for kind, table in (("item", items), ("user", users)):
        if table is None or kind not in frame:
            continue
        used = pd.Index(pd.unique(frame[kind].astype(str).to_numpy(dtype=object)))
        known = pd.Index(table.index.astype(str))
        missing = used.difference(known, sort=False)
        unused = known.difference(used, sort=False)
        if len(missing):
            notes.append(
                f"{len(missing)} {kind} id(s) in the interactions are not in the {kind} table "
                f"(they have no attributes), e.g. {_examples(missing)}"
            )
        if len(unused):
            notes.append(
                f"{len(unused)} catalog {kind} id(s) never occur in the interactions "
                f"(cold-start {kind}s), e.g. {_examples(unused)}"
            )
    for note in notes:
        warnings.warn(note, DataWarning, stacklevel=2)
    return notes


def _examples(ids: pd.Index) -> str:
    return ", ".join(repr(str(v)) for v in list(ids[:5])) + (", ..." if len(ids) > 5 else "")
