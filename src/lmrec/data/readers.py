"""Files into Arrow tables: format, encoding and delimiter detection, with file positions.

:func:`open_source` looks at a file once -- its format (by suffix), compression,
encoding (UTF-8 with or without a byte-order mark, UTF-16 by its mark or its zero
bytes, or the caller's), delimiter (sniffed among tab, ``,``, ``::``, ``;``, ``|``)
and header -- and returns a :class:`Source` that knows the file's column names. The
caller resolves which columns it needs and asks the source for them:
:meth:`Source.read` (the whole file, with pyarrow's multithreaded CSV reader or
Parquet reader) or :meth:`Source.batches` (chunk by chunk, for
:func:`lmrec.data.ingest.ingest`). Both return Arrow data plus a
:class:`~lmrec.data.validate.Locator` that turns a table row into "row 5 (line 6)".

Everything that makes a file unreadable raises :class:`~lmrec.errors.DataError`
naming the file, the line and the fix: missing or empty files, binary data, Parquet
named ``.csv``, undecodable bytes, a repeated column name, a line with the wrong
number of fields (skipped and counted instead with ``on_invalid="drop"``), a quote
that is never closed.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import difflib
import gzip
import io
import lzma
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lmrec.data.lines import LineIndex, RowLocator
from lmrec.data.validate import (
    Locator,
    check_choice,
    decode_error,
    ragged_error,
    recbole_header,
    show,
)
from lmrec.data.vocabulary import fix, in_cli
from lmrec.errors import ConfigError, DataError

__all__ = ["FORMATS", "Source", "open_source"]

FORMATS = ("csv", "parquet", "recbole")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".dat": "csv",
    ".data": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".inter": "recbole",
    ".item": "recbole",
    ".user": "recbole",
}
# A file's decompressed bytes (typeshed's GzipFile is no typing.IO, the other openers' are).
ByteStream = IO[bytes] | gzip.GzipFile
_OPENERS: dict[str, Callable[..., ByteStream]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
#: Delimiters tried by the sniffer; on a tie in field count, earlier ones win.
_SNIFF = ("\t", ",", "::", ";", "|")
_SEP_NAMES = {"\t": "tab", ",": "comma", "::": "'::'", ";": "semicolon", "|": "pipe", " ": "space"}
_HEAD_BYTES = 1 << 16
_SUB = "\x1f"  # stands in for a multi-character delimiter (pyarrow takes one character)


# ====================================================================== detection
def format_of(path: Path, fmt: str | None) -> tuple[str, str | None]:
    """The format and compression suffix of ``path`` (``fmt`` overrides the suffix)."""
    suffixes = [s.lower() for s in path.suffixes]
    comp = suffixes[-1] if suffixes and suffixes[-1] in _OPENERS else None
    if fmt is not None:
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
            f"{known} (text may be .gz/.bz2/.xz compressed). Rename the file"
            + ("." if in_cli() else " or pass format='csv', 'parquet' or 'recbole'.")
        )
    return _SUFFIXES[suffix], comp


def check_file(path: Path) -> None:
    """A clear error for a missing or empty file (with similar names nearby)."""
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()], 3)
            hint = f" Similar files there: {', '.join(near)}." if near else ""
        raise DataError(f"{path}: file not found (looked in {path.resolve().parent}).{hint}")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); expected a header line and data rows.")


def open_bytes(path: Path, comp: str | None) -> ByteStream:
    """The file's bytes, decompressed."""
    return _OPENERS[comp](path, "rb") if comp else open(path, "rb")  # noqa: SIM115


def codec(encoding: str) -> str:
    """utf-8 reads as utf-8-sig, so a byte-order mark does not end up in the first column name."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _utf16(head: bytes) -> str | None:
    """The UTF-16 codec of a head that is UTF-16 text (by its mark or its zero bytes)."""
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = head[: 4096 - 4096 % 2]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _read_head(path: Path, comp: str | None) -> bytes:
    with open_bytes(path, comp) as fh:
        try:
            return fh.read(_HEAD_BYTES)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise DataError(f"{path}: cannot decompress ({e}); is the file truncated?") from e


def detect_encoding(path: Path, head: bytes, encoding: str) -> tuple[str, list[str]]:
    """The codec to read with, refusing binary files; notes say what was detected."""
    if head.startswith(b"PAR1"):
        raise DataError(
            f"{path} looks like a Parquet file, not text; name it .parquet"
            + ("." if in_cli() else " or pass format='parquet'.")
        )
    if head[:2] == b"\x1f\x8b":
        raise DataError(f"{path} is gzip-compressed; name it {path.name}.gz so it is decompressed.")
    if codecs.lookup(encoding).name == "utf-8":
        wide = _utf16(head)
        if wide:
            return wide, ["encoding detected: UTF-16 (read as text)"]
    if b"\x00" in head and "16" not in encoding and "32" not in encoding:
        raise DataError(
            f"{path} looks like a binary file (it contains NUL bytes), not delimited text. "
            "Pass a .csv/.tsv file, or name a Parquet file .parquet."
        )
    return codec(encoding), []


def _decode_head(path: Path, head: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        return decoder.decode(head, final=len(head) < _HEAD_BYTES)
    except UnicodeDecodeError as e:
        raise decode_error(path, head, e, encoding.replace("-sig", "")) from e


def locate_decode_error(path: Path, comp: str | None, encoding: str) -> DataError | None:
    """Find the first undecodable byte of a whole file (only after a read failed)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines = 0, 0
    with open_bytes(path, comp) as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                pos = max(e.start - len(decoder.getstate()[0]), 0)
                line = lines + chunk[:pos].count(b"\n") + 1
                return DataError(
                    f"{path}, line {line}: byte 0x{chunk[pos : pos + 1].hex()} at offset "
                    f"{offset + pos} is not valid {encoding.replace('-sig', '')} text. If the file "
                    f"is in another encoding, pass {fix('encoding', 'latin-1')} (or convert it: "
                    "iconv -f latin1 -t utf-8)."
                )
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return None


def normalise_sep(sep: str) -> str:
    """A delimiter from a name or an escape (``"tab"``, ``"\\t"``) or itself."""
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    sep = named.get(sep.lower(), sep) if isinstance(sep, str) else sep
    if not isinstance(sep, str) or not sep or sep in ("\n", "\r", '"'):
        raise ConfigError(f"sep must be a non-empty delimiter such as ',' or '\\t'; got {sep!r}.")
    return sep


def count_fields(line: str, sep: str, quoting: bool) -> int:
    """Fields of one line of text."""
    if len(sep) > 1 or not quoting:
        return len(line.split(sep))
    return len(next(csv.reader([line], delimiter=sep), []))


def sniff(head: str, truncated: bool) -> tuple[str | None, bool]:
    """Guess the delimiter from the first lines; returns (sep or None, certain)."""
    lines = head.splitlines()
    if truncated and lines:
        lines = lines[:-1]  # the last line may be cut off
    lines = [ln for ln in lines if ln.strip()][:20]
    if not lines:
        return None, False
    scored = []
    for rank, sep in enumerate(_SNIFF):
        counts = [count_fields(ln, sep, True) for ln in lines]
        if counts[0] < 2:
            continue
        consistent = all(c == counts[0] for c in counts)
        agree = sum(c == counts[0] for c in counts) / len(counts)
        scored.append(((consistent, agree, counts[0], -rank), sep))
    if not scored:
        return None, False
    best = max(scored)
    return best[1], best[0][0]


# ====================================================================== sources
@dataclass
class Table:
    """Columns read from a file, where they came from, and what was skipped."""

    table: Any  # pyarrow.Table
    locator: Locator
    n_skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)


@dataclass
class Source:
    """A file whose layout is known: its column names and how to read them.

    ``names`` are the file's column names (positions ``"0"``, ``"1"``, ... without a
    header); ``recbole_types`` the RecBole ``:type`` of each column of an atomic file.
    """

    path: Path
    kind: str
    names: list[str]
    header: bool
    notes: list[str] = field(default_factory=list)
    recbole_types: dict[str, str] | None = None
    comp: str | None = None
    encoding: str = "utf-8-sig"
    sep: str = ","
    quoting: bool = True

    # ------------------------------------------------------------------ whole file
    def read(self, columns: dict[str, Any], *, on_invalid: str = "raise") -> Table:
        """The named columns (name -> Arrow type, None to keep the file's) of every row."""
        if self.kind == "parquet":
            return self._read_parquet(columns)
        return self._read_text(columns, on_invalid)

    def _read_parquet(self, columns: dict[str, Any]) -> Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        text = [c for c, t in columns.items() if t == pa.dictionary(pa.int32(), pa.string())]
        try:
            table = pq.read_table(self.path, columns=list(columns), read_dictionary=text or None)
        except (OSError, ValueError, pa.ArrowException) as e:
            raise DataError(f"{self.path}: cannot read columns {list(columns)} ({e}).") from e
        if table.num_rows == 0:
            raise DataError(f"{self.path} has columns {self.names} but no data rows.")
        return Table(table, Locator(str(self.path)))

    def _text_data(self) -> tuple[Any, Any]:
        """What pyarrow reads, and the same bytes for quick scans (quotes, blank lines).

        A plain UTF-8 file is memory-mapped; anything else (compressed, another
        encoding, a multi-character delimiter) is decoded into memory as UTF-8 text.
        """
        import pyarrow as pa

        if self.comp is None and self.encoding == "utf-8-sig" and len(self.sep) == 1:
            with open(self.path, "rb") as fh:
                raw: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            return pa.py_buffer(raw), raw
        with open_bytes(self.path, self.comp) as fh:
            raw = fh.read()
        if self.encoding != "utf-8-sig" or len(self.sep) > 1:
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as e:
                raise decode_error(self.path, raw, e, self.encoding) from e
            if len(self.sep) > 1:
                if _SUB in text:
                    raise DataError(
                        f"{self.path} contains the control character 0x1f; it cannot be read."
                    )
                text = text.replace(self.sep, _SUB)
            raw = text.encode("utf-8")
        return pa.py_buffer(raw), raw

    def _options(self, columns: dict[str, Any], handler: Any, quoted: bool) -> dict[str, Any]:
        import pyarrow.csv as pcsv

        return {
            "read_options": pcsv.ReadOptions(
                use_threads=True,
                column_names=self.names,
                skip_rows=int(self.header),
                block_size=1 << 22,
            ),
            "parse_options": pcsv.ParseOptions(
                delimiter=_SUB if len(self.sep) > 1 else self.sep,
                quote_char='"' if self.quoting else False,
                newlines_in_values=quoted,
                ignore_empty_lines=True,
                invalid_row_handler=handler,
            ),
            "convert_options": pcsv.ConvertOptions(
                include_columns=list(columns),
                column_types={c: t for c, t in columns.items() if t},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[""],
                check_utf8=True,
            ),
        }

    def _read_text(self, columns: dict[str, Any], on_invalid: str) -> Table:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        bad_rows: list[Any] = []

        def handler(row: Any) -> str:
            bad_rows.append(row)
            return "skip" if on_invalid == "drop" else "error"

        buffer, raw = self._text_data()
        scan = _Scan(raw)
        quoted = self.quoting and scan.has_quote
        try:
            table = pcsv.read_csv(
                pa.BufferReader(buffer), **self._options(columns, handler, quoted)
            )
        except pa.ArrowInvalid as e:
            raise self._read_error(e, bad_rows) from e
        lines = self.line_index()
        locator = RowLocator(str(self.path), lines)
        n_skipped, examples = len(bad_rows), []
        if bad_rows:
            for row, line, n, text in lines.ragged(5):
                examples.append(
                    f"row {row} (line {line}): the line has {n} field(s) but the file "
                    f"has {len(self.names)} columns: {show(text)}"
                )
        if table.num_rows == 0 and not bad_rows:
            what = (
                f"a header ({', '.join(map(repr, self.names))})"
                if self.header
                else "only blank lines"
            )
            raise DataError(f"{self.path} has {what} but no data rows.")
        if quoted and table.num_rows:
            self._check_unclosed_quote(table, raw, locator)
        # Every line is a header or a row (the common case): no blank line to look for.
        if scan.n_lines != table.num_rows + n_skipped + int(self.header):
            self._note_blank_lines(raw)
        return Table(table, locator, n_skipped, examples)

    def _read_error(self, e: Exception, bad_rows: list[Any]) -> DataError:
        msg = str(e)
        if bad_rows:
            found = self.line_index().ragged(1)
            if found:
                row, line, n, text = found[0]
                return ragged_error(self.path, f"row {row} (line {line})", n, len(self.names), text)
            r = bad_rows[0]
            return ragged_error(self.path, "a row", r.actual_columns, r.expected_columns, r.text)
        if "UTF8" in msg or "utf8" in msg.lower():
            located = locate_decode_error(self.path, self.comp, self.encoding)
            if located:
                return located
        return DataError(f"{self.path}: cannot parse the file as delimited text ({msg.strip()}).")

    def _check_unclosed_quote(self, table: Any, raw: Any, locator: Locator) -> None:
        import pyarrow as pa

        last = table.slice(table.num_rows - 1)
        cells = [c[0].as_py() for c in last.columns if pa.types.is_string(c.type)]
        if not any(isinstance(v, str) and "\n" in v for v in cells):
            return
        if bytes(raw).count(b'"') % 2:
            line = locator.line(table.num_rows - 1)
            raise DataError(
                f'{self.path}, line {line}: a quote (") opened on or near this line is never '
                "closed, so the rest of the file reads as one value. Close or remove the quote."
            )

    def _note_blank_lines(self, raw: Any) -> None:
        if raw.find(b"\n\n") < 0 and raw.find(b"\n\r\n") < 0:
            return
        lines: list[int] = []
        pos = 0
        normal = bytes(raw).replace(b"\r\n", b"\n")
        n = normal.count(b"\n\n") + int(normal.startswith(b"\n"))
        while len(lines) < 5 and (pos := normal.find(b"\n\n", pos)) >= 0:
            lines.append(normal.count(b"\n", 0, pos + 1) + 1)
            pos += 1
        shown = ", ".join(map(str, lines)) + (", ..." if n > 5 else "")
        self.notes.append(f"skipped {n} blank line(s) (line(s) {shown})")

    def line_index(self) -> LineIndex:
        """Row -> line mapping of this file (scanned lazily)."""
        if not hasattr(self, "_lines"):

            def open_text() -> IO[str]:
                return io.TextIOWrapper(
                    open_bytes(self.path, self.comp),
                    encoding=self.encoding,
                    errors="replace",
                    newline="",
                )

            self._lines = LineIndex(open_text, self.sep, self.quoting, len(self.names), self.header)
        return self._lines

    # ------------------------------------------------------------------ chunks
    def batches(self, columns: dict[str, Any], chunk_rows: int) -> Iterator[tuple[Any, Locator]]:
        """Record batches of about ``chunk_rows`` rows, each with its locator."""
        if self.kind == "parquet":
            yield from self._parquet_batches(columns, chunk_rows)
            return
        import pyarrow as pa
        import pyarrow.csv as pcsv

        bad_rows: list[Any] = []

        def handler(row: Any) -> str:
            bad_rows.append(row)
            return "error"

        if self.comp is None and self.encoding == "utf-8-sig" and len(self.sep) == 1:
            # A plain file streams from disk (a memory map would count it all in RSS).
            source: Any = str(self.path)
            quoted = self.quoting and _file_has_quote(self.path)
        else:
            buffer, raw = self._text_data()
            source, quoted = pa.BufferReader(buffer), self.quoting and _Scan(raw).has_quote
        opts = self._options(columns, handler, quoted)
        opts["read_options"].block_size = max(1 << 16, chunk_rows * 32)
        try:
            reader = pcsv.open_csv(source, **opts)
            base, lines = 0, self.line_index()
            for batch in reader:
                yield batch, RowLocator(str(self.path), lines, offset=base)
                base += batch.num_rows
        except pa.ArrowInvalid as e:
            raise self._read_error(e, bad_rows) from e

    def _parquet_batches(
        self, columns: dict[str, Any], chunk_rows: int
    ) -> Iterator[tuple[Any, Locator]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        text = [c for c, t in columns.items() if t == pa.dictionary(pa.int32(), pa.string())]
        pf = pq.ParquetFile(self.path, read_dictionary=text or None)
        base = 0
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(columns)):
            yield batch, Locator(str(self.path), offset=base)
            base += batch.num_rows


class _Scan:
    """Facts about a file's bytes from one vectorised pass: a quote anywhere, lines."""

    def __init__(self, raw: Any) -> None:
        import numpy as np

        data = np.frombuffer(raw, np.uint8)
        self.has_quote = bool(len(data)) and bool((data == ord('"')).any())
        newlines = int(np.count_nonzero(data == ord("\n")))
        last = int(data[-1]) if len(data) else ord("\n")
        self.n_lines = newlines + int(last not in (ord("\n"), ord("\r")))


def _file_has_quote(path: Path) -> bool:
    """Whether a file holds a '"' anywhere (then values may span lines), read in blocks."""
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            if b'"' in block:
                return True
    return False


# ====================================================================== opening
def open_source(
    path: Path, *, fmt: str | None, sep: str | None, header: bool, encoding: str
) -> Source:
    """Look at a file once and describe how to read it (see the module docstring)."""
    check_file(path)
    kind, comp = format_of(path, fmt)
    if kind == "parquet":
        return _parquet_source(path)
    head_bytes = _read_head(path, comp)
    enc, notes = detect_encoding(path, head_bytes, encoding)
    head = _decode_head(path, head_bytes, enc)
    truncated = len(head_bytes) >= _HEAD_BYTES
    if sep is not None:
        sep = normalise_sep(sep)
    elif kind == "recbole":
        sep = "\t"
    else:
        sep, certain = sniff(head, truncated)
        if sep is None:
            sep = ","
            notes.append("no delimiter detected; the file was read as a single column")
        else:
            notes.append(f"delimiter detected: {_SEP_NAMES[sep]}")
            if not certain:
                notes.append("lines have different field counts; the delimiter guess is uncertain")
    # RecBole and '::' files (MovieLens 1M) do not quote values; a stray '"' is literal there.
    quoting = not (kind == "recbole" or sep == "::")
    first = next((ln for ln in head.splitlines() if ln.strip()), None)
    if first is None:
        raise DataError(f"{path} contains no data (only blank lines).")
    if len(sep) > 1 or not quoting:
        fields = first.split(sep)
    else:
        fields = next(csv.reader([first], delimiter=sep))
    if header:
        # A second byte-order mark (UTF-8 text with a BOM saved again as UTF-16) is no name.
        names = [f.strip() for f in fields]
        names[0] = names[0].lstrip("\ufeff").strip()
        _check_names(path, names)
    else:
        names = [str(i) for i in range(len(fields))]
    recbole_types = None
    if kind == "recbole":
        names, recbole_types = recbole_header(path, names)
    return Source(path, kind, names, header, notes, recbole_types, comp, enc, sep, quoting)


def _check_names(path: Path, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for pos, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"{path}, line 1: the header names column {name!r} twice (fields {seen[name] + 1} "
                f"and {pos + 1}), so it is not clear which one to read. Rename one of them."
            )
        seen[name] = pos


def _parquet_source(path: Path) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
    except (OSError, ValueError, pa.ArrowException) as e:  # ArrowInvalid is a ValueError
        raise DataError(
            f"{path} is not a readable Parquet file ({e}). Check that the file is complete; "
            "if it is text, name it .csv" + ("." if in_cli() else " or pass format='csv'.")
        ) from e
    names = [n for n in schema.names if not n.startswith("__index_level_")]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise DataError(f"{path}: the file has two columns named {dup!r}; rename one of them.")
    return Source(path, "parquet", names, True)
