"""The in-memory data set: id maps, interactions as sparse CSR, and item/user attributes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec._atomic import atomic_dir
from lmrec.data.idmap import IdMap, as_id_array
from lmrec.errors import DataError

#: Columns of :attr:`Dataset.interactions`, with their dtypes; optional ones may be absent.
INTERACTION_COLUMNS = {
    "user_idx": np.int32,
    "item_idx": np.int32,
    "weight": np.float32,
    "rating": np.float32,
    "timestamp": np.float64,
}
_REQUIRED = ("user_idx", "item_idx", "weight")
DATASET_FORMAT_VERSION = 1


class Dataset:
    """Interactions between users and items, with the maps to and from external ids.

    One row per (user, item) pair. ``weight`` is what models learn from (1.0 unless the
    input named a weight column); ``rating`` and ``timestamp`` are kept when the input
    had them. ``items`` and ``users`` are optional attribute tables indexed by external
    id, aligned with the id maps (rows of ids without attributes are NaN).

    A ``Dataset`` is immutable: derived data sets (splits, subsets) share its id maps,
    so the same dense index means the same user or item in all of them.

    Parameters
    ----------
    interactions : DataFrame
        Columns ``user_idx``, ``item_idx``, ``weight`` and optionally ``rating``,
        ``timestamp`` (seconds since the epoch). Copied, never mutated.
    user_ids, item_ids : IdMap
        The id universes. Items only in the catalog belong to ``item_ids`` too
        (they can be recommended: the cold-start case).
    items, users : DataFrame, optional
        Attribute tables indexed by external id.
    name : str
        A label for reports.
    """

    def __init__(
        self,
        interactions: pd.DataFrame,
        user_ids: IdMap,
        item_ids: IdMap,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        name: str = "dataset",
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
        ``timestamp``; (user, item) pairs must be unique (:func:`lmrec.data.read_interactions`
        resolves duplicates by policy before this point). Id maps are built from the
        sorted distinct ids of the frame and the attribute tables unless given.
        """
        for col in ("user", "item"):
            if col not in frame.columns:
                raise DataError(f"Interaction frame lacks the {col!r} column.")
        users_ext = as_id_array(frame["user"].to_numpy())
        items_ext = as_id_array(frame["item"].to_numpy())
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
            index_dtype = np.int32 if self.n_interactions < 2**31 else np.int64
            indptr = self._indptr.astype(index_dtype)
            m = sp.csr_matrix(
                (self.column("weight"), self.column("item_idx").astype(index_dtype, copy=False),
                 indptr),
                shape=(self.n_users, self.n_items),
            )  # fmt: skip
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
            index_dtype = np.int32 if self.n_interactions < 2**31 else np.int64
            owned = self._owned
            m = sp.csr_matrix(
                (owned["weight"], owned["item_idx"].astype(index_dtype, copy=False),
                 owned["indptr"].astype(index_dtype)),
                shape=(self.n_users, self.n_items),
            )  # fmt: skip
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

    def to_frame(self) -> pd.DataFrame:
        """Interactions with external ids: columns ``user, item, weight[, rating][, timestamp]``."""
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
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"n_interactions={self.n_interactions})"
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the data set as Parquet + JSON into directory ``path`` (atomically, no pickle)."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            self._full_frame().to_parquet(tmp / "interactions.parquet", index=False)
            pd.DataFrame({"user": self.user_ids.ids}).to_parquet(tmp / "users_ids.parquet")
            pd.DataFrame({"item": self.item_ids.ids}).to_parquet(tmp / "items_ids.parquet")
            if self.items is not None:
                self.items.to_parquet(tmp / "items.parquet")
            if self.users is not None:
                self.users.to_parquet(tmp / "users.parquet")
            meta = {"format_version": DATASET_FORMAT_VERSION, "name": self.name}
            (tmp / "dataset.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a data set written by :meth:`save`."""
        path = Path(path)
        meta_file = path / "dataset.json"
        if not meta_file.is_file():
            raise DataError(f"{path} is not an lmrec data set directory (no dataset.json).")
        meta = json.loads(meta_file.read_text())
        if meta.get("format_version") != DATASET_FORMAT_VERSION:
            raise DataError(f"{path}: unsupported data set format {meta.get('format_version')}.")
        items = (
            pd.read_parquet(path / "items.parquet") if (path / "items.parquet").exists() else None
        )
        users = (
            pd.read_parquet(path / "users.parquet") if (path / "users.parquet").exists() else None
        )
        return cls(
            pd.read_parquet(path / "interactions.parquet"),
            IdMap(pd.read_parquet(path / "users_ids.parquet")["user"].to_numpy()),
            IdMap(pd.read_parquet(path / "items_ids.parquet")["item"].to_numpy()),
            items=items,
            users=users,
            name=meta.get("name", "dataset"),
        )


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
    """Reindex an attribute table to the id map's order (missing ids become NaN rows)."""
    if table is None:
        return None
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame indexed by external id.")
    t = table.copy()
    t.index = pd.Index(as_id_array(t.index), dtype=object, name=table.index.name or "id")
    if not t.index.is_unique:
        raise DataError(
            f"The {what} table has duplicate ids: {t.index[t.index.duplicated()][:5].tolist()}"
        )
    return t.reindex(pd.Index(ids.ids, dtype=object, name=t.index.name))


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
