"""Physical lines of text files, found only when a message needs one.

pyarrow's CSV reader gives rows, not lines: a blank line or a quoted value with a
newline shifts every later line, and a line with the wrong number of fields (skipped
under ``on_invalid="drop"``) shifts the rows. :class:`LineIndex` re-reads the file
with Python's csv module, lazily and only as far as a message needs, to say
"row 5 (line 6)".
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import IO

from lmrec.data.validate import Locator

__all__ = ["LineIndex", "RowLocator"]


class LineIndex:
    """Data rows of a text file -> (row number, physical line), scanned only when asked.

    A row is a non-blank record after the header; a quoted value with a newline makes
    one record span several lines. Records with the wrong number of fields (skipped
    by the parser under ``on_invalid="drop"``) keep their row number but are not table
    rows, so the n-th table row is the n-th record with the right number of fields.
    """

    def __init__(
        self,
        open_text: Callable[[], IO[str]],
        sep: str,
        quoting: bool,
        n_columns: int,
        header: bool,
    ) -> None:
        self._open_text, self._sep, self._quoting = open_text, sep, quoting
        self._n_columns, self._header = n_columns, header
        self._rows: list[tuple[int, int]] = []
        self._scan: Iterator[tuple[int, int, list[str], str]] | None = None

    def records(self) -> Iterator[tuple[int, int, list[str], str]]:
        """(row, first line, fields, text of the first line) of every non-blank record."""
        with self._open_text() as fh:
            parsed: Iterator[tuple[int, int, list[str], str]]
            if len(self._sep) > 1 or not self._quoting:
                lines = (ln.rstrip("\r\n") for ln in fh)
                parsed = ((i, i, ln.split(self._sep), ln) for i, ln in enumerate(lines, 1) if ln)
            else:
                parsed = self._csv_records(fh)
            row = 0
            for n, (line, _, fields, text) in enumerate(parsed):
                if n == 0 and self._header:
                    continue
                row += 1
                yield row, line, fields, text

    def _csv_records(self, fh: IO[str]) -> Iterator[tuple[int, int, list[str], str]]:
        first_lines: list[str] = []

        def counted() -> Iterator[str]:
            for ln in fh:
                first_lines.append(ln)
                yield ln

        reader = csv.reader(counted(), delimiter=self._sep)
        start = 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            text = first_lines[0].rstrip("\r\n") if first_lines else ""
            first_lines.clear()
            if fields:
                yield line, line, fields, text

    def locate(self, record: int) -> tuple[int, int]:
        """(1-based row, 1-based line) of the table row ``record`` (0-based)."""
        if self._scan is None:
            self._scan = self.records()
        while len(self._rows) <= record:
            found = next(self._scan, None)
            if found is None:
                return record + 1, -1
            row, line, fields, _ = found
            if len(fields) == self._n_columns or self._n_columns == 0:
                self._rows.append((row, line))
        return self._rows[record]

    def line(self, record: int) -> int | None:
        line = self.locate(record)[1]
        return None if line < 0 else line

    def ragged(self, limit: int) -> list[tuple[int, int, int, str]]:
        """(row, line, fields, text) of the first ``limit`` records of the wrong width."""
        out = []
        for row, line, fields, text in self.records():
            if len(fields) != self._n_columns:
                out.append((row, line, len(fields), text))
                if len(out) >= limit:
                    break
        return out


class RowLocator(Locator):
    """A Locator whose rows come from a :class:`LineIndex` (rows skip ragged records)."""

    def where(self, pos: int) -> str:
        if not isinstance(self.lines, LineIndex):
            return super().where(pos)
        row, line = self.lines.locate(self.offset + int(pos))
        return f"row {row}" if line < 0 else f"row {row} (line {line})"
