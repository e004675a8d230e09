"""Row-level validation of interaction tables: ids, numbers, timestamps, duplicates, coverage.

The readers in :mod:`lmrec.data.io` turn a file into a raw table (strings for text
formats, typed columns for Parquet) and hand it here. Each check returns an
:class:`Issue` (a row mask plus a way to describe one bad value), so a caller can
either raise on the first bad row with its file position, or drop every bad row and
report how many went and why. Nothing here drops a row silently.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from lmrec.errors import ConfigError, DataError, DataWarning

ColumnSpec = str | int | None
DuplicatePolicy = Literal["raise", "last", "first", "sum", "max"]
DUPLICATE_POLICIES: tuple[str, ...] = ("raise", "last", "first", "sum", "max")
ON_INVALID: tuple[str, ...] = ("raise", "drop")

#: Id cells that mean "no value" (how pandas, R and SQL exports write a missing value).
#: ``"NA"`` is deliberately absent: it is a real id in some data sets (a country code).
MISSING_ID_TOKENS = frozenset({"", "nan", "NaN", "NAN", "<NA>", "None", "null", "NULL", "NaT"})

_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
_ROLE_FLAGS = {
    "user": "--user-col", "item": "--item-col", "rating": "--rating-col",
    "weight": "--weight-col", "timestamp": "--timestamp-col",
}  # fmt: skip
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


class _Cells:
    """Indexable view of a column's cells, read one at a time for error messages only."""

    def __init__(self, values: pd.Series | np.ndarray) -> None:
        self._values = values

    def __getitem__(self, i: int) -> object:
        v = self._values
        return v.iloc[i] if isinstance(v, pd.Series) else v[i]


def _text(series: pd.Series) -> pd.Series:
    """Cells as stripped strings (a pandas string Series); missing cells stay missing."""
    if not pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        series = series.astype("string")
    return series.str.strip()


def _to_float(text: pd.Series) -> np.ndarray:
    """Float64 of stripped texts; NaN where a cell is missing, empty or not a number.

    Arrow's cast parses a million cells in ~30 ms where ``pd.to_numeric`` takes over a
    second; it refuses the whole column on one bad cell, so that case falls back.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = text.where(text != "")
    try:
        arr = pa.Array.from_pandas(cells)
        if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False).copy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pd.to_numeric(cells.astype(object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan, copy=True
        )


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
        text = _text(series)
        values = text.to_numpy(dtype=object, na_value=None)
        missing = text.isna().to_numpy()
        empty = (text == "").fillna(False).to_numpy(dtype=bool)
        token = text.isin(MISSING_ID_TOKENS - {""}).to_numpy(dtype=bool)
        return values, [
            Issue(column, missing, lambda i: f"{role} id is missing"),
            Issue(column, empty, lambda i: f"{role} id is empty"),
            Issue(column, token, lambda i: f"{role} id is missing ({values[i]!r} means no value)"),
        ]
    missing = np.array([v is None for v in values], dtype=bool)
    empty = np.zeros(len(values), dtype=bool)
    token = empty
    issues = [
        Issue(column, missing, lambda i: f"{role} id is missing"),
        Issue(column, empty, lambda i: f"{role} id is empty"),
        Issue(column, token, lambda i: f"{role} id is missing ({values[i]!r} means no value)"),
    ]
    return values, issues


def parse_numbers(
    series: pd.Series, column: str, what: str, *, nonnegative: bool = False
) -> tuple[np.ndarray, list[Issue]]:
    """Float64 values; missing, non-numeric, NaN, infinite (and negative) cells are issues."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        num = series.to_numpy(dtype=np.float64, na_value=np.nan)
        raw = _Cells(num)
        missing = np.isnan(num)
        garbage = np.zeros(len(num), dtype=bool)
        nan_token = np.zeros(len(num), dtype=bool)
    else:
        text = _text(series)
        raw = _Cells(text)
        missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
        num = _to_float(text)
        nan_token = text.str.lower().isin(("nan", "-nan", "+nan")).to_numpy(dtype=bool)
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
    text = _text(series)
    raw = _Cells(text)
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    secs = _to_float(text)
    secs[np.isinf(secs)] = np.nan  # "inf" is no point in time
    todo = ~missing & np.isnan(secs)
    if todo.any():
        texts = text[todo].astype(object)
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
        Issue(
            column, bad, lambda i: f"{_show(raw[i])} is not a timestamp (expected {_TS_FORMATS})"
        ),
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
    issues: list[Issue], locator: Locator, n_rows: int, on_invalid: str, *, hint: str = _DROP_HINT
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
        ragged = ragged_hint(locator, first)
        raise DataError(
            f"{locator.path}, {locator.where(first)}, {reason(first)}.{ragged}{more} {hint}"
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
def merge_duplicates(
    frame: pd.DataFrame, policy: str, locator: Locator
) -> tuple[pd.DataFrame, int]:
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


# ---------------------------------------------------------------------- file problems
def decode_error(path: Path, data: bytes, e: UnicodeDecodeError, encoding: str) -> DataError:
    """The message for bytes that are not text in ``encoding`` (``data`` is the text read)."""
    line = data[: e.start].count(b"\n") + 1
    byte = data[e.start : e.start + 1].hex()
    return DataError(
        f"{path}, line {line}: byte 0x{byte} at offset {e.start} is not valid {encoding} text. "
        "Is this a binary file? If it is text in another encoding, pass encoding='latin-1' "
        "(or convert it: iconv -f latin1 -t utf-8)."
    )


def parser_error(path: Path, e: Exception, header: bool) -> DataError:
    """Translate a pandas tokenizer error into the file line and the likely fix."""
    msg = str(e)
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if m:
        expected, line, saw = (int(g) for g in m.groups())
        row = line - int(header)
        return DataError(
            f"{path}, row {row} (line {line}) has {saw} fields but the file has {expected} "
            "columns. A value probably contains the delimiter: quote it, fix the line, or pass "
            "the right sep (CLI: --sep)."
        )
    m = re.search(r"EOF inside string starting at row (\d+)", msg)
    if m:
        line = int(m.group(1)) + 1
        return DataError(
            f"{path}, line {line}: a quote (\") opened on or near this line is never closed, "
            "so the rest of the file reads as one value. Close or remove the quote."
        )
    return DataError(f"{path}: cannot parse the file as delimited text ({msg.strip()}).")


def recbole_header(path: Path, frame: pd.DataFrame) -> dict[str, str]:
    """Strip RecBole ``name:type`` headers in place and return the type of each column."""
    if frame.shape[1] == 1 and "," in frame.columns[0]:
        return {}  # a comma-separated file: the missing-column check explains it better
    types: dict[str, str] = {}
    names = []
    for col in frame.columns:
        name, colon, typ = col.rpartition(":")
        if not colon or not name or typ not in _RECBOLE_TYPES:
            raise DataError(
                f"{path}, line 1: malformed RecBole header field {col!r}; atomic files need "
                f"tab-separated 'name:type' fields with type one of {', '.join(_RECBOLE_TYPES)}, "
                "e.g. 'user_id:token<TAB>item_id:token<TAB>rating:float'. Fix the header or "
                "name the file .csv."
            )
        names.append(name)
        types[name] = typ
    frame.columns = names
    return types


# ---------------------------------------------------------------------- columns
def resolve_columns(
    path: Path, cols: list[str], header: bool, specs: dict[str, ColumnSpec]
) -> dict[str, str]:
    """Map roles (user, item, ...) to file column names; explain every missing one at once.

    A spec is a column name or a 0-based position; without a header, digit strings
    (as the CLI passes them) are positions too.
    """
    found: dict[str, str] = {}
    problems = []
    for role, spec in specs.items():
        if spec is None:
            continue
        if isinstance(spec, bool) or not isinstance(spec, (str, int)):
            raise ConfigError(
                f"The {role} column must be a name or a 0-based position; got {spec!r}."
            )
        if isinstance(spec, str) and not header and spec.isdigit():
            spec = int(spec)
        if isinstance(spec, int):
            if 0 <= spec < len(cols):
                found[role] = cols[spec]
                continue
            problems.append(
                f"{role} column position {spec} is out of range (the file has {len(cols)} "
                f"column(s), positions 0 to {len(cols) - 1})"
            )
            continue
        if spec in cols:
            found[role] = spec
            continue
        flag = _ROLE_FLAGS[role]
        near = difflib.get_close_matches(spec, cols, 1, 0.6) or [
            c for c in cols if c.lower() == spec.lower()
        ]
        guess = f", did you mean {near[0]!r}?" if near else ""
        problems.append(f"no {role} column {spec!r}{guess} (pass {role}='NAME', CLI: {flag} NAME)")
    if problems:
        raise DataError(f"{path}: " + "; ".join(problems) + ". " + columns_hint(cols, header))
    by_col: dict[str, str] = {}
    for role, col in found.items():
        if col in by_col:
            raise ConfigError(
                f"The {by_col[col]} and {role} columns cannot both be {col!r}."
            )
        by_col[col] = role
    return found


def columns_hint(cols: list[str], header: bool) -> str:
    """What the file's columns are, and the likely fix (delimiter, --no-header)."""
    if header and len(cols) == 1:
        only = cols[0]
        for sep in ("\t", ",", "::", ";", "|", " "):
            if sep in only:
                shown = "\\t" if sep == "\t" else sep
                return (
                    f"Found a single column {only!r} — the delimiter looks like {shown!r}: pass "
                    f"sep={shown!r} (CLI: --sep '{shown}')."
                )
        return f"Found a single column {only!r}; is this the right file and delimiter (--sep)?"
    listed = ", ".join(repr(c) for c in cols[:30]) + (", ..." if len(cols) > 30 else "")
    hint = f"The file's columns are: {listed}."
    if header and all(re.fullmatch(r"[+-]?\d+(\.\d+)?", c) for c in cols):
        hint += (
            " The first line looks like data, not a header: pass header=False (CLI: --no-header) "
            "and refer to columns by position (user=0, item=1)."
        )
    elif not header:
        hint += " Without a header, refer to columns by 0-based position (user=0, item=1)."
    return hint


def check_choice(value: object, options: tuple[str, ...], name: str) -> None:
    """ConfigError listing the valid values when ``value`` is not one of ``options``."""
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")


# ---------------------------------------------------------------------- catalogs
def infer_column(s: pd.Series) -> np.ndarray:
    """Numbers when every non-empty cell is one (and none has a leading zero), else text."""
    text = s.str.strip()
    empty = (text == "").to_numpy()
    filled = text[~empty]
    values = text.to_numpy(dtype=object)
    values[empty] = None
    if len(filled) == 0 or filled.str.match(r"^[+-]?0\d").any():
        return values
    num = pd.to_numeric(filled, errors="coerce")
    if num.isna().any():
        return values
    out = np.full(len(s), np.nan)
    out[~empty] = num.to_numpy(dtype=np.float64)
    if not empty.any() and np.all(np.mod(out, 1) == 0) and not filled.str.contains(r"[.eE]").any():
        return out.astype(np.int64)
    return out


def recbole_column(s: pd.Series, typ: str, name: str, locator: Locator) -> np.ndarray:
    """A RecBole attribute column: numbers for ``float``, text for the token types."""
    if typ != "float":
        return s.to_numpy(dtype=object)
    num, issues = parse_numbers(s, name, "value")
    garbage = issues[1]  # missing, NaN and infinite values are allowed in attributes
    if garbage.mask.any():
        pos = int(np.flatnonzero(garbage.mask)[0])
        raise DataError(
            f"{locator.path}, {locator.where(pos)}, {garbage.text(pos)}; RecBole ':float' columns "
            "hold numbers only."
        )
    return num


