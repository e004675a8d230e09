"""Data set directories: ``Dataset.save`` / ``Dataset.load`` (Parquet + JSON, never pickle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lmrec._atomic import atomic_dir
from lmrec.data.export import SourceColumns
from lmrec.data.idmap import IdMap
from lmrec.errors import DataError

if TYPE_CHECKING:
    from lmrec.data.dataset import Dataset

__all__ = ["DATASET_FORMAT_VERSION", "INTERACTION_COLUMNS", "load_dataset_dir", "save_dataset"]

#: Columns of :attr:`Dataset.interactions`, with their dtypes; optional ones may be absent.
INTERACTION_COLUMNS = {
    "user_idx": np.int32,
    "item_idx": np.int32,
    "weight": np.float32,
    "rating": np.float32,
    "timestamp": np.float64,
    "order": np.int64,
}
REQUIRED = ("user_idx", "item_idx", "weight")
DATASET_FORMAT_VERSION = 1


def save_dataset(ds: Dataset, path: str | Path) -> Path:
    """Write a data set as Parquet + JSON into directory ``path`` (atomically, no pickle)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        _write_interactions(ds, tmp / "interactions.parquet")
        pd.DataFrame({"user": ds.user_ids.ids}).to_parquet(tmp / "users_ids.parquet")
        pd.DataFrame({"item": ds.item_ids.ids}).to_parquet(tmp / "items_ids.parquet")
        if ds.items is not None:
            ds.items.to_parquet(tmp / "items.parquet")
        if ds.users is not None:
            ds.users.to_parquet(tmp / "users.parquet")
        meta: dict[str, object] = {"format_version": DATASET_FORMAT_VERSION, "name": ds.name}
        if ds.source is not None:
            meta["source"] = ds.source.to_json()
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2))
    return path


def load_dataset_dir(path: str | Path, cls: type[Dataset]) -> Dataset:
    """Read a data set written by :func:`save_dataset` (``Dataset.save``)."""
    path = Path(path)
    meta_file = path / "dataset.json"
    if not meta_file.is_file():
        raise DataError(f"{path} is not an lmrec data set directory (no dataset.json).")
    meta = json.loads(meta_file.read_text())
    if meta.get("format_version") != DATASET_FORMAT_VERSION:
        raise DataError(f"{path}: unsupported data set format {meta.get('format_version')}.")
    items = pd.read_parquet(path / "items.parquet") if (path / "items.parquet").exists() else None
    users = pd.read_parquet(path / "users.parquet") if (path / "users.parquet").exists() else None
    user_ids = IdMap(pd.read_parquet(path / "users_ids.parquet")["user"].to_numpy())
    item_ids = IdMap(pd.read_parquet(path / "items_ids.parquet")["item"].to_numpy())
    cols = _read_columns(path / "interactions.parquet")
    name = meta.get("name", "dataset")
    source = SourceColumns.from_json(meta.get("source"))
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise DataError(f"{path}/interactions.parquet lacks column(s) {missing}.")
    u = cols["user_idx"]
    if len(u) and _non_decreasing(u) and u[0] >= 0 and u[-1] < len(user_ids):
        # Files written by save() are in CSR order: adopt the columns without copies.
        indptr = np.searchsorted(u, np.arange(len(user_ids) + 1), side="left")
        try:
            ds = cls.from_csr(
                indptr,
                cols["item_idx"],
                cols["weight"],
                user_ids,
                item_ids,
                rating=cols.get("rating"),
                timestamp=cols.get("timestamp"),
                order=cols.get("order"),
                items=items,
                users=users,
                name=name,
            )
            ds.source = source
            return ds
        except DataError:
            pass  # rows not sorted by item: the general constructor sorts them
    return cls(
        pd.DataFrame(cols, copy=False),
        user_ids,
        item_ids,
        items=items,
        users=users,
        name=name,
        source=source,
    )


def _write_interactions(ds: Dataset, path: Path) -> None:
    """Stream the interaction table to Parquet in row groups (no full-table copy)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["user_idx", *ds._interactions.columns]
    fields = [pa.field(c, pa.from_numpy_dtype(INTERACTION_COLUMNS[c])) for c in names]
    schema = pa.schema(fields)
    step = 1 << 22
    with pq.ParquetWriter(path, schema) as writer:
        n = ds.n_interactions
        for lo in range(0, max(n, 1), step):
            hi = min(lo + step, n)
            rows = np.arange(lo, hi)
            users = (np.searchsorted(ds._indptr, rows, side="right") - 1).astype(np.int32)
            arrays = [pa.array(users)] + [
                pa.array(ds._interactions[c].to_numpy()[lo:hi]) for c in names[1:]
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    """The interaction columns of a Parquet file as owned arrays, read in batches.

    Each column is filled batch by batch into one preallocated array of its stored
    dtype, so the peak is the final columns plus one batch.
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    n = pf.metadata.num_rows
    names = [c for c in INTERACTION_COLUMNS if c in pf.schema_arrow.names]
    cols = {c: np.empty(n, INTERACTION_COLUMNS[c]) for c in names}
    pos = 0
    for batch in pf.iter_batches(batch_size=1 << 20, columns=names):
        for c in names:
            arr = batch.column(c)
            if arr.null_count:
                raise DataError(f"{path}: column {c!r} has {arr.null_count} missing value(s).")
            cols[c][pos : pos + len(arr)] = arr.to_numpy(zero_copy_only=False)
        pos += batch.num_rows
    return cols


def _non_decreasing(values: np.ndarray) -> bool:
    """Whether ``values`` never decreases (checked per 1M rows, no full-size temporary)."""
    step = 1 << 20
    for lo in range(0, len(values), step):
        block = values[max(lo - 1, 0) : lo + step]
        if (block[1:] < block[:-1]).any():
            return False
    return True
