"""Reading interaction files into canonical frames or data sets, with reports.

Supported inputs: delimited text (``.csv``, ``.tsv``, ``.txt``, ``.dat``, ``.data``,
optionally ``.gz``/``.bz2``/``.xz`` compressed; UTF-8 with or without a byte-order
mark, UTF-16, or another ``encoding``), Parquet (``.parquet``, ``.pq`` or a directory
of Parquet files) and RecBole atomic files (``.inter``, ``.item``, ``.user``).

Ids keep their type: a column of integers gives integer ids, any other column text
ids read exactly as written (``"007"`` stays ``"007"``); see
:mod:`lmrec.data.idmap`. Files are read by pyarrow's multithreaded readers
(:mod:`lmrec.data.readers`) and checked in one step shared with
:func:`lmrec.data.ingest.ingest` (:mod:`lmrec.data.rows`).

Every problem raises :class:`~lmrec.errors.DataError` naming the file, the data row
and the line, the column, and how to fix it; ``on_invalid="drop"`` skips bad rows
and counts them in the :class:`LoadReport` instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.catalogs import read_items, read_users
from lmrec.data.dataset import Dataset
from lmrec.data.readers import Source, open_source
from lmrec.data.rows import Rows, check_rows, merge_duplicates, rows_to_dataset, rows_to_frame
from lmrec.data.timestamps import TimestampParser
from lmrec.data.validate import (
    DUPLICATE_POLICIES,
    ON_INVALID,
    ON_OVERFLOW,
    ColumnSpec,
    check_choice,
    check_coverage,
    coverage_notes,
    resolve_columns,
)
from lmrec.data.vocabulary import fix
from lmrec.errors import DataError, DataWarning

__all__ = [
    "LoadReport",
    "check_coverage",
    "load_dataset",
    "read_interactions",
    "read_items",
    "read_users",
]


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
    timestamp_format: str | None = None,
    on_overflow: str = "raise",
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
        present unless given. Timestamps may be epoch numbers or dates (taken as UTC);
        see ``timestamp_format``. Weights and ratings are stored as float32.
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
        Text encoding (MovieLens-1M's ``movies.dat`` needs ``"latin-1"``). UTF-16 files
        are recognised by their byte-order mark or zero bytes.
    timestamp_format : str, optional
        The timestamp column's one format: an epoch unit (``"s"``, ``"ms"``, ``"us"``,
        ``"ns"``), ``"iso"`` (ISO 8601) or a strftime layout such as ``"%d/%m/%Y"``.
        By default it is decided from the whole column (:mod:`lmrec.data.timestamps`);
        mixed units and implausible dates are invalid rows either way.
    on_overflow : {"raise", "clip"}, default "raise"
        A weight or rating that float32 cannot hold (beyond +-3.4e38, or so small it
        would round to 0) is an invalid row, or is clipped into range and counted.

    Returns
    -------
    frame : DataFrame
        Columns ``user``, ``item`` (external ids: int64 when the column holds integers,
        else python ``str`` in an object column) and, when
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
    rows, report = _read_rows(
        path,
        user=user,
        item=item,
        rating=rating,
        weight=weight,
        timestamp=timestamp,
        sep=sep,
        header=header,
        fmt=format,
        duplicates=duplicates,
        on_invalid=on_invalid,
        encoding=encoding,
        timestamp_format=timestamp_format,
        on_overflow=on_overflow,
    )
    return rows_to_frame(rows), report


def _roles(source: Source, specs: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
    """Role defaults that depend on the file: positions without a header, RecBole names."""
    specs = dict(specs)
    if not source.header:
        specs["user"] = 0 if specs["user"] == "user" else specs["user"]
        specs["item"] = 1 if specs["item"] == "item" else specs["item"]
    if source.recbole_types is not None:
        cols = set(source.names)
        for role, name in (("user", "user_id"), ("item", "item_id")):
            if specs[role] == role and role not in cols:
                specs[role] = name
        for role in ("rating", "timestamp"):
            if specs[role] is None and role in cols:
                specs[role] = role
    return specs


def _read_rows(
    path: str | Path,
    *,
    fmt: str | None,
    sep: str | None,
    header: bool,
    duplicates: str,
    on_invalid: str,
    encoding: str,
    timestamp_format: str | None,
    on_overflow: str,
    merge: bool = True,
    **specs: ColumnSpec,
) -> tuple[Rows, LoadReport]:
    """Read, check and (with ``merge``) merge the interaction rows of one file.

    See :func:`read_interactions`. Without ``merge`` the caller finds repeated pairs
    itself (:func:`load_dataset` does, in the sort it needs anyway).
    """
    import pyarrow as pa

    check_choice(duplicates, DUPLICATE_POLICIES, "duplicates")
    check_choice(on_invalid, ON_INVALID, "on_invalid")
    check_choice(on_overflow, ON_OVERFLOW, "on_overflow")
    parser = TimestampParser("timestamp", timestamp_format)  # checks the format early
    path = Path(path)
    source = open_source(path, fmt=fmt, sep=sep, header=header, encoding=encoding)
    found = resolve_columns(path, source.names, source.header, _roles(source, specs))
    notes = list(source.notes)
    notes.append("columns used: " + ", ".join(f"{r}={c!r}" for r, c in found.items()))
    unused = [c for c in source.names if c not in found.values()]
    if unused:
        notes.append(f"columns ignored: {', '.join(repr(c) for c in unused)}")
    # Text columns are read as text and typed by the checks: ids "007" stay text, and a
    # rating column of "4" is known to hold integers (split writes them back as such).
    types = {col: None if source.kind == "parquet" else pa.string() for col in found.values()}
    n_source_notes = len(source.notes)
    table = source.read(types, on_invalid=on_invalid)
    if "timestamp" in found:
        parser.column = found["timestamp"]
    rows = check_rows(
        table.table,
        found,
        table.locator,
        on_invalid=on_invalid,
        on_overflow=on_overflow,
        timestamps=parser,
        typed=source.kind == "parquet",
    )
    notes += source.notes[n_source_notes:]
    n_rows = rows.n_read + table.n_skipped
    n_dropped = rows.n_dropped + table.n_skipped
    examples = (table.skipped_examples + rows.examples)[:5]
    if n_dropped:
        warnings.warn(
            f"{path}: dropped {n_dropped} invalid row(s) ({fix('on_invalid', 'drop')}), "
            f"e.g. {examples[0]}",
            DataWarning,
            stacklevel=3,
        )
    if len(rows) == 0 and not examples:
        raise DataError(f"{path} has no data rows: its {n_rows} row(s) hold only delimiters.")
    if len(rows) == 0:
        raise DataError(
            f"{path}: all {n_rows} row(s) are invalid, e.g. {examples[0]}; nothing is left to read."
        )
    n_dup = 0
    if merge:
        rows, n_dup = merge_duplicates(rows, duplicates, on_overflow)
    elif duplicates == "sum" and "weight" not in rows.values:
        rows.values["weight"] = np.ones(len(rows), np.float64)  # as merge_duplicates does
    report = LoadReport(
        path=str(path),
        n_rows_read=n_rows,
        n_interactions=len(rows),
        n_duplicates=n_dup,
        duplicate_policy=duplicates,
        n_dropped_invalid=n_dropped,
        dropped_examples=examples,
        notes=notes + rows.notes,
    )
    return rows, report


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
    rows, report = _read_rows(path, **_read_options(read_kwargs), merge=False)
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
    used = {"user": rows.user.external(), "item": rows.item.external()}
    notes = coverage_notes(used, items=tables["item"], users=tables["user"])
    label = name or path.name.split(".")[0]
    dataset = rows_to_dataset(rows, items=tables["item"], users=tables["user"], name=label)
    if dataset is None:  # repeated pairs: merge them by the policy (or name them), build again
        options, n_notes = _read_options(read_kwargs), len(rows.notes)
        rows, n_dup = merge_duplicates(rows, options["duplicates"], options["on_overflow"])
        report = replace(
            report,
            n_duplicates=n_dup,
            n_interactions=len(rows),
            notes=report.notes + rows.notes[n_notes:],
        )
        dataset = rows_to_dataset(rows, items=tables["item"], users=tables["user"], name=label)
    if dataset is None:
        raise DataError(f"{path}: (user, item) pairs still repeat after merging duplicates.")
    notes.append(
        f"data set: {dataset.n_users:,} users, {dataset.n_items:,} items, "
        f"{dataset.n_interactions:,} interactions"
    )
    return dataset, replace(report, notes=[*report.notes, *notes])


_READ_DEFAULTS: dict[str, Any] = {
    "user": "user",
    "item": "item",
    "rating": None,
    "weight": None,
    "timestamp": None,
    "sep": None,
    "header": True,
    "fmt": None,
    "duplicates": "raise",
    "on_invalid": "raise",
    "encoding": "utf-8",
    "timestamp_format": None,
    "on_overflow": "raise",
}


def _read_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """:func:`read_interactions` keywords as :func:`_read_rows` takes them."""
    kwargs = dict(kwargs)
    if "format" in kwargs:
        kwargs["fmt"] = kwargs.pop("format")
    unknown = sorted(set(kwargs) - set(_READ_DEFAULTS))
    if unknown:
        raise TypeError(f"load_dataset() got unexpected keyword argument(s): {', '.join(unknown)}")
    return {**_READ_DEFAULTS, **kwargs}
