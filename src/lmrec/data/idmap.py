"""Bijective maps between external ids (strings) and dense internal indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from lmrec.errors import DataError, UnknownIdError

OnUnknown = Literal["raise", "warn", "ignore"]


def as_id_array(ids: Iterable[object] | object) -> np.ndarray:
    """Return external ids as a 1-d object array of ``str``.

    External ids are always strings inside lmrec, so ``7`` and ``"7"`` name the same
    user; a single scalar is treated as a list of one.
    """
    if isinstance(ids, (str, bytes, int, np.integer)):
        ids = [ids]
    arr = np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Index, pd.Series)) else ids)
    if arr.dtype.kind in "fc":
        if arr.size and not np.all(np.mod(arr, 1) == 0):
            raise DataError("Ids must be strings or integers; got non-integral floats.")
        arr = arr.astype(np.int64)
    return arr.astype(str).astype(object)


class IdMap:
    """An ordered, immutable set of external ids, each owning one dense index.

    Parameters
    ----------
    ids : sequence of str
        External ids in index order. They must be unique.

    Examples
    --------
    >>> m = IdMap.from_values(["b", "a", "b"])
    >>> list(m.ids), m.index(["b"]).tolist()
    (['a', 'b'], [1])
    """

    __slots__ = ("_index",)

    def __init__(self, ids: Sequence[object] | np.ndarray) -> None:
        index = pd.Index(as_id_array(ids), dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise DataError(f"IdMap ids must be unique; duplicated: {dup}")
        self._index = index

    @classmethod
    def from_values(cls, values: Iterable[object]) -> IdMap:
        """Build a map of the distinct values, sorted, so the same data always gives the same map.

        Sorting (rather than order of first appearance) makes the dense indices
        independent of row order in the input file.
        """
        uniq = pd.unique(as_id_array(values))
        return cls(np.sort(uniq.astype(str)).astype(object))

    @property
    def ids(self) -> np.ndarray:
        """External ids in index order (a read-only object array)."""
        arr = self._index.to_numpy(dtype=object)
        arr.flags.writeable = False
        return arr

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, item: object) -> bool:
        return str(item) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __hash__(self) -> int:  # pragma: no cover - maps are compared, not hashed
        return hash(tuple(self._index))

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)})"

    def index(
        self, ids: Iterable[object] | object, *, on_unknown: OnUnknown = "raise", kind: str = "id"
    ) -> np.ndarray:
        """Dense indices (int64) of external ``ids``.

        Unknown ids raise :class:`UnknownIdError` (``on_unknown="raise"``) or map to -1
        (``"warn"`` also emits a :class:`~lmrec.errors.DataWarning`).
        """
        arr = as_id_array(ids)
        idx = self._index.get_indexer(arr).astype(np.int64)
        missing = idx < 0
        if missing.any():
            unknown = pd.unique(arr[missing]).tolist()
            if on_unknown == "raise":
                raise UnknownIdError(kind, unknown)
            if on_unknown == "warn":
                import warnings

                from lmrec.errors import DataWarning

                warnings.warn(
                    f"{len(unknown)} unknown {kind} id(s) ignored: {unknown[:10]}",
                    DataWarning,
                    stacklevel=2,
                )
            elif on_unknown != "ignore":
                raise ValueError(
                    f"on_unknown must be 'raise', 'warn' or 'ignore'; got {on_unknown!r}."
                )
        return idx

    def lookup(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """External ids (object array of str) of dense ``indices``."""
        return self._index.to_numpy(dtype=object)[np.asarray(indices, dtype=np.int64)]

    def extend(self, ids: Iterable[object]) -> IdMap:
        """A new map with the ids not yet present appended, keeping existing indices."""
        arr = pd.unique(as_id_array(ids))
        new = arr[self._index.get_indexer(arr) < 0]
        if len(new) == 0:
            return self
        return IdMap(np.concatenate([self._index.to_numpy(dtype=object), new]))
