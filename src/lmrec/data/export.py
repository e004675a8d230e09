"""Writing a data set back as it was read: the file's column names and value types.

A :class:`~lmrec.data.Dataset` stores weights and ratings as float32 and timestamps as
float64 seconds; the readers record in :class:`SourceColumns` how the file named and
wrote them, so :func:`frame_as_read` (``Dataset.to_frame(as_read=True)``, used by
``lmrec split``) writes ``userId``/``movieId`` columns, integer ratings as ``4`` rather
than ``4.0``, epoch timestamps as integers in their unit (``875241637``, not
``875241637.0``) and dates in their layout. Reading the written file back gives the
same data set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from lmrec.data.dataset import Dataset

__all__ = ["SourceColumns", "frame_as_read"]

_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass(frozen=True)
class SourceColumns:
    """How the file a data set was read from named and wrote its columns.

    ``names`` maps roles (``user``, ``item``, ``weight``, ``rating``, ``timestamp``)
    to the file's column names; ``integral`` says which value columns held whole
    numbers as written (``4``, not ``4.0``); ``timestamp_format`` is the timestamp
    column's one format (an epoch unit, ``"iso"``, a strftime layout, or
    ``"datetime"`` for a typed column).
    """

    names: dict[str, str]
    integral: dict[str, bool] = field(default_factory=dict)
    timestamp_format: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-able dict (for data set directories and split.json)."""
        return {
            "names": dict(self.names),
            "integral": dict(self.integral),
            "timestamp_format": self.timestamp_format,
        }

    @classmethod
    def from_json(cls, meta: object) -> SourceColumns | None:
        """The inverse of :meth:`to_json`; None for anything malformed."""
        if not isinstance(meta, dict) or not isinstance(meta.get("names"), dict):
            return None
        names = {str(k): str(v) for k, v in meta["names"].items()}
        raw = meta.get("integral")
        integral = raw if isinstance(raw, dict) else {}
        fmt = meta.get("timestamp_format")
        return cls(
            names,
            {str(k): bool(v) for k, v in integral.items()},
            fmt if isinstance(fmt, str) else None,
        )


def frame_as_read(dataset: Dataset) -> pd.DataFrame:
    """The interactions with the source file's column names and value types.

    Columns the file did not have are left out, except a weight column that holds
    summed duplicate counts (named ``weight`` unless the file named one).
    """
    source = dataset.source or SourceColumns({})
    base = dataset.to_frame()
    names = {"user": "user", "item": "item", **source.names}
    out = pd.DataFrame({names["user"]: base["user"], names["item"]: base["item"]})
    for role in ("rating", "weight"):
        if role not in base:
            continue
        values = base[role].to_numpy()
        if role == "weight" and role not in source.names and np.all(values == 1):
            continue  # the file had no weights: every row weighs 1
        whole = source.integral.get(role, False) and np.all(np.mod(values, 1) == 0)
        out[names.get(role, role)] = values.astype(np.int64) if whole else values
    if "timestamp" in base:
        out[names.get("timestamp", "timestamp")] = _timestamps(base["timestamp"].to_numpy(), source)
    return out


def _timestamps(secs: np.ndarray, source: SourceColumns) -> np.ndarray | pd.Series:
    """Seconds since the epoch in the file's format."""
    fmt = source.timestamp_format or "s"
    if fmt in _PER_SECOND:
        values = secs * _PER_SECOND[fmt]
        if source.integral.get("timestamp", False):
            return np.round(values).astype(np.int64)
        return values
    stamps = pd.to_datetime(pd.Series(np.round(secs * 1e6).astype(np.int64)), unit="us", utc=True)
    if fmt == "iso" or fmt == "datetime":
        if bool((np.mod(secs, 86400) == 0).all()):
            return stamps.dt.strftime("%Y-%m-%d")
        whole = bool((np.mod(secs, 1) == 0).all())
        return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ" if whole else "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamps.dt.strftime(fmt)
