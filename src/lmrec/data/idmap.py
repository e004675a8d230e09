"""Bijective maps between external ids (integers or strings) and dense internal indices.

External ids keep the type the data gave them: a file whose id column holds only
integers gives an *integer* map (an ``int64`` array, 8 bytes per id, no Python
objects), any other column a *string* map. The two kinds name ids the same way:
``7`` and ``"7"`` are one id everywhere (lookups, equality, files), because an integer
id is equal to its canonical decimal text (no sign, no leading zeros), and a string
such as ``"007"`` is never turned into a number. So an id round-trips exactly: what a
file says is what comes back.

Dense indices follow the ids' *text* order (``"1" < "10" < "2"``), the same for both
kinds, so a data set gets the same indices whether its ids were stored as numbers
(Parquet ``int64``) or as text (CSV), and model files written before integer maps
existed keep their meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from lmrec.errors import DataError, UnknownIdError

OnUnknown = Literal["raise", "warn", "ignore"]
IdKind = Literal["int", "str"]

_CANONICAL_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,18})")
_INT64_MAX = np.iinfo(np.int64).max


def _is_int_scalar(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def canonical_int(text: str) -> int | None:
    """The integer whose canonical decimal text is ``text`` (within int64), else None.

    ``"7"`` and ``"-7"`` are integers; ``"007"``, ``"+7"``, ``" 7"``, ``"-0"`` and
    ``"7.0"`` are not (they would not print back the same).
    """
    if not _CANONICAL_INT.fullmatch(text) or text == "-0":
        return None
    value = int(text)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


def _texts(values: np.ndarray) -> np.ndarray:
    """Ids as an object array of ``str`` (integers as their decimal text)."""
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    return values


def _from_float(arr: np.ndarray) -> np.ndarray:
    if arr.size and not np.all(np.isfinite(arr)):
        raise DataError("Ids must be strings or integers; got a missing (NaN) or infinite id.")
    if arr.size and not np.all(np.mod(arr, 1) == 0):
        raise DataError("Ids must be strings or integers; got non-integral floats.")
    if arr.size and np.abs(arr).max() >= 2.0**63:
        raise DataError("Ids must be strings or integers; got floats beyond the int64 range.")
    return arr.astype(np.int64)


def _from_objects(arr: np.ndarray) -> np.ndarray:
    """Object array of mixed python values: all-integer -> int64, else text."""
    kind = pd.api.types.infer_dtype(arr, skipna=False)  # one pass in C
    if kind == "string":
        return arr
    if kind == "integer":
        try:
            return np.asarray(arr, dtype=np.int64)
        except OverflowError:
            pass  # an integer beyond int64: every id as text, below
    ints = [_is_int_scalar(v) for v in arr.tolist()]
    if all(ints):
        try:
            return np.asarray(arr.tolist(), dtype=np.int64) if len(arr) else np.empty(0, np.int64)
        except OverflowError:
            pass  # an integer beyond int64: keep every id as text
    out = np.empty(len(arr), dtype=object)
    for j, v in enumerate(arr.tolist()):
        if isinstance(v, str):
            out[j] = v
        elif isinstance(v, (bool, np.bool_)) or v is None:
            raise DataError(f"Ids must be strings or integers; got {v!r}.")
        elif isinstance(v, (float, np.floating)):
            out[j] = str(_from_float(np.array([v], dtype=np.float64))[0])
        elif isinstance(v, bytes):
            try:
                out[j] = v.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"Id {v!r} is bytes that are not UTF-8 text.") from e
        else:
            out[j] = str(v)
    return out


def as_id_array(ids: Iterable[object] | object) -> np.ndarray:
    """External ids as a 1-d array: ``int64`` when every id is an integer, else ``str`` objects.

    A single scalar is treated as a list of one. Integral floats (how pandas stores an
    integer column with a missing value) become integers; text is kept as it is, so
    ``"007"`` stays ``"007"``.
    """
    if isinstance(ids, (str, bytes, int, np.integer)):
        ids = [ids]
    if isinstance(ids, (pd.Index, pd.Series)):
        if isinstance(ids.dtype, pd.CategoricalDtype):
            ids = ids.astype(ids.dtype.categories.dtype)
        arr = ids.to_numpy()
    elif isinstance(ids, np.ndarray):
        arr = ids
    else:
        if not isinstance(ids, Iterable):
            raise TypeError(f"{type(ids).__name__!r} object is not iterable")
        arr = np.asarray(list(ids), dtype=object)
        if len(arr) and arr.ndim != 1:
            raise DataError(
                f"Ids must be a flat list of strings or integers; got shape {arr.shape}."
            )
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    kind = arr.dtype.kind
    if kind == "b":
        raise DataError("Ids must be strings or integers; got booleans.")
    if kind == "i":
        return arr.astype(np.int64, copy=False)
    if kind == "u":
        if arr.size and arr.max() > _INT64_MAX:
            return arr.astype(str).astype(object)
        return arr.astype(np.int64)
    if kind == "f":
        return _from_float(arr)
    if kind in "US":
        return arr.astype(str).astype(object)
    return _from_objects(arr)


def _parse_texts(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, ok mask) of text ids that are canonical integers."""
    values = np.zeros(len(texts), np.int64)
    ok = np.zeros(len(texts), bool)
    for j, t in enumerate(texts.tolist()):
        v = canonical_int(t) if isinstance(t, str) else None
        if v is not None:
            values[j], ok[j] = v, True
    return values, ok


_POW10 = np.array([10**k for k in range(20)], dtype=np.uint64)


def text_order(values: np.ndarray) -> np.ndarray:
    """Stable positions that sort ids by their text (``"1" < "10" < "2"``).

    Integers are ordered without making strings: the decimal digits of ``|v|``
    padded with zeros to 19 places compare as the texts do, a shorter text first on
    a tie ("1" before "10"), and every negative ("-...") before every non-negative.
    """
    if values.dtype.kind not in "iu":
        return np.argsort(values.astype(str), kind="stable")
    ints = values.astype(np.int64, copy=False)
    negative = ints < 0
    magnitude = ints.view(np.uint64).copy()
    np.negative(magnitude, out=magnitude, where=negative)
    digits = np.maximum(np.searchsorted(_POW10, magnitude, side="right"), 1)
    padded = magnitude * _POW10[19 - digits]  # < 10**19 < 2**64: no overflow
    return np.lexsort((digits, padded, ~negative))


class IdMap:
    """An ordered, immutable set of external ids, each owning one dense index.

    Parameters
    ----------
    ids : sequence of int or str
        External ids in index order. They must be unique. All-integer ids give an
        integer map (:attr:`kind` ``"int"``); anything else a string map.

    Examples
    --------
    >>> m = IdMap.from_values(["b", "a", "b"])
    >>> list(m.ids), m.index(["b"]).tolist()
    (['a', 'b'], [1])
    >>> n = IdMap.from_values([10, 2, 1])
    >>> n.kind, n.ids.tolist(), n.index(["2", 10]).tolist()
    ('int', [1, 10, 2], [2, 1])
    """

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: Sequence[object] | np.ndarray) -> None:
        values = as_id_array(ids)
        if values is ids or not values.flags.owndata:
            values = values.copy()  # the map owns its ids; the caller's array stays writable
        index = pd.Index(values, dtype=values.dtype, copy=False)
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise DataError(f"IdMap ids must be unique; duplicated: {dup}")
        values.flags.writeable = False
        self._ids = values
        self._index = index

    @classmethod
    def from_values(cls, values: Iterable[object]) -> IdMap:
        """Build a map of the distinct values, in text order, so the same data always gives the same map.

        Sorting (rather than order of first appearance) makes the dense indices
        independent of row order in the input file; sorting by text makes them
        independent of whether ids were stored as numbers or as text.
        """
        arr = as_id_array(values)
        uniq = pd.unique(arr)
        return cls(uniq[text_order(uniq)])

    @property
    def kind(self) -> IdKind:
        """``"int"`` when every id is an integer (stored as int64), else ``"str"``."""
        return "int" if self._ids.dtype.kind == "i" else "str"

    @property
    def ids(self) -> np.ndarray:
        """External ids in index order (read-only; int64 or an object array of str)."""
        return self._ids

    def texts(self) -> np.ndarray:
        """External ids in index order as text (object array of str)."""
        return _texts(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        try:
            return bool(self.index([item], on_unknown="ignore")[0] >= 0)
        except DataError:
            return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return False
        if len(self) != len(other):
            return False
        if self.kind == other.kind:
            return bool(np.array_equal(self._ids, other._ids))
        return bool(np.array_equal(self.texts(), other.texts()))

    def __hash__(self) -> int:  # pragma: no cover - maps are compared, not hashed
        return hash(tuple(self.texts().tolist()))

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)}, kind={self.kind!r})"

    def _positions(self, arr: np.ndarray) -> np.ndarray:
        """get_indexer for normalised query ids of either kind."""
        if self.kind == "int":
            if arr.dtype.kind == "i":
                return self._index.get_indexer(arr).astype(np.int64)
            values, ok = _parse_texts(arr)
            idx = np.full(len(arr), -1, np.int64)
            if ok.any():
                idx[ok] = self._index.get_indexer(values[ok])
            return idx
        return self._index.get_indexer(_texts(arr)).astype(np.int64)

    def index(
        self, ids: Iterable[object] | object, *, on_unknown: OnUnknown = "raise", kind: str = "id"
    ) -> np.ndarray:
        """Dense indices (int64) of external ``ids``.

        Unknown ids raise :class:`UnknownIdError` (``on_unknown="raise"``) or map to -1
        (``"warn"`` also emits a :class:`~lmrec.errors.DataWarning`).
        """
        arr = as_id_array(ids)
        idx = self._positions(arr)
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
        """External ids of dense ``indices`` (int64, or an object array of str)."""
        return self._ids[np.asarray(indices, dtype=np.int64)]

    def extend(self, ids: Iterable[object]) -> IdMap:
        """A new map with the ids not yet present appended, keeping existing indices."""
        arr = pd.unique(as_id_array(ids))
        new = arr[self._positions(arr) < 0]
        if len(new) == 0:
            return self
        if self.kind == "int" and new.dtype.kind == "i":
            return IdMap(np.concatenate([self._ids, new]))
        return IdMap(np.concatenate([self.texts(), _texts(new)]))
