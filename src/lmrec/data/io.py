"""Reading interaction, item and user files into canonical frames, with reports.

Supported inputs: delimited text (``.csv``, ``.tsv``, ``.txt``, ``.dat``, ``.data``,
optionally ``.gz``/``.bz2``/``.xz`` compressed), Parquet (``.parquet``, ``.pq`` or a
directory of Parquet files) and RecBole atomic files (``.inter``, ``.item``,
``.user``). Ids are always read as text, so ``"007"`` stays ``"007"``.

Every problem raises :class:`~lmrec.errors.DataError` naming the file, the data row
and the line, and saying how to fix it; ``on_invalid="drop"`` skips bad rows and
counts them in the :class:`LoadReport` instead. Row checks live in
:mod:`lmrec.data.validate`.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import difflib
import gzip
import io
import lzma
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.data.validate import (
    DUPLICATE_POLICIES,
    ON_INVALID,
    ColumnSpec,
    Locator,
    check_choice,
    check_coverage,
    decode_error,
    infer_column,
    merge_duplicates,
    parse_ids,
    parse_numbers,
    parse_timestamps,
    parser_error,
    recbole_column,
    recbole_header,
    resolve_columns,
    resolve_issues,
)
from lmrec.errors import ConfigError, DataError, DataWarning

__all__ = [
    "LoadReport",
    "check_coverage",
    "load_dataset",
    "read_interactions",
    "read_items",
    "read_users",
]

FORMATS = ("csv", "parquet", "recbole")
_SUFFIXES = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".dat": "csv", ".data": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".inter": "recbole", ".item": "recbole", ".user": "recbole",
}  # fmt: skip
_OPENERS: dict[str, Callable[..., IO[bytes]]] = {
    ".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open,
}  # fmt: skip
#: Delimiters tried by the sniffer; on a tie in field count, earlier ones win.
_SNIFF = ("\t", ",", "::", ";", "|")
_SEP_NAMES = {"\t": "tab", ",": "comma", "::": "'::'", ";": "semicolon", "|": "pipe", " ": "space"}
_HEAD_BYTES = 1 << 16


# ====================================================================== report
@dataclass(frozen=True)
class LoadReport:
    """What :func:`read_interactions` read, merged and dropped; print :meth:`summary`.

    Attributes
    ----------
    path : str
        The file as given.
    n_rows_read : int
        Data rows in the file (blank lines excluded).
    n_interactions : int
        Rows in the returned frame.
    n_duplicates : int
        Duplicate (user, item) rows merged away by ``duplicate_policy``.
    duplicate_policy : str
        The policy used.
    n_dropped_invalid : int
        Rows skipped because of invalid values (only with ``on_invalid="drop"``).
    dropped_examples : list of str
        Up to 5 ``"row N (line L): why"`` strings.
    notes : list of str
        Other facts worth showing: the delimiter detected, the columns used, ...
    """

    path: str
    n_rows_read: int
    n_interactions: int
    n_duplicates: int
    duplicate_policy: str
    n_dropped_invalid: int
    dropped_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A multi-line human summary (the CLI prints it after loading)."""
        lines = [
            f"{self.path}: {self.n_rows_read:,} row(s) read -> "
            f"{self.n_interactions:,} interaction(s)"
        ]
        if self.n_duplicates:
            lines.append(
                f"  duplicates: {self.n_duplicates:,} row(s) merged "
                f"(policy {self.duplicate_policy!r})"
            )
        if self.n_dropped_invalid:
            lines.append(f"  invalid rows dropped: {self.n_dropped_invalid:,}, e.g.")
            lines.extend(f"    {ex}" for ex in self.dropped_examples)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


# ====================================================================== raw tables
@dataclass
class _Raw:
    """A file parsed into a table whose columns are the file's (stripped) column names."""

    frame: pd.DataFrame
    locator: Locator
    fmt: str
    notes: list[str]
    header: bool
    recbole_types: dict[str, str] | None = None


def _format_of(path: Path, fmt: str | None) -> tuple[str, str | None]:
    """The format and compression suffix of ``path`` (``format`` overrides the suffix)."""
    suffixes = [s.lower() for s in path.suffixes]
    comp = suffixes[-1] if suffixes and suffixes[-1] in _OPENERS else None
    if fmt is not None:
        if fmt not in FORMATS:
            check_choice(fmt, FORMATS, "format")
        return fmt, comp
    if path.is_dir():
        if any(path.glob("*.parquet")):
            return "parquet", None
        raise DataError(f"{path} is a directory without .parquet files; pass a file.")
    suffix = suffixes[-2] if comp and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if suffix not in _SUFFIXES:
        known = ", ".join(sorted(_SUFFIXES))
        shown = repr(suffix) if suffix else "no suffix"
        raise DataError(
            f"{path}: cannot tell the file format from its suffix ({shown}). Known suffixes: "
            f"{known} (text may be .gz/.bz2/.xz compressed). Rename the file or pass "
            "format='csv', 'parquet' or 'recbole'."
        )
    return _SUFFIXES[suffix], comp


def _check_file(path: Path) -> None:
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()], 3)
            hint = f" Similar files there: {', '.join(near)}." if near else ""
        raise DataError(f"{path}: file not found (looked in {path.resolve().parent}).{hint}")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); expected a header line and data rows.")


def _read_raw(
    path: Path, *, fmt: str | None, sep: str | None, header: bool, encoding: str
) -> _Raw:
    _check_file(path)
    kind, comp = _format_of(path, fmt)
    if kind == "parquet":
        return _read_parquet(path)
    return _read_text(path, kind=kind, comp=comp, sep=sep, header=header, encoding=encoding)


def _read_parquet(path: Path) -> _Raw:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(
            f"{path} is not a readable Parquet file ({e}). Check that the file is complete; "
            "if it is text, name it .csv or pass format='csv'."
        ) from e
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{path} has columns {list(frame.columns)} but no data rows.")
    # A named pandas index (e.g. a catalog written with its ``item`` index) is a column too.
    frame = frame.reset_index(drop=all(name is None for name in frame.index.names))
    records = np.arange(len(frame))
    return _Raw(frame, Locator(str(path), records, text=False), "parquet", [], True)


def _open_bytes(path: Path, comp: str | None) -> IO[bytes]:
    return _OPENERS[comp](path, "rb") if comp else open(path, "rb")  # noqa: SIM115


def _codec(encoding: str) -> str:
    """utf-8 reads as utf-8-sig, so a byte-order mark does not end up in the first column name."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _head(path: Path, comp: str | None, encoding: str) -> str:
    """The first 64 KiB as text; refuses binary and undecodable files with a clear message."""
    with _open_bytes(path, comp) as fh:
        try:
            head = fh.read(_HEAD_BYTES)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise DataError(f"{path}: cannot decompress ({e}); is the file truncated?") from e
    if head.startswith(b"PAR1"):
        raise DataError(
            f"{path} looks like a Parquet file, not text; name it .parquet or pass "
            "format='parquet'."
        )
    if head[:2] == b"\x1f\x8b":
        raise DataError(f"{path} is gzip-compressed; name it {path.name}.gz so it is decompressed.")
    if b"\x00" in head:
        raise DataError(
            f"{path} looks like a binary file (it contains NUL bytes), not delimited text. "
            "Pass a .csv/.tsv file, or name a Parquet file .parquet."
        )
    decoder = codecs.getincrementaldecoder(_codec(encoding))()
    try:
        return decoder.decode(head, final=len(head) < _HEAD_BYTES)
    except UnicodeDecodeError as e:
        raise decode_error(path, head, e, encoding) from e


def _locate_decode_error(path: Path, comp: str | None, encoding: str) -> DataError | None:
    """Find the first undecodable byte of a whole file (only after pandas failed)."""
    decoder = codecs.getincrementaldecoder(_codec(encoding))()
    offset, lines = 0, 0
    with _open_bytes(path, comp) as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                pos = max(e.start - len(decoder.getstate()[0]), 0)
                line = lines + chunk[:pos].count(b"\n") + 1
                return DataError(
                    f"{path}, line {line}: byte 0x{chunk[pos:pos + 1].hex()} at offset "
                    f"{offset + pos} is not valid {encoding} text. If the file is in another "
                    "encoding, pass encoding='latin-1' (or convert it: iconv -f latin1 -t utf-8)."
                )
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return None


def _normalise_sep(sep: str) -> str:
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    sep = named.get(sep.lower(), sep) if isinstance(sep, str) else sep
    if not isinstance(sep, str) or not sep or sep in ("\n", "\r", '"'):
        raise ConfigError(f"sep must be a non-empty delimiter such as ',' or '\\t'; got {sep!r}.")
    return sep


def _count_fields(line: str, sep: str, quoting: int) -> int:
    if len(sep) > 1:
        return len(line.split(sep))
    return len(next(csv.reader([line], delimiter=sep, quoting=quoting), []))


def _sniff(head: str, truncated: bool) -> tuple[str | None, bool]:
    """Guess the delimiter from the first lines; returns (sep or None, certain)."""
    lines = head.splitlines()
    if truncated and lines:
        lines = lines[:-1]  # the last line may be cut off
    lines = [ln for ln in lines if ln.strip()][:20]
    if not lines:
        return None, False
    scored = []
    for rank, sep in enumerate(_SNIFF):
        counts = [_count_fields(ln, sep, csv.QUOTE_MINIMAL) for ln in lines]
        if counts[0] < 2:
            continue
        consistent = all(c == counts[0] for c in counts)
        agree = sum(c == counts[0] for c in counts) / len(counts)
        scored.append(((consistent, agree, counts[0], -rank), sep))
    if not scored:
        return None, False
    best = max(scored)
    return best[1], best[0][0]


def _read_text(
    path: Path, *, kind: str, comp: str | None, sep: str | None, header: bool, encoding: str
) -> _Raw:
    notes: list[str] = []
    head = _head(path, comp, encoding)
    truncated = len(head.encode(_codec(encoding), errors="ignore")) >= _HEAD_BYTES - 4
    if sep is not None:
        sep = _normalise_sep(sep)
    elif kind == "recbole":
        sep = "\t"
    else:
        sep, certain = _sniff(head, truncated)
        if sep is None:
            sep = ","
            notes.append("no delimiter detected; the file was read as a single column")
        else:
            notes.append(f"delimiter detected: {_SEP_NAMES[sep]}")
            if not certain:
                notes.append("lines have different field counts; the delimiter guess is uncertain")
    # RecBole and '::' files (MovieLens 1M) do not quote values; a stray '"' is literal there.
    quoting = csv.QUOTE_NONE if kind == "recbole" or sep == "::" else csv.QUOTE_MINIMAL
    source: Any = path
    if len(sep) > 1:
        # pandas' C parser takes one-character delimiters only; substitute one (the python
        # engine is ~10x slower on MovieLens-1M).
        with _open_bytes(path, comp) as fh:
            try:
                text = fh.read().decode(_codec(encoding))
            except UnicodeDecodeError as e:
                raise decode_error(path, b"", e, encoding) from e
        if "\x1f" in text:
            raise DataError(f"{path} contains the control character 0x1f; it cannot be read.")
        source, read_sep = io.StringIO(text.replace(sep, "\x1f")), "\x1f"
    else:
        read_sep = sep
    try:
        frame = pd.read_csv(
            source,
            sep=read_sep,
            header=0 if header else None,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            quoting=quoting,
            encoding=_codec(encoding),
            engine="c",
        )
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{path} contains no data (only blank lines).") from e
    except pd.errors.ParserError as e:
        raise parser_error(path, e, header) from e
    except UnicodeDecodeError as e:
        located = _locate_decode_error(path, comp, encoding)
        raise (located or decode_error(path, b"", e, encoding)) from e
    if header:
        frame.columns = [str(c).strip() for c in frame.columns]
    else:
        frame.columns = [str(i) for i in range(frame.shape[1])]
    recbole_types = recbole_header(path, frame) if kind == "recbole" else None

    records = np.arange(len(frame))
    blank = _blank_rows(frame)
    if blank.any():
        lines = [int(r) + 1 + int(header) for r in np.flatnonzero(blank)[:5]]
        notes.append(
            f"skipped {int(blank.sum())} blank line(s) (line(s) {', '.join(map(str, lines))}"
            f"{', ...' if blank.sum() > 5 else ''})"
        )
    raw_frame = frame
    if blank.any():
        frame = frame[~blank].reset_index(drop=True)
        records = records[~blank]
    if len(frame) == 0:
        cols = ", ".join(repr(c) for c in frame.columns)
        what = f"a header ({cols})" if header else "only blank lines"
        raise DataError(f"{path} has {what} but no data rows.")

    def read_line(n: int) -> str | None:
        with _open_bytes(path, comp) as fh:
            for i, raw_line in enumerate(fh, start=1):
                if i == n:
                    return raw_line.decode(_codec(encoding), errors="replace").rstrip("\r\n")
        return None

    locator = Locator(
        str(path), records, header_lines=int(header), text=True, raw=raw_frame,
        read_line=read_line, count_fields=lambda s: _count_fields(s, sep, quoting),
    )  # fmt: skip
    return _Raw(frame, locator, kind, notes, header, recbole_types)


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    first = frame.iloc[:, 0].str.strip().to_numpy(dtype=object) == ""
    if not first.any():
        return first
    cand = np.flatnonzero(first)
    sub = frame.iloc[cand]
    blank_sub = np.all([sub[c].str.strip().to_numpy(dtype=object) == "" for c in sub.columns], 0)
    out = np.zeros(len(frame), dtype=bool)
    out[cand[blank_sub]] = True
    return out


# ====================================================================== interactions
def read_interactions(
    path: str | Path,
    *,
    user: ColumnSpec = "user",
    item: ColumnSpec = "item",
    rating: ColumnSpec = None,
    weight: ColumnSpec = None,
    timestamp: ColumnSpec = None,
    sep: str | None = None,
    header: bool = True,
    format: str | None = None,  # noqa: A002 - the public keyword, as in pandas
    duplicates: str = "raise",
    on_invalid: str = "raise",
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, LoadReport]:
    """Read an interaction file into a canonical frame and a :class:`LoadReport`.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.tsv``/``.txt``/``.dat``/``.data`` text file (optionally
        ``.gz``/``.bz2``/``.xz``), a ``.parquet``/``.pq`` file or directory, or a RecBole
        ``.inter`` file.
    user, item : str or int, default "user", "item"
        Columns of the user and item ids: names, or 0-based positions. With
        ``header=False`` the defaults become positions 0 and 1. In a RecBole file the
        defaults mean ``user_id`` and ``item_id``.
    rating, weight, timestamp : str or int, optional
        Optional columns. In a RecBole file ``rating`` and ``timestamp`` are used when
        present unless given. Timestamps may be epoch seconds or dates (taken as UTC).
    sep : str, optional
        Delimiter of a text file; sniffed among tab, ``,``, ``::``, ``;`` and ``|`` when
        None (the report notes the choice). ``"\\t"`` and ``"tab"`` mean a tab.
    header : bool, default True
        Whether the first line names the columns.
    format : {"csv", "parquet", "recbole"}, optional
        Overrides detection by suffix.
    duplicates : {"raise", "last", "first", "sum", "max"}, default "raise"
        What to do with repeated (user, item) pairs: fail, keep the last or first row,
        add weights (rating = last, timestamp = latest), or keep the maximum of each.
    on_invalid : {"raise", "drop"}, default "raise"
        Fail on the first row with a missing id or a bad number or timestamp, or drop
        such rows and count them in the report (a :class:`~lmrec.errors.DataWarning`
        says so too).
    encoding : str, default "utf-8"
        Text encoding (MovieLens-1M's ``movies.dat`` needs ``"latin-1"``).

    Returns
    -------
    frame : DataFrame
        Columns ``user``, ``item`` (external ids, python ``str``, object dtype) and, when
        read, ``weight`` (float32), ``rating`` (float32), ``timestamp`` (float64 seconds
        since the epoch); one row per (user, item) pair in order of first appearance.
    report : LoadReport
        Counts of rows read, merged and dropped, plus notes.

    Raises
    ------
    DataError
        The file is missing, empty, binary or malformed, a column is missing, or a value
        is invalid; the message names the file, row and line and says how to fix it.
    ConfigError
        An argument has an invalid value.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ratings.csv"
    >>> _ = p.write_text("userId,movieId,rating\\n007,1,4.5\\n8,1,3\\n")
    >>> frame, report = read_interactions(p, user="userId", item="movieId", rating="rating")
    >>> frame["user"].tolist(), frame["rating"].tolist()
    (['007', '8'], [4.5, 3.0])
    """
    check_choice(duplicates, DUPLICATE_POLICIES, "duplicates")
    check_choice(on_invalid, ON_INVALID, "on_invalid")
    path = Path(path)
    raw = _read_raw(path, fmt=format, sep=sep, header=header, encoding=encoding)
    notes = list(raw.notes)
    if not header:
        user = 0 if user == "user" else user
        item = 1 if item == "item" else item
    if raw.recbole_types is not None:
        cols = set(raw.frame.columns)
        user = "user_id" if user == "user" and "user" not in cols else user
        item = "item_id" if item == "item" and "item" not in cols else item
        rating = "rating" if rating is None and "rating" in cols else rating
        timestamp = "timestamp" if timestamp is None and "timestamp" in cols else timestamp
    specs = {"user": user, "item": item, "rating": rating, "weight": weight, "timestamp": timestamp}
    found = resolve_columns(path, list(raw.frame.columns), raw.header, specs)
    used = ", ".join(f"{role}={col!r}" for role, col in found.items())
    notes.append(f"columns used: {used}")
    unused = [c for c in raw.frame.columns if c not in found.values()]
    if unused:
        notes.append(f"columns ignored: {', '.join(repr(c) for c in unused)}")

    frame, issues = raw.frame, []
    data: dict[str, np.ndarray] = {}
    for role in ("user", "item"):
        data[role], found_issues = parse_ids(frame[found[role]], found[role], role)
        issues += found_issues
    for role in ("weight", "rating"):
        if role in found:
            data[role], found_issues = parse_numbers(
                frame[found[role]], found[role], role, nonnegative=role == "weight"
            )
            issues += found_issues
    if "timestamp" in found:
        data["timestamp"], found_issues, ts_notes = parse_timestamps(
            frame[found["timestamp"]], found["timestamp"]
        )
        issues += found_issues
        notes += ts_notes

    n_rows = len(frame)
    keep, examples = resolve_issues(issues, raw.locator, n_rows, on_invalid)
    n_dropped = n_rows - int(keep.sum())
    out = pd.DataFrame({k: v[keep] for k, v in data.items()})
    out["_pos"] = np.flatnonzero(keep)
    if n_dropped:
        warnings.warn(
            f"{path}: dropped {n_dropped} invalid row(s) (on_invalid='drop'), e.g. {examples[0]}",
            DataWarning,
            stacklevel=2,
        )
    if len(out) == 0:
        raise DataError(
            f"{path}: all {n_rows} row(s) are invalid, e.g. {examples[0]}; nothing is left to read."
        )
    out, n_dup = merge_duplicates(out, duplicates, raw.locator)
    out = _canonical(out)
    report = LoadReport(
        path=str(path),
        n_rows_read=n_rows,
        n_interactions=len(out),
        n_duplicates=n_dup,
        duplicate_policy=duplicates,
        n_dropped_invalid=n_dropped,
        dropped_examples=examples,
        notes=notes,
    )
    return out, report


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "user": pd.Series(frame["user"].to_numpy(dtype=object), dtype=object),
            "item": pd.Series(frame["item"].to_numpy(dtype=object), dtype=object),
        }
    )
    for col, dtype in (("weight", np.float32), ("rating", np.float32), ("timestamp", np.float64)):
        if col in frame:
            out[col] = frame[col].to_numpy(dtype=dtype)
    return out


# ====================================================================== catalogs
def read_items(
    path: str | Path,
    *,
    id_col: str | int = "item",
    sep: str | None = None,
    format: str | None = None,  # noqa: A002
    header: bool = True,
    text_cols: list[str] | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read an item catalog: a table indexed by external item id (``str``), other columns kept.

    Parameters
    ----------
    path : str or Path
        Text, Parquet or RecBole ``.item`` file (where ``id_col`` defaults to ``item_id``).
    id_col : str or int, default "item"
        The id column (a position with ``header=False``, where the default means 0).
    sep, format, header, encoding
        As in :func:`read_interactions`.
    text_cols : list of str, optional
        Columns holding item text (titles, descriptions): they must exist and are kept
        as ``str`` with missing values as ``""``.

    Returns
    -------
    DataFrame
        Indexed by item id (index name ``"item"``). Text-file columns whose values are
        all numbers (without leading zeros) become numeric; RecBole ``float`` columns
        are numeric and ``token``/``token_seq`` columns stay strings.

    Raises
    ------
    DataError
        Missing file or column, an empty id or a repeated id (the rows are named).
    """
    return _read_table(
        path, role="item", id_col=id_col, sep=sep, fmt=format, header=header,
        text_cols=text_cols, encoding=encoding,
    )  # fmt: skip


def read_users(
    path: str | Path,
    *,
    id_col: str | int = "user",
    sep: str | None = None,
    format: str | None = None,  # noqa: A002
    header: bool = True,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a user attribute table indexed by external user id; see :func:`read_items`."""
    return _read_table(
        path, role="user", id_col=id_col, sep=sep, fmt=format, header=header,
        text_cols=None, encoding=encoding,
    )  # fmt: skip


def _read_table(
    path: str | Path,
    *,
    role: str,
    id_col: str | int,
    sep: str | None,
    fmt: str | None,
    header: bool,
    text_cols: list[str] | None,
    encoding: str,
) -> pd.DataFrame:
    path = Path(path)
    raw = _read_raw(path, fmt=fmt, sep=sep, header=header, encoding=encoding)
    if not header and id_col == role:
        id_col = 0
    if raw.recbole_types is not None and id_col == role and role not in raw.frame.columns:
        id_col = f"{role}_id"
    col = resolve_columns(path, list(raw.frame.columns), raw.header, {role: id_col})[role]
    ids, issues = parse_ids(raw.frame[col], col, role)
    resolve_issues(issues, raw.locator, len(ids), "raise", hint=f"Every {role} needs an id.")
    index = pd.Index(ids, dtype=object, name=role)
    if not index.is_unique:
        dup = index.duplicated(keep=False)
        n_ids = int(index[dup].nunique())
        first = index[dup][0]
        where = " and ".join(raw.locator.where(int(p)) for p in np.flatnonzero(index == first)[:3])
        raise DataError(
            f"{path}: {n_ids} {role} id(s) appear more than once, e.g. {first!r} at {where}. "
            f"Each {role} needs exactly one row in the table: remove or merge the repeats."
        )
    table = raw.frame.drop(columns=[col])
    text_cols = list(text_cols or [])
    absent = [c for c in text_cols if c not in table.columns]
    if absent:
        listed = ", ".join(repr(c) for c in table.columns)
        raise DataError(f"{path}: text column(s) {absent} not found; the columns are {listed}.")
    out = {}
    for name in table.columns:
        s = table[name]
        if name in text_cols:
            out[name] = s.astype(object).where(s.notna(), "").astype(str).to_numpy(dtype=object)
        elif raw.recbole_types is not None:
            out[name] = recbole_column(s, raw.recbole_types.get(name, "token"), name, raw.locator)
        elif raw.fmt == "parquet":
            out[name] = s.to_numpy()
        else:
            out[name] = infer_column(s)
    result = pd.DataFrame(out, index=index)
    result.columns = list(table.columns)
    return result


# ====================================================================== dataset
def load_dataset(
    path: str | Path,
    *,
    items: str | Path | pd.DataFrame | None = None,
    users: str | Path | pd.DataFrame | None = None,
    name: str | None = None,
    item_kwargs: dict[str, Any] | None = None,
    user_kwargs: dict[str, Any] | None = None,
    **read_kwargs: Any,
) -> tuple[Dataset, LoadReport]:
    """Read interactions (and optional item/user tables) into a :class:`Dataset`.

    Parameters
    ----------
    path : str or Path
        The interaction file, read by :func:`read_interactions` with ``read_kwargs``.
    items, users : path or DataFrame, optional
        Attribute tables, read by :func:`read_items` / :func:`read_users` with
        ``item_kwargs`` / ``user_kwargs``. Unless given there, the catalog's id column is
        the interaction file's item (user) column name, e.g. ``movieId`` in both files.
    name : str, optional
        Data set label; defaults to the file name without suffix.

    Returns
    -------
    dataset : Dataset
        Catalog-only items and users are part of the id maps (cold-start ids).
    report : LoadReport
        The interaction report, with coverage notes appended.
    """
    path = Path(path)
    frame, report = read_interactions(path, **read_kwargs)
    tables = {}
    for role, table, kwargs, reader in (
        ("item", items, item_kwargs, read_items),
        ("user", users, user_kwargs, read_users),
    ):
        if table is None or isinstance(table, pd.DataFrame):
            tables[role] = table
            continue
        kwargs = dict(kwargs or {})
        spec = read_kwargs.get(role)
        if "id_col" not in kwargs and isinstance(spec, str):
            kwargs["id_col"] = spec
        tables[role] = reader(table, **kwargs)
    notes = check_coverage(frame, items=tables["item"], users=tables["user"])
    dataset = Dataset.from_frame(
        frame, items=tables["item"], users=tables["user"], name=name or path.name.split(".")[0]
    )
    notes.append(
        f"data set: {dataset.n_users:,} users, {dataset.n_items:,} items, "
        f"{dataset.n_interactions:,} interactions"
    )
    return dataset, replace(report, notes=[*report.notes, *notes])

