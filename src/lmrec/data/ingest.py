"""Out-of-core ingest: stream chunked Parquet/CSV files into a :class:`Dataset`.

:func:`lmrec.data.load_dataset` reads a whole file into pandas, external-id strings
and all. :func:`ingest` reads ``chunk_rows`` rows at a time with pyarrow
(``ParquetFile.iter_batches`` / ``pyarrow.csv.open_csv``) and keeps only compact
columns between chunks:

1. about four chunks at a time go through the readers' one validation step
   (:func:`lmrec.data.rows.check_rows`, the same checks and messages as
   :func:`lmrec.data.load_dataset`): ids are coded per distinct value (Parquet text
   ids are read as dictionary arrays, whose dictionaries are merged), numbers
   checked, timestamps read in the column's one format; the group's *distinct* ids
   are looked up, each new one getting the next code of its id kind
   (:class:`_IdTable`); a row's two int32 codes are packed into one int64;
2. after the last chunk the distinct ids are sorted -- the canonical order of
   :meth:`IdMap.from_values` -- and each packed pair is replaced, in place, by the
   sort key ``user_idx * n_items + item_idx``;
3. the keys are sorted in place, duplicate pairs merged by ``duplicates``, the CSR
   row pointers found by binary search and the item column written over the keys'
   own memory; :meth:`Dataset.from_csr` adopts the arrays without copying them.

The result equals ``load_dataset(path, duplicates=...)[0]`` on the same data (same id
maps, same interaction table, same matrix); ``tests/test_ingest.py`` checks it.

Memory: one int64 per row (8 bytes; the CSR needs 8: int32 item + float32 weight)
plus the id maps (a Python string and dict entry per distinct id) and a few chunks
of arrow data (a group of about four being coded, two more read ahead). Rows are
appended to one growable buffer (``realloc``, no concatenation copy), preallocated
exactly for Parquet (row counts from the footers). Without weights/timestamps and
repeated pairs, the peak RSS increase was 1.7x the final CSR at 100M interactions
and about 3.6x at 10M, where the fixed costs (arrow pool, id maps) dominate; weights
or timestamps add a stable ``argsort`` (8 bytes per row) and the columns themselves,
repeated pairs a group-start array (``benchmarks/results/scaling.md``).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmrec._checks import check_int
from lmrec.data._inplace import _Column, _group_starts, _items_in_place, _sort_in_place
from lmrec.data.columns import IdColumn
from lmrec.data.dataset import Dataset
from lmrec.data.export import SourceColumns
from lmrec.data.idmap import IdMap, text_order
from lmrec.data.readers import open_source
from lmrec.data.rows import check_rows
from lmrec.data.timestamps import TimestampParser
from lmrec.data.validate import ON_INVALID, ON_OVERFLOW, Locator, check_choice, resolve_columns
from lmrec.data.vocabulary import fix
from lmrec.errors import ConfigError, DataError

__all__ = ["INGEST_DUPLICATES", "ingest"]

#: Duplicate (user, item) policies of :func:`ingest`.
INGEST_DUPLICATES = ("sum", "last", "first", "max", "raise")
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".tsv", ".txt")
_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _files(paths: str | Path | Sequence[str | Path], user: str, item: str) -> list[Path]:
    """Input files in order: a directory means its Parquet (else CSV) files, sorted by name.

    In a directory, Parquet files without both id columns (e.g. ``items.parquet``
    written by ``lmrec synth``) are skipped.
    """
    import pyarrow.parquet as pq

    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise ConfigError("ingest needs at least one file or directory; got none.")
    out: list[Path] = []
    for p in map(Path, items):
        if not p.exists():
            raise DataError(f"{p}: file not found.")
        if not p.is_dir():
            out.append(p)
            continue
        found = sorted(f for f in p.iterdir() if f.suffix.lower() in _PARQUET)
        found = [f for f in found if {user, item} <= set(pq.read_schema(f).names)]
        if not found:
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in _CSV)
        if not found:
            raise DataError(
                f"{p} holds no Parquet files with columns {user!r}, {item!r} and no CSV."
            )
        out.extend(found)
    return out


class _IdTable:
    """First-appearance codes of the ids seen so far in one id column.

    Every chunk of a big log meets most of the catalog again, so looking up each
    chunk's distinct ids one by one in a Python dict made ingest grow faster than
    linearly. Integer ids stay numbers and are looked up in a sorted array
    (``searchsorted``); text ids are looked up with Arrow's hash kernel
    (``pyarrow.compute.index_in``) when the chunk's distinct ids are not much fewer than
    the ids known so far, and in the dict otherwise (then building the hash set would
    cost more than the lookups). A column that mixes both (an integer Parquet file and
    a CSV file) switches to text, integers as their digits, which is how they compare in
    :class:`~lmrec.data.IdMap`.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every id (frees the lookup structures)."""
        self.text: dict[str, int] | None = None  # text mode: id -> code
        self.text_chunks: list[Any] = []  # text mode: Arrow arrays of the ids in code order
        self.known: Any = None  # their concatenation, built on demand
        self.sorted_ids = np.empty(0, np.int64)  # integer mode
        self.sorted_codes = np.empty(0, np.int32)
        self.new_ids: list[np.ndarray] = []  # integer mode: ids in code order, by chunk
        self.n = 0  # integer ids coded so far

    def codes_of(self, column: IdColumn) -> np.ndarray:
        """Codes (int32) of a coded column's distinct values, giving new ids the next codes."""
        if column.is_int:
            return self.codes_of_ints(column.values)
        return self.codes_of_text(column.values)

    def codes_of_ints(self, values: np.ndarray) -> np.ndarray:
        """Codes (int32) of distinct int64 ``values``, giving new ids the next codes."""
        if self.text is not None:
            import pyarrow as pa

            return self.codes_of_text(pa.array(values.astype(str).tolist(), pa.string()))
        pos = np.searchsorted(self.sorted_ids, values)
        found = pos < len(self.sorted_ids)
        found[found] = self.sorted_ids[pos[found]] == values[found]
        codes = np.empty(len(values), np.int32)
        codes[found] = self.sorted_codes[pos[found]]
        fresh = values[~found]
        codes[~found] = np.arange(self.n, self.n + len(fresh), dtype=np.int32)
        if len(fresh):
            order = np.argsort(fresh)
            at = np.searchsorted(self.sorted_ids, fresh[order])
            self.sorted_ids = np.insert(self.sorted_ids, at, fresh[order])
            self.sorted_codes = np.insert(self.sorted_codes, at, codes[~found][order])
            self.new_ids.append(fresh)
            self.n += len(fresh)
        return codes

    def codes_of_text(self, values: Any) -> np.ndarray:
        """Codes (int32) of distinct ids (an Arrow string array), giving new ids the next codes."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.text is None:
            ids = self.ids().tolist()
            self.clear()
            self.text = dict(zip(ids, range(len(ids)), strict=True))
            self.text_chunks = [pa.array(ids, pa.string())] if ids else []
        table = self.text
        n_old = len(table)
        if n_old and n_old <= 4 * len(values):
            if self.known is None:
                self.known = pa.concat_arrays(self.text_chunks)
                self.text_chunks = [self.known]
            idx = pc.index_in(values, value_set=self.known)
            codes = idx.fill_null(-1).to_numpy().astype(np.int32)
            is_new = codes < 0
            fresh = values.filter(pa.array(is_new))
            codes[is_new] = np.arange(n_old, n_old + len(fresh), dtype=np.int32)
            table.update(zip(fresh.to_pylist(), range(n_old, n_old + len(fresh)), strict=True))
        else:
            # setdefault's len(table) is evaluated before the insertion: new ids get the next code.
            codes = np.fromiter(
                (table.setdefault(v, len(table)) for v in values.to_pylist()), np.int32, len(values)
            )
            fresh = values.filter(pa.array(codes >= n_old))
        if len(fresh):
            self.text_chunks.append(fresh)
            self.known = None
        return codes

    def ids(self) -> np.ndarray:
        """All ids in code order: int64 while every id is an integer, else ``str`` objects."""
        if self.text is not None:
            return np.array(list(self.text), dtype=object)
        if not self.new_ids:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(self.new_ids)


def _grouped(batches: Iterator[tuple[Any, ...]], rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """Consecutive batches of one file in lists of at least ``rows`` rows (the last may have fewer).

    Each item is ``(batch, locator, found)``; a group never spans two files.
    """
    group: list[tuple[Any, ...]] = []
    n = 0
    for item in batches:
        if group and item[1].path != group[0][1].path:
            yield group
            group, n = [], 0
        group.append(item)
        n += item[0].num_rows
        if n >= rows:
            yield group
            group, n = [], 0
    if group:
        yield group


def _release_arrow_memory() -> None:
    """Hand pyarrow's cached allocations back to the system (they otherwise stay in RSS)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _sorted_map(table: _IdTable) -> tuple[IdMap, np.ndarray]:
    """The canonical (sorted) id map and ``rank[code]`` = dense index of each code."""
    ids = table.ids()
    table.clear()
    order = text_order(ids)
    rank = np.empty(len(ids), np.int32)
    rank[order] = np.arange(len(ids), dtype=np.int32)
    return IdMap(ids[order]), rank


def ingest(
    paths: str | Path | Sequence[str | Path],
    *,
    user: str = "user",
    item: str = "item",
    weight: str | None = None,
    timestamp: str | None = None,
    duplicates: str = "sum",
    chunk_rows: int = 1 << 20,
    sep: str | None = None,
    name: str | None = None,
    on_invalid: str = "raise",
    on_overflow: str = "raise",
    timestamp_format: str | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """Build a :class:`Dataset` from large Parquet/CSV files, reading them chunk by chunk.

    Parameters
    ----------
    paths : path, directory or sequence of them
        Parquet (``.parquet``, ``.pq``) or CSV (``.csv``, ``.tsv``, ``.txt``; compressed
        files are decompressed by pyarrow) files. A directory stands for its Parquet
        files that have both id columns (else its CSV files), sorted by name. Rows are
        read in this file order.
    user, item : str, default "user", "item"
        Id columns. Ids keep their type: integers stay integers (text ids are kept
        exactly as written), as in :func:`lmrec.data.load_dataset`.
    weight, timestamp : str, optional
        Optional columns. Weights must be numbers >= 0 that fit float32; timestamps
        epoch numbers, Parquet timestamps or dates in one format per column (the
        first chunk decides it unless ``timestamp_format`` is given).
    duplicates : {"sum", "last", "first", "max", "raise"}, default "sum"
        Repeated (user, item) rows: add weights (each row counts 1 without a weight
        column) and keep the latest timestamp; keep the last or first row in file
        order; keep the maximum of each column; or fail. The default is ``"sum"``
        (unlike ``load_dataset``'s ``"raise"``): event logs at this scale repeat pairs,
        and summing them is the usual implicit-feedback count.
    chunk_rows : int, default 2**20
        Rows per chunk (CSV chunks are sized in bytes, about 32 per row).
    sep : str, optional
        CSV delimiter (sniffed by default, as in :func:`lmrec.data.read_interactions`).
    name : str, optional
        Data set label; defaults to the first path's name without suffix.
    on_invalid, on_overflow, timestamp_format, encoding
        As in :func:`lmrec.data.read_interactions`: the checks and messages are the same.

    Returns
    -------
    Dataset
        Equal to ``load_dataset(path, user=..., item=..., weight=..., timestamp=...,
        duplicates=...)[0]`` for a single file: same id maps and interactions.

    Raises
    ------
    DataError
        A file is missing or unreadable, a column is missing, an id or number is
        missing or invalid, or pairs repeat under ``duplicates="raise"``.
    ConfigError
        An argument has an invalid value.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = p.write_text("user,item\\nb,x\\na,x\\nb,x\\nb,y\\n")
    >>> d = ingest(p)
    >>> list(d.user_ids.ids), d.matrix.toarray().tolist()
    (['a', 'b'], [[1.0, 0.0], [2.0, 1.0]])
    """
    if duplicates not in INGEST_DUPLICATES:
        raise ConfigError(
            f"The 'duplicates' parameter of ingest must be one of {', '.join(INGEST_DUPLICATES)}. "
            f"Got {duplicates!r} instead."
        )
    chunk_rows = check_int(chunk_rows, "chunk_rows", where="ingest")
    check_choice(on_invalid, ON_INVALID, "on_invalid")
    check_choice(on_overflow, ON_OVERFLOW, "on_overflow")
    files = _files(paths, user, item)
    specs = {"user": user, "item": item, "weight": weight, "timestamp": timestamp}
    rules = {"on_invalid": on_invalid, "on_overflow": on_overflow}
    parser = TimestampParser(timestamp or "timestamp", timestamp_format)
    batches = _batches(files, specs, chunk_rows, sep, encoding)
    # Summed weights are added in float64 and rounded once, as load_dataset does.
    w_dtype = np.float64 if duplicates == "sum" else np.float32
    pairs, extra_cols, user_table, item_table = _collect(
        batches,
        chunk_rows,
        w_dtype,
        _parquet_rows(files),
        rules,
        parser,
        has_weight=weight is not None,
        has_time=timestamp is not None,
    )
    if pairs.n == 0:
        raise DataError(f"{files[0]}: no data rows to ingest.")

    indptr, item_idx, cols, user_ids, item_ids = _assemble(
        pairs, extra_cols, user_table, item_table, duplicates, files, on_overflow, weight or ""
    )
    weight_col = cols.pop("w") if "w" in cols else np.ones(len(item_idx), np.float32)
    label = name or Path(paths if isinstance(paths, (str, Path)) else files[0]).name.split(".")[0]
    ds = Dataset.from_csr(
        indptr, item_idx, weight_col, user_ids, item_ids, timestamp=cols.get("t"), name=label
    )
    names = {r: c for r, c in specs.items() if c is not None}
    ds.source = SourceColumns(names, {"timestamp": parser.integral}, parser.format)
    return ds


def _assemble(
    pairs: _Column,
    extra_cols: dict[str, _Column],
    user_table: _IdTable,
    item_table: _IdTable,
    duplicates: str,
    files: list[Path],
    on_overflow: str,
    weight_column: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], IdMap, IdMap]:
    """Steps 2 and 3 of the module docstring: sort keys in place, merge pairs, build the CSR.

    Long because every step frees the memory of the one before it (``del``) while the
    next allocates; split into functions, the peak would hold two steps' arrays.
    Returns ``indptr``, ``item_idx``, the value columns (``"w"``, ``"t"``) and the maps.
    """
    _release_arrow_memory()
    user_ids, user_rank = _sorted_map(user_table)
    item_ids, item_rank = _sorted_map(item_table)
    n_items = len(item_ids)
    # The int64 sort key user_idx * n_items + item_idx replaces each code pair in place.
    key = pairs.take()
    step = 1 << 20
    for lo in range(0, len(key), step):
        block = key[lo : lo + step]
        users = user_rank[block >> 32].astype(np.int64)
        users *= n_items
        block &= 0xFFFFFFFF
        users += item_rank[block]
        block[:] = users
    del user_rank, item_rank, block
    extra = {c: col.take() for c, col in extra_cols.items()}
    del extra_cols
    if extra:
        order = np.argsort(key, kind="stable")  # stable: "last"/"first" follow file order
    else:
        order = None  # with only ids, which equal row of a pair survives is moot
    _sort_in_place(key)  # equals key[order]
    n = len(key)
    # Group starts are only materialised when pairs repeat (an int64 per row otherwise).
    starts = _group_starts(key)
    if starts is not None and duplicates == "raise":
        dup = key[starts[np.flatnonzero(np.diff(np.append(starts, n)) > 1)[0]]]
        raise DataError(
            f"{len(files)} file(s) repeat {n - len(starts)} (user, item) row(s), e.g. user "
            f"{user_ids.lookup([dup // n_items])[0]!r} / item {item_ids.lookup([dup % n_items])[0]!r}; "
            f"choose {fix('duplicates', 'sum')}, 'last', 'first' or 'max'."
        )
    cols: dict[str, np.ndarray] = {}
    for c in list(extra):
        values = extra.pop(c)[order]
        if starts is not None:
            if duplicates == "sum":
                values = (np.add if c == "w" else np.maximum).reduceat(values, starts)
            elif duplicates == "max":
                values = np.maximum.reduceat(values, starts)
            elif duplicates == "last":
                values = values[np.append(starts[1:], n) - 1]
            else:
                values = values[starts]
        if c == "w":
            values = _fit_float32(values, files, on_overflow, weight_column)
        cols[c] = values.astype(np.float32, copy=False) if c == "w" else values
    del order
    if "w" not in cols and starts is not None and duplicates == "sum":
        cols["w"] = np.diff(np.append(starts, n)).astype(np.float32)
    if starts is not None:
        key = key[starts]
    del starts
    indptr = np.searchsorted(key, np.arange(len(user_ids) + 1, dtype=np.int64) * n_items)
    item_idx = _items_in_place(key, n_items)
    del key
    return indptr, item_idx, cols, user_ids, item_ids


def _batches(
    files: list[Path], specs: dict[str, str | None], chunk_rows: int, sep: str | None, encoding: str
) -> Iterator[tuple[Any, Locator, dict[str, str], bool]]:
    """``(batch, locator, columns found)`` of every file in order, read by the shared readers."""
    import pyarrow as pa

    for path in files:
        source = open_source(path, fmt=None, sep=sep, header=True, encoding=encoding)
        found = resolve_columns(path, source.names, True, specs)
        types: dict[str, Any] = {}
        for role, col in found.items():
            if source.kind != "parquet":
                types[col] = pa.string()
            elif role in ("user", "item") and pa.types.is_string(_parquet_type(path, col)):
                # Text ids straight from Parquet's dictionary pages: no per-row strings.
                types[col] = pa.dictionary(pa.int32(), pa.string())
            else:
                types[col] = None
        for batch, locator in source.batches(types, chunk_rows):
            yield batch, locator, found, source.kind == "parquet"


def _parquet_type(path: Path, column: str) -> Any:
    import pyarrow.parquet as pq

    return pq.read_schema(path).field(column).type


def _parquet_rows(files: list[Path]) -> int:
    """Total rows of the files when all are Parquet (from their footers), else 0."""
    import pyarrow.parquet as pq

    if not all(any(s.lower() in _PARQUET for s in f.suffixes) for f in files):
        return 0
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _collect(
    batches: Iterator[tuple[Any, Locator, dict[str, str], bool]],
    chunk_rows: int,
    w_dtype: type,
    capacity: int,
    rules: dict[str, str],
    parser: TimestampParser,
    *,
    has_weight: bool,
    has_time: bool,
) -> tuple[_Column, dict[str, _Column], _IdTable, _IdTable]:
    """Check every group of about four chunks and append its coded rows.

    Returns the packed (user code, item code) pairs, the weight (``"w"``) and
    timestamp (``"t"``) columns, and the two id tables. Each row's two int32 codes
    share one int64 (user code high, item code low), so the buffer can later be
    turned into the sort key in place.
    """
    import pyarrow as pa

    user_table, item_table = _IdTable(), _IdTable()
    pairs = _Column(np.int64, capacity)
    extra_cols = {"w": _Column(w_dtype, capacity)} if has_weight else {}
    if has_time:
        extra_cols["t"] = _Column(np.float64, capacity)
    for group in _grouped(_prefetched(batches), 4 * chunk_rows):
        table = pa.Table.from_batches([b for b, *_ in group])
        _, locator, found, typed = group[0]
        del group
        rows = check_rows(table, found, locator, timestamps=parser, typed=typed, **rules)
        del table
        u = user_table.codes_of(rows.user)[rows.user.codes].astype(np.int64)
        u <<= 32
        u |= item_table.codes_of(rows.item)[rows.item.codes]
        pairs.append(u)
        del u
        if has_weight:
            extra_cols["w"].append(rows.values["weight"].astype(w_dtype, copy=False))
        if has_time:
            extra_cols["t"].append(rows.values["timestamp"])
        del rows
    return pairs, extra_cols, user_table, item_table


def _fit_float32(
    weights: np.ndarray, files: list[Path], on_overflow: str, column: str
) -> np.ndarray:
    """Summed weights must still fit float32 (each row's did; a sum may not)."""
    big = weights > float(np.finfo(np.float32).max)
    if not big.any():
        return weights
    if on_overflow == "clip":
        return np.minimum(weights, float(np.finfo(np.float32).max))
    raise DataError(
        f"{files[0]}: {int(big.sum())} (user, item) pair(s) have summed weights (column "
        f"{column!r}) beyond float32's range (largest {float(weights.max()):.3g}). Rescale the "
        f"weights, choose {fix('duplicates', 'max')}, or pass {fix('on_overflow', 'clip')}."
    )


def _prefetched(batches: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``batches`` in order, read up to ``depth`` ahead by a background thread.

    Arrow decodes Parquet/CSV without the GIL, so the next chunk is read while this
    one's ids are coded. An error in the reader is raised here, in order; if the
    consumer stops early, the reader stops too.
    """
    import queue
    import threading

    box: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> None:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            for batch in batches:
                put(("batch", batch))
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            put(("error", e))
        put(("end", None))

    reader = threading.Thread(target=read, name="lmrec-ingest-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        reader.join()
