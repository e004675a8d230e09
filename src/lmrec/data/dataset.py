"""The in-memory data set: id maps, interactions as sparse CSR, and item/user attributes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec.data.dataset_io import (
    INTERACTION_COLUMNS,
    REQUIRED,
    load_dataset_dir,
    save_dataset,
)
from lmrec.data.export import SourceColumns
from lmrec.data.idmap import IdMap, as_id_array
from lmrec.errors import DataError

_REQUIRED = REQUIRED


class Dataset:
    """Interactions between users and items, with the maps to and from external ids.

    One row per (user, item) pair. ``weight`` is what models learn from (1.0 unless the
    input named a weight column); ``rating`` and ``timestamp`` are kept when the input
    had them. ``order`` (kept with timestamps) is each row's position in the input, so
    that interactions with equal timestamps keep their input order in time-ordered
    views (sequences, temporal splits) although rows are stored in CSR order.
    ``items`` and ``users`` are optional attribute tables indexed by external
    id, aligned with the id maps (rows of ids without attributes are NaN).

    A ``Dataset`` is immutable: derived data sets (splits, subsets) share its id maps,
    so the same dense index means the same user or item in all of them.

    Parameters
    ----------
    interactions : DataFrame
        Columns ``user_idx``, ``item_idx``, ``weight`` and optionally ``rating``,
        ``timestamp`` (seconds since the epoch), ``order`` (input position, the
        tie-breaker among equal timestamps). Copied, never mutated.
    user_ids, item_ids : IdMap
        The id universes. Items only in the catalog belong to ``item_ids`` too
        (they can be recommended: the cold-start case).
    items, users : DataFrame, optional
        Attribute tables indexed by external id.
    name : str
        A label for reports.
    source : SourceColumns, optional
        How the file it was read from named and wrote its columns (set by the readers).
    """

    source: SourceColumns | None

    def __init__(
        self,
        interactions: pd.DataFrame,
        user_ids: IdMap,
        item_ids: IdMap,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        name: str = "dataset",
        source: SourceColumns | None = None,
    ) -> None:
        missing = [c for c in _REQUIRED if c not in interactions.columns]
        if missing:
            raise DataError(f"Dataset interactions lack column(s) {missing}.")
        cols = {}
        for col, dtype in INTERACTION_COLUMNS.items():
            if col in interactions.columns:
                cols[col] = interactions[col].to_numpy(dtype=dtype, copy=True)
        n_u, n_i = len(user_ids), len(item_ids)
        u_idx, i_idx = cols["user_idx"], cols["item_idx"]
        if len(u_idx) and (
            u_idx.min() < 0 or u_idx.max() >= n_u or i_idx.min() < 0 or i_idx.max() >= n_i
        ):
            raise DataError("Dataset interactions reference indices outside the id maps.")
        cols = _in_csr_order(cols, n_i)
        # Rows are sorted by user, so user_idx is implied by CSR row pointers: keep those
        # (n_users + 1 ints) instead of the column (one int per interaction).
        indptr = np.zeros(n_u + 1, np.int64)
        np.cumsum(np.bincount(cols.pop("user_idx"), minlength=n_u), out=indptr[1:])
        self._set_parts(indptr, cols, user_ids, item_ids, items, users, name)
        self.source = source

    def _set_parts(
        self,
        indptr: np.ndarray,
        cols: dict[str, np.ndarray],
        user_ids: IdMap,
        item_ids: IdMap,
        items: pd.DataFrame | None,
        users: pd.DataFrame | None,
        name: str,
    ) -> None:
        """Adopt validated arrays in CSR order (``indptr`` int64, columns without user_idx)."""
        # The data set owns writable arrays (for native kernels, see _native_matrix) and
        # shows everyone else read-only views of them.
        self._owned = {"indptr": indptr, **cols}
        self._indptr = _frozen_view(indptr)
        self._interactions = pd.DataFrame({c: _frozen_view(v) for c, v in cols.items()}, copy=False)
        self._native: sp.csr_matrix | None = None
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.items = _align(items, item_ids, "items")
        self.users = _align(users, user_ids, "users")
        self.name = name
        self._matrix: sp.csr_matrix | None = None
        self.source = None

    @classmethod
    def _from_sorted(
        cls,
        user_idx: np.ndarray,
        cols: dict[str, np.ndarray],
        user_ids: IdMap,
        item_ids: IdMap,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        name: str = "dataset",
        source: SourceColumns | None = None,
    ) -> Dataset:
        """Adopt columns the readers just built, checked and sorted (no copy, no re-check).

        ``user_idx`` and ``cols["item_idx"]`` come from the id maps (in range by
        construction), sorted by (user, item) with no pair twice
        (:func:`lmrec.data.rows.rows_to_dataset` makes sure); ``cols`` also holds
        ``weight`` (float32) and optionally ``rating``/``timestamp``.
        """
        n_u = len(user_ids)
        indptr = np.zeros(n_u + 1, np.int64)
        np.cumsum(np.bincount(user_idx, minlength=n_u), out=indptr[1:])
        self = cls.__new__(cls)
        self._set_parts(indptr, cols, user_ids, item_ids, items, users, name)
        self.source = source
        return self

    @classmethod
    def from_csr(
        cls,
        indptr: np.ndarray,
        item_idx: np.ndarray,
        weight: np.ndarray,
        user_ids: IdMap,
        item_ids: IdMap,
        *,
        rating: np.ndarray | None = None,
        timestamp: np.ndarray | None = None,
        order: np.ndarray | None = None,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        name: str = "dataset",
    ) -> Dataset:
        """Adopt interaction arrays already in CSR order, without copying them.

        This is the constructor for data that does not fit twice in memory (what
        :func:`lmrec.data.ingest.ingest` uses): the usual constructor copies its
        columns and sorts them, which costs several times the final size at 100M
        interactions. Here ``indptr`` (length ``n_users + 1``) gives each user's row
        range in ``item_idx``/``weight`` (and the optional ``rating``/``timestamp``),
        exactly as in a CSR matrix.

        The arrays are *taken over*: arrays of the stored dtype (int32 items, float32
        weights and ratings, float64 timestamps; any integer ``indptr``) are kept
        as they are, so the caller must not modify them afterwards. The structure is
        still checked, in blocks of a million rows with O(block) temporaries: indices
        in range, ``indptr`` non-decreasing from 0 to the number of rows, items
        strictly increasing inside each row (sorted, no repeated pairs).

        Raises
        ------
        DataError
            The arrays are not a valid CSR structure over the id maps.
        """
        n_u, n_i = len(user_ids), len(item_ids)
        indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        cols = {
            "item_idx": np.ascontiguousarray(item_idx, dtype=np.int32),
            "weight": np.ascontiguousarray(weight, dtype=np.float32),
        }
        if rating is not None:
            cols["rating"] = np.ascontiguousarray(rating, dtype=np.float32)
        if timestamp is not None:
            cols["timestamp"] = np.ascontiguousarray(timestamp, dtype=np.float64)
        if order is not None:
            cols["order"] = np.ascontiguousarray(order, dtype=np.int64)
        n = len(cols["item_idx"])
        for c, values in cols.items():
            if values.ndim != 1 or len(values) != n:
                raise DataError(
                    f"Dataset.from_csr: column {c!r} has shape {values.shape}; every column "
                    f"must be 1-D with one value per interaction ({n})."
                )
        if indptr.shape != (n_u + 1,) or indptr[0] != 0 or indptr[-1] != n:
            raise DataError(
                f"Dataset.from_csr: indptr must have n_users + 1 = {n_u + 1} entries from 0 to "
                f"the number of interactions ({n}); got {indptr.shape[0]} entries ending at "
                f"{indptr[-1] if len(indptr) else None}."
            )
        if n_u and (np.diff(indptr) < 0).any():
            raise DataError("Dataset.from_csr: indptr decreases; it must be non-decreasing.")
        _check_csr_rows(indptr, cols["item_idx"], n_i)
        self = cls.__new__(cls)
        self._set_parts(indptr, cols, user_ids, item_ids, items, users, name)
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        user_ids: IdMap | None = None,
        item_ids: IdMap | None = None,
        name: str = "dataset",
    ) -> Dataset:
        """Build a data set from a canonical frame with external ids.

        ``frame`` has columns ``user``, ``item`` and optionally ``weight``, ``rating``,
        ``timestamp``; with timestamps each row's position in ``frame`` is kept as the
        ``order`` column (ties in time keep the input order); (user, item) pairs must be unique (:func:`lmrec.data.read_interactions`
        resolves duplicates by policy before this point). Id maps are built from the
        sorted distinct ids of the frame and the attribute tables unless given.
        """
        for col in ("user", "item"):
            if col not in frame.columns:
                raise DataError(f"Interaction frame lacks the {col!r} column.")
        users_ext = as_id_array(frame["user"].to_numpy())
        items_ext = as_id_array(frame["item"].to_numpy())
        extra: Iterable[object]
        if user_ids is None:
            extra = users.index if users is not None else []
            user_ids = IdMap.from_values(np.concatenate([users_ext, as_id_array(extra)]))
        if item_ids is None:
            extra = items.index if items is not None else []
            item_ids = IdMap.from_values(np.concatenate([items_ext, as_id_array(extra)]))
        out = pd.DataFrame(
            {
                "user_idx": user_ids.index(users_ext, kind="user"),
                "item_idx": item_ids.index(items_ext, kind="item"),
                "weight": frame["weight"].to_numpy(np.float32)
                if "weight" in frame
                else np.ones(len(frame), np.float32),
            }
        )
        if "rating" in frame:
            out["rating"] = frame["rating"].to_numpy()
        if "timestamp" in frame:
            out["timestamp"] = _epoch_seconds(frame["timestamp"])
            out["order"] = np.arange(len(frame), dtype=np.int64)
        if out.duplicated(["user_idx", "item_idx"]).any():
            raise DataError(
                "Interaction frame has duplicate (user, item) pairs; read it with "
                "lmrec.data.read_interactions(..., duplicates='last'|'sum'|'max') to merge them."
            )
        return cls(out, user_ids, item_ids, items=items, users=users, name=name)

    # ------------------------------------------------------------------ accessors
    @property
    def interactions(self) -> pd.DataFrame:
        """The interaction table (a copy: the data set itself cannot be changed)."""
        return self._full_frame().copy()

    def _full_frame(self) -> pd.DataFrame:
        """The stored columns plus ``user_idx``, first."""
        frame = self._interactions.copy(deep=False)
        frame.insert(0, "user_idx", self.column("user_idx"))
        return frame

    @property
    def n_users(self) -> int:
        """Number of users in the id universe (including users with no interactions here)."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of items in the id universe (including catalog-only items)."""
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        """Number of (user, item) pairs."""
        return len(self._interactions)

    @property
    def has_timestamps(self) -> bool:
        """Whether interactions carry timestamps."""
        return "timestamp" in self._interactions

    @property
    def has_input_order(self) -> bool:
        """Whether interactions carry their input position (``order``: ties in time keep it)."""
        return "order" in self._interactions

    @property
    def has_ratings(self) -> bool:
        """Whether interactions carry explicit ratings."""
        return "rating" in self._interactions

    def column(self, name: str) -> np.ndarray:
        """One interaction column as a read-only array (no copy)."""
        if name == "user_idx":
            counts = np.diff(self._indptr)
            users = np.repeat(np.arange(self.n_users, dtype=np.int32), counts)
            users.flags.writeable = False
            return users
        if name not in self._interactions:
            have = ["user_idx", *self._interactions]
            raise KeyError(f"No interaction column {name!r}; have {have}.")
        return self._interactions[name].to_numpy()

    @property
    def matrix(self) -> sp.csr_matrix:
        """Users x items CSR matrix of weights (float32, canonical), built once.

        Interactions are stored in CSR order, so the matrix shares the ``item_idx``
        and ``weight`` columns instead of copying them; its arrays are read-only
        (copy the matrix to change it).
        """
        if self._matrix is None:
            index_dtype: type[np.signedinteger] = (
                np.int32 if self.n_interactions < 2**31 else np.int64
            )
            indptr = self._indptr.astype(index_dtype)
            m: sp.csr_matrix = sp.csr_matrix(
                (
                    self.column("weight"),
                    self.column("item_idx").astype(index_dtype, copy=False),
                    indptr,
                ),
                shape=(self.n_users, self.n_items),
            )
            m.has_sorted_indices = True
            m.has_canonical_format = True
            self._matrix = m
        return self._matrix

    def _native_matrix(self) -> sp.csr_matrix:
        """The matrix over the data set's own writable arrays, for compiled kernels only.

        Some native extensions (implicit's Cython ALS) accept only writable buffers even
        though they never write to their input. This hands them the owned arrays instead
        of a copy (saving one index array per fit); callers must not modify it.
        """
        if self._native is None:
            index_dtype: type[np.signedinteger] = (
                np.int32 if self.n_interactions < 2**31 else np.int64
            )
            owned = self._owned
            m = sp.csr_matrix(
                (
                    owned["weight"],
                    owned["item_idx"].astype(index_dtype, copy=False),
                    owned["indptr"].astype(index_dtype),
                ),
                shape=(self.n_users, self.n_items),
            )
            m.has_sorted_indices = True
            m.has_canonical_format = True
            self._native = m
        return self._native

    def user_counts(self) -> np.ndarray:
        """Interactions per user (int64, length ``n_users``)."""
        return np.diff(self._indptr)

    def item_counts(self) -> np.ndarray:
        """Interactions per item (int64, length ``n_items``)."""
        return np.bincount(self.column("item_idx"), minlength=self.n_items)

    def to_frame(self, *, as_read: bool = False) -> pd.DataFrame:
        """Interactions with external ids: columns ``user, item, weight[, rating][, timestamp]``.

        With ``as_read``, columns carry the names and types of the file the data set was
        read from (:attr:`source`): ``userId`` stays ``userId``, integer ratings and
        epoch timestamps stay integers in their unit, dates are written in their
        layout, and a weight column appears only if the file had one (or duplicates
        were summed into counts).
        """
        if as_read and self.source is not None:
            from lmrec.data.export import frame_as_read

            return frame_as_read(self)
        f = self._interactions
        out = pd.DataFrame(
            {
                "user": self.user_ids.lookup(self.column("user_idx")),
                "item": self.item_ids.lookup(f["item_idx"].to_numpy()),
            }
        )
        for col in ("weight", "rating", "timestamp"):
            if col in f:
                out[col] = f[col].to_numpy()
        return out

    # ------------------------------------------------------------------ derived sets
    def subset(self, rows: np.ndarray, *, name: str | None = None) -> Dataset:
        """A data set with the selected interaction rows (bool mask or positions), same id maps."""
        rows = np.asarray(rows)
        part = self._full_frame().iloc[np.flatnonzero(rows) if rows.dtype == bool else rows]
        return Dataset(
            part.reset_index(drop=True),
            self.user_ids,
            self.item_ids,
            items=self.items,
            users=self.users,
            name=name or self.name,
            source=self.source,
        )

    def concat(self, other: Dataset, *, name: str | None = None) -> Dataset:
        """Union of two data sets over the same id maps (for refitting on train + valid)."""
        if other.user_ids != self.user_ids or other.item_ids != self.item_ids:
            raise DataError("Only data sets that share id maps (splits of one data set) concat.")
        both = pd.concat([self._full_frame(), other._full_frame()], ignore_index=True)
        if both.duplicated(["user_idx", "item_idx"]).any():
            raise DataError("The two data sets share (user, item) pairs; they must be disjoint.")
        return Dataset(
            both,
            self.user_ids,
            self.item_ids,
            items=self.items,
            users=self.users,
            name=name or self.name,
            source=self.source,
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"n_interactions={self.n_interactions})"
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the data set as Parquet + JSON into directory ``path`` (atomically, no pickle)."""
        return save_dataset(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a data set written by :meth:`save`."""
        return load_dataset_dir(path, cls)


def _in_csr_order(cols: dict[str, np.ndarray], n_items: int) -> dict[str, np.ndarray]:
    """Sort interaction columns by (user, item) unless they already are; reject repeated pairs.

    Keeping rows in this order lets the CSR matrix share the columns' memory.
    """
    users, items = cols["user_idx"], cols["item_idx"]
    if len(users) < 2:
        return cols
    key = users.astype(np.int64) * n_items + items
    step = np.diff(key)
    if (step > 0).all():
        return cols
    order = np.argsort(key, kind="stable")
    if (np.diff(key[order]) == 0).any():
        raise DataError(
            "Dataset interactions repeat (user, item) pairs; merge them first "
            "(read_interactions(..., duplicates='last'|'sum'|'max'))."
        )
    del key, step
    out = {}
    for name, values in cols.items():
        out[name] = values[order]
    return out


def _check_csr_rows(indptr: np.ndarray, items: np.ndarray, n_items: int) -> None:
    """Items in range and strictly increasing inside each CSR row (checked per 1M rows).

    A decrease (or repeat) is allowed only where a row starts, so the non-increasing
    positions of a block must all be row starts; there are at most ``n_users`` of
    those, which keeps the check O(rows) in time and O(block) in memory.
    """
    step = 1 << 20
    starts = indptr[1:-1]
    for lo in range(0, len(items), step):
        block = items[lo : lo + step]
        if block.min() < 0 or block.max() >= n_items:
            raise DataError(
                f"Dataset.from_csr: item indices must lie in [0, {n_items}); the block at "
                f"row {lo} has {block.min()}..{block.max()}."
            )
        ahead = items[max(lo - 1, 0) : lo + step]
        bad = np.flatnonzero(ahead[1:] <= ahead[:-1]) + max(lo - 1, 0) + 1
        here = starts[np.searchsorted(starts, lo) : np.searchsorted(starts, lo + step)]
        if len(bad) and not np.isin(bad, here).all():
            pos = bad[~np.isin(bad, here)][0]
            raise DataError(
                f"Dataset.from_csr: items are not strictly increasing within a user's row "
                f"(row {pos}); sort each row by item and merge repeated pairs first."
            )


def _frozen_view(values: np.ndarray) -> np.ndarray:
    """A read-only view: the owner stays writable, holders of the view cannot write."""
    view = values.view()
    view.flags.writeable = False
    return view


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    """Timestamps as float seconds since the epoch, whatever datetime unit pandas chose."""
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = pd.to_datetime(values, utc=True)
        return (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)
    return values.to_numpy(np.float64)


def _align(table: pd.DataFrame | None, ids: IdMap, what: str) -> pd.DataFrame | None:
    """Reindex an attribute table to the id map's order (missing ids become NaN rows).

    Table ids are matched as ids are everywhere (``7`` and ``"7"`` are one id); the
    table's rows for ids outside the map are left out.
    """
    if table is None:
        return None
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame indexed by external id.")
    keys = as_id_array(table.index)
    if not pd.Index(keys).is_unique:
        dup = pd.Index(keys)
        raise DataError(f"The {what} table has duplicate ids: {dup[dup.duplicated()][:5].tolist()}")
    pos = ids.index(keys, on_unknown="ignore")
    rows = np.full(len(ids), -1, np.int64)
    rows[pos[pos >= 0]] = np.flatnonzero(pos >= 0)
    out = table.reset_index(drop=True).reindex(rows)
    out.index = pd.Index(ids.ids, name=table.index.name or "id")
    return out


def datasets_with_shared_ids(
    frames: list[pd.DataFrame],
    *,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    names: list[str] | None = None,
) -> list[Dataset]:
    """Build one Dataset per canonical frame, all over the same user and item id maps.

    Use it for train/valid/test files read separately, so that the same external id
    gets the same dense index in each (the id maps are the union of all frames and
    the attribute tables).
    """
    if not frames:
        raise DataError("datasets_with_shared_ids needs at least one frame.")
    user_vals = [f["user"].to_numpy() for f in frames] + (
        [users.index.to_numpy()] if users is not None else []
    )
    item_vals = [f["item"].to_numpy() for f in frames] + (
        [items.index.to_numpy()] if items is not None else []
    )
    user_ids = IdMap.from_values(np.concatenate([as_id_array(v) for v in user_vals]))
    item_ids = IdMap.from_values(np.concatenate([as_id_array(v) for v in item_vals]))
    names = names or [f"part{i}" for i in range(len(frames))]
    return [
        Dataset.from_frame(
            f, items=items, users=users, user_ids=user_ids, item_ids=item_ids, name=n
        )
        for f, n in zip(frames, names, strict=True)
    ]
