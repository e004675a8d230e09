"""What every reader shares: file positions, row issues, column roles, coverage, messages.

The readers in :mod:`lmrec.data.readers` turn a file into Arrow columns; the checks
in :mod:`lmrec.data.columns` and :mod:`lmrec.data.timestamps` return an
:class:`Issue` per problem (a row mask plus a way to describe one bad value), so a
caller can either raise on the first bad row with its file position, or drop every
bad row and report how many went and why. Nothing drops a row silently.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from lmrec.data.vocabulary import fix
from lmrec.errors import ConfigError, DataError, DataWarning

ColumnSpec = str | int | None
DuplicatePolicy = Literal["raise", "last", "first", "sum", "max"]
DUPLICATE_POLICIES: tuple[str, ...] = ("raise", "last", "first", "sum", "max")
ON_INVALID: tuple[str, ...] = ("raise", "drop")
ON_OVERFLOW: tuple[str, ...] = ("raise", "clip")

#: Id cells that mean "no value" (how pandas, R and SQL exports write a missing value).
#: ``"NA"`` is deliberately absent: it is a real id in some data sets (a country code).
MISSING_ID_TOKENS = frozenset({"", "nan", "NaN", "NAN", "<NA>", "None", "null", "NULL", "NaT"})

_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
_ROLES = ("user", "item", "rating", "weight", "timestamp")


# ---------------------------------------------------------------------- file positions
class Lines(Protocol):
    """Maps a record (0-based data row of a text file) to its 1-based physical line."""

    def line(self, record: int) -> int | None: ...


@dataclass(frozen=True)
class Locator:
    """Maps rows of a table read from a file back to positions in the file.

    ``offset`` is the number of data rows of the same file before this table (when a
    file is read in chunks); ``lines`` finds physical lines of a text file (a quoted
    value with a newline, or a blank line, shifts every later line), only when a
    message needs one. Binary formats (Parquet) have rows but no lines.
    """

    path: str
    lines: Lines | None = None
    offset: int = 0

    def line(self, pos: int) -> int | None:
        """1-based physical line of the row at ``pos``, or None for a binary format."""
        return None if self.lines is None else self.lines.line(self.offset + pos)

    def where(self, pos: int) -> str:
        """``"row 5 (line 6)"`` for the row at position ``pos`` of this table."""
        row = self.offset + pos + 1
        line = self.line(int(pos))
        return f"row {row}" if line is None else f"row {row} (line {line})"

    def shifted(self, rows: int) -> Locator:
        """The locator of a table that starts ``rows`` data rows later in the same file."""
        return replace(self, offset=self.offset + rows)


# ---------------------------------------------------------------------- issues
@dataclass
class Issue:
    """Rows of one column that failed one check, and how to describe a failing value."""

    column: str
    mask: np.ndarray
    describe: Callable[[int], str]
    #: What failed, for callers that tolerate some problems ("missing", "not a number", ...).
    kind: str = ""

    def text(self, pos: int) -> str:
        return f"column {self.column!r}: {self.describe(pos)}"


def show(value: object) -> str:
    """A cell for a message: its text, quoted, cut at 40 characters."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def drop_hint() -> str:
    """The fix offered for invalid rows."""
    return f"Fix the value or pass {fix('on_invalid', 'drop')} to skip such rows."


# ---------------------------------------------------------------------- raising / dropping
def resolve_issues(
    issues: list[Issue], locator: Locator, n_rows: int, on_invalid: str, *, hint: str | None = None
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
            others = ", ".join(str(locator.offset + int(p) + 1) for p in positions[1:4])
            etc = ", ..." if len(positions) > 4 else ""
            more = f" {len(positions) - 1} more row(s) are invalid too (rows {others}{etc})."
        raise DataError(
            f"{locator.path}, {locator.where(first)}, {reason(first)}.{more} {hint or drop_hint()}"
        )
    examples = [f"{locator.where(int(p))}: {reason(int(p))}" for p in positions[:5]]
    return ~bad, examples


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
    used = {kind: frame[kind].to_numpy() for kind in ("user", "item") if kind in frame}
    return coverage_notes(used, items=items, users=users)


def coverage_notes(
    used: dict[str, np.ndarray],
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
) -> list[str]:
    """:func:`check_coverage` over the interaction ids of each kind (``used["user"]`` ...)."""
    from lmrec.data.idmap import as_id_array

    notes: list[str] = []
    for kind, table in (("item", items), ("user", users)):
        if table is None or kind not in used:
            continue
        used_ids = pd.Index(pd.unique(as_id_array(used[kind]).astype(str)), dtype=object)
        known = pd.Index(as_id_array(table.index).astype(str), dtype=object)
        missing = used_ids.difference(known, sort=False)
        unused = known.difference(used_ids, sort=False)
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
        f"Is this a binary file? If it is text in another encoding, pass "
        f"{fix('encoding', 'latin-1')} (or convert it: iconv -f latin1 -t utf-8)."
    )


def ragged_error(path: object, where: str, saw: int, expected: int, text: str | None) -> DataError:
    """A line with the wrong number of fields."""
    shown = f": {show(text)}" if text else ""
    return DataError(
        f"{path}, {where}: the line has {saw} field(s) but the file has {expected} "
        f"columns{shown}. A value probably contains the delimiter: quote it, fix the line, or "
        f"pass the right {fix('sep')}. To skip such lines, pass {fix('on_invalid', 'drop')}."
    )


def recbole_header(path: Path, columns: list[str]) -> tuple[list[str], dict[str, str]]:
    """Split RecBole ``name:type`` headers into the names and the type of each column."""
    if len(columns) == 1 and "," in columns[0]:
        return columns, {}  # a comma-separated file: the missing-column check explains it better
    types: dict[str, str] = {}
    names = []
    for col in columns:
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
    return names, types


# ---------------------------------------------------------------------- columns
def resolve_columns(
    path: Path, cols: list[str], header: bool, specs: Mapping[str, ColumnSpec]
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
        near = difflib.get_close_matches(spec, cols, 1, 0.6) or [
            c for c in cols if c.lower() == spec.lower()
        ]
        guess = f", did you mean {near[0]!r}?" if near else ""
        problems.append(f"no {role} column {spec!r}{guess} (pass {fix(role, 'NAME')})")
    if problems:
        raise DataError(f"{path}: " + "; ".join(problems) + ". " + columns_hint(cols, header))
    by_col: dict[str, str] = {}
    for role, col in found.items():
        if col in by_col:
            raise ConfigError(f"The {by_col[col]} and {role} columns cannot both be {col!r}.")
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
                    f"{fix('sep', shown)}."
                )
        return (
            f"Found a single column {only!r}; is this the right file and delimiter ({fix('sep')})?"
        )
    listed = ", ".join(repr(c) for c in cols[:30]) + (", ..." if len(cols) > 30 else "")
    hint = f"The file's columns are: {listed}."
    if header and all(re.fullmatch(r"[+-]?\d+(\.\d+)?", c) for c in cols):
        hint += (
            f" The first line looks like data, not a header: pass {fix('header', False)} "
            "and refer to columns by position (user=0, item=1)."
        )
    elif not header:
        hint += " Without a header, refer to columns by 0-based position (user=0, item=1)."
    return hint


def check_choice(value: object, options: tuple[str, ...], name: str) -> None:
    """ConfigError listing the valid values when ``value`` is not one of ``options``."""
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")
