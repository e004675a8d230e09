"""Item and user catalogs, and plain id lists, read with the interaction files' readers.

A catalog is a table indexed by external id (:func:`read_items`, :func:`read_users`);
an id list is one id per line or a CSV with an id column (:func:`read_id_list`, what
``lmrec recommend --users`` reads). Both go through :func:`lmrec.data.readers.open_source`,
so encodings (a UTF-8 byte-order mark, UTF-16), compression and delimiters are handled
as for interactions, and ids are coded by :func:`lmrec.data.columns.code_ids` (an id
column of integers gives integer ids).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.columns import code_ids
from lmrec.data.numbers import parse_numbers
from lmrec.data.readers import Source, open_source
from lmrec.data.validate import Locator, resolve_columns, resolve_issues
from lmrec.errors import DataError

__all__ = ["read_id_list", "read_items", "read_users"]


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
    """Read an item catalog: a table indexed by external item id, other columns kept.

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
        Indexed by item id (index name ``"item"``; int64 ids when the column holds
        integers, else ``str``). Text-file columns whose values are all numbers
        (without leading zeros) become numeric; RecBole ``float`` columns
        are numeric and ``token``/``token_seq`` columns stay strings.

    Raises
    ------
    DataError
        Missing file or column, an empty id or a repeated id (the rows are named).
    """
    return _read_table(
        path,
        role="item",
        id_col=id_col,
        sep=sep,
        fmt=format,
        header=header,
        text_cols=text_cols,
        encoding=encoding,
    )


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
        path,
        role="user",
        id_col=id_col,
        sep=sep,
        fmt=format,
        header=header,
        text_cols=None,
        encoding=encoding,
    )


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
    import pyarrow as pa

    path = Path(path)
    source = open_source(path, fmt=fmt, sep=sep, header=header, encoding=encoding)
    if not header and id_col == role:
        id_col = 0
    if source.recbole_types is not None and id_col == role and role not in source.names:
        id_col = f"{role}_id"
    col = resolve_columns(path, source.names, source.header, {role: id_col})[role]
    text_cols = list(text_cols or [])
    absent = [c for c in text_cols if c not in source.names]
    if absent:
        listed = ", ".join(repr(c) for c in source.names)
        raise DataError(f"{path}: text column(s) {absent} not found; the columns are {listed}.")
    string = None if source.kind == "parquet" else pa.string()
    read = source.read({name: string for name in source.names})
    table, locator = read.table, read.locator
    ids = _ids(table.column(col), col, role, locator, typed=source.kind == "parquet")
    out = {}
    for name in source.names:
        if name == col:
            continue
        arr = table.column(name)
        if name in text_cols:
            values = arr.to_pandas().astype(object)
            out[name] = values.where(values.notna(), "").astype(str).to_numpy(dtype=object)
        elif source.recbole_types is not None:
            out[name] = _recbole_column(arr, source.recbole_types.get(name, "token"), name, locator)
        elif source.kind == "parquet":
            out[name] = arr.to_pandas().to_numpy()
        else:
            out[name] = infer_column(arr)
    index = pd.Index(ids, name=role)
    return pd.DataFrame(out, index=index, columns=[n for n in source.names if n != col])


def _ids(arr: Any, col: str, role: str, locator: Locator, *, typed: bool) -> np.ndarray:
    """One external id per row (missing ids and repeated ids are errors naming the rows)."""
    coded = code_ids(arr, col, role, locator, infer_ints=not typed)
    resolve_issues(
        coded.issues(col, role),
        locator,
        len(coded.codes),
        "raise",
        hint=f"Every {role} needs an id.",
    )
    ids = coded.external()[coded.codes]
    if len(coded.problems) < len(ids):
        counts = np.bincount(coded.codes, minlength=len(coded.values))
        repeated = np.flatnonzero(counts > 1)
        first_code = coded.codes[np.isin(coded.codes, repeated)][0]
        where = " and ".join(
            locator.where(int(p)) for p in np.flatnonzero(coded.codes == first_code)[:3]
        )
        raise DataError(
            f"{locator.path}: {len(repeated)} {role} id(s) appear more than once, e.g. "
            f"{str(coded.value(int(first_code)))!r} at {where}. Each {role} needs exactly one row in "
            "the table: remove or merge the repeats."
        )
    return ids


def infer_column(arr: Any) -> np.ndarray:
    """Numbers when every non-empty cell is one (and none has a leading zero), else text.

    Integers stay exact int64 (no float round trip) when no cell is empty.
    """
    text = pd.Series(arr.to_pylist(), dtype=object).str.strip()
    empty = (text == "").to_numpy(bool)
    filled = text[~empty]
    values = text.to_numpy(dtype=object, copy=True)
    values[empty] = None
    if len(filled) == 0 or filled.str.match(r"^[+-]?0\d").any():
        return values
    num = pd.to_numeric(filled, errors="coerce")
    if num.isna().any():
        return values
    if not empty.any() and num.dtype.kind == "i" and not filled.str.contains(r"[.eE]").any():
        return num.to_numpy(np.int64)
    out = np.full(len(text), np.nan)
    out[~empty] = num.to_numpy(dtype=np.float64)
    if not empty.any() and np.all(np.mod(out, 1) == 0) and not filled.str.contains(r"[.eE]").any():
        return out.astype(np.int64)
    return out


def _recbole_column(arr: Any, typ: str, name: str, locator: Locator) -> np.ndarray:
    """A RecBole attribute column: numbers for ``float``, text for the token types."""
    if typ != "float":
        return np.asarray(arr.to_pylist(), dtype=object)
    nums = parse_numbers(arr, name, "value", float32=False)
    # Missing, NaN and infinite values are allowed in attributes; text is not.
    garbage = [i for i in nums.issues if i.kind == "not a number"]
    if garbage and garbage[0].mask.any():
        pos = int(np.flatnonzero(garbage[0].mask)[0])
        raise DataError(
            f"{locator.path}, {locator.where(pos)}, {garbage[0].text(pos)}; RecBole ':float' "
            "columns hold numbers only."
        )
    return nums.values


def read_id_list(path: str | Path, *, column: str = "user", encoding: str = "utf-8") -> np.ndarray:
    """Distinct ids from a file: one id per line, or a CSV/Parquet file with an id ``column``.

    The file is read like an interaction file (a UTF-8 byte-order mark, UTF-16, blank
    lines and surrounding blanks are handled), so the first id of a file saved by a
    spreadsheet is the id, not ``"\ufeff7"``. Ids keep their type (integers when every
    id is one). Order of first appearance is kept.

    Raises
    ------
    DataError
        The file is missing or empty, has a header row without ``column``, or an id
        is missing.
    """
    path = Path(path)
    source = _list_source(path, column, encoding)
    col = column if source.header else "0"
    if col not in source.names:
        listed = ", ".join(repr(c) for c in source.names)
        raise DataError(
            f"{path} looks like a table (columns {listed}) but has no {column!r} column; "
            f"pass a file with a {column!r} column or one id per line."
        )
    import pyarrow as pa

    read = source.read({col: None if source.kind == "parquet" else pa.string()})
    coded = code_ids(
        read.table.column(col), col, column, read.locator, infer_ints=source.kind != "parquet"
    )
    resolve_issues(
        coded.issues(col, column),
        read.locator,
        len(coded.codes),
        "raise",
        hint=f"Remove the empty line or give every {column} an id.",
    )
    return coded.external()


def _list_source(path: Path, column: str, encoding: str) -> Source:
    """A one-column list has no header (unless its first line is the column name)."""
    suffix = path.suffix.lower()
    fmt = None if suffix in (".csv", ".tsv", ".parquet", ".pq", ".gz", ".bz2", ".xz") else "csv"
    source = open_source(path, fmt=fmt, sep=None, header=True, encoding=encoding)
    if source.kind == "parquet" or len(source.names) > 1 or source.names == [column]:
        return source
    return open_source(path, fmt=fmt, sep=None, header=False, encoding=encoding)
