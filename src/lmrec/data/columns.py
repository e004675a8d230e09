"""Typed, checked columns from Arrow arrays: ids coded once, numbers that fit their dtype.

Every reader (:func:`lmrec.data.read_interactions`, :func:`lmrec.data.load_dataset`,
:func:`lmrec.data.ingest.ingest`) hands the Arrow columns of a file, or of one chunk
of it, to :func:`code_ids` and :func:`parse_numbers` (timestamps:
:mod:`lmrec.data.timestamps`), through :func:`lmrec.data.rows.check_rows`. Nothing here
drops a row: problems come back as :class:`~lmrec.data.validate.Issue` row masks, and
the caller raises on the first one (naming file, row and column) or drops them all.

Ids are *coded* on the way: each distinct id gets a code, each row the code of its id,
so later steps (duplicates, id maps, the CSR matrix) work on int32 codes and never on
per-row Python strings. A text column whose every id is a canonical integer ("7", not
"007") becomes integers; see :mod:`lmrec.data.idmap` for why that keeps ids exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.validate import MISSING_ID_TOKENS, Issue, Locator, show
from lmrec.data.vocabulary import fix
from lmrec.errors import DataError

__all__ = ["IdColumn", "code_ids"]

#: Why a distinct id value is unusable (``IdColumn.problems``).
OK, NULL, EMPTY, TOKEN, NON_INTEGRAL = 0, 1, 2, 3, 4
_F32 = np.finfo(np.float32)


@dataclass
class IdColumn:
    """One id column, coded.

    ``codes`` (int32, one per row) index ``values``, the distinct ids in code order:
    an int64 array when every usable id is an integer, else an Arrow string array
    (text stays in Arrow until a caller needs Python strings, see :meth:`external`).
    ``problems[c]`` says why value ``c`` is unusable (0 when it is fine) and
    ``labels[c]`` holds its text for messages; a row whose cell is null has code -1.
    """

    codes: np.ndarray
    values: Any
    problems: np.ndarray
    labels: dict[int, str] = field(default_factory=dict)

    @property
    def is_int(self) -> bool:
        """Whether the ids are integers (int64 values)."""
        return isinstance(self.values, np.ndarray)

    def external(self) -> np.ndarray:
        """The distinct ids as numpy: int64, or an object array of ``str``."""
        if self.is_int:
            return self.values
        return np.asarray(self.values.to_numpy(zero_copy_only=False), dtype=object)

    def value(self, code: int) -> object:
        """One id (or the text of an unusable value) for a message."""
        if code in self.labels:
            return self.labels[code]
        v = self.values[code]
        return v if self.is_int else v.as_py()

    def bad_rows(self) -> np.ndarray:
        """Rows whose id is missing or unusable."""
        bad = self.codes < 0
        if self.problems.any():
            bad |= self.problems[np.maximum(self.codes, 0)].astype(bool) & (self.codes >= 0)
        return bad

    def issues(self, column: str, role: str) -> list[Issue]:
        """Row issues (missing, empty, 'nan', non-integral) in the words of the old readers."""
        codes = self.codes
        if not self.problems.any() and (len(codes) == 0 or codes.min() >= 0):
            return []  # the common case: every id usable
        reason = np.where(
            codes < 0, NULL, self.problems[np.maximum(codes, 0)] if len(self.problems) else 0
        )
        out = []
        for code, text in (
            (NULL, lambda i: f"{role} id is missing"),
            (EMPTY, lambda i: f"{role} id is empty"),
            (
                TOKEN,
                lambda i: f"{role} id is missing ({self.value(int(codes[i]))!r} means no value)",
            ),
            (
                NON_INTEGRAL,
                lambda i: (
                    f"{role} id {self.value(int(codes[i]))} is a non-integral number; "
                    "store ids as strings or integers"
                ),
            ),
        ):
            mask = reason == code
            if mask.any():
                out.append(Issue(column, mask, text))
        return out

    def take(self, rows: np.ndarray) -> IdColumn:
        """The column at row positions ``rows``, values renumbered to the ones still used."""
        col = IdColumn(self.codes[rows], self.values, self.problems, self.labels)
        return col.compact()

    def compact(self) -> IdColumn:
        """Renumber codes so every value is used by some row (dictionaries may list extra ones)."""
        complete = len(self.codes) == 0 or self.codes.min() >= 0
        used = np.zeros(len(self.problems), bool)
        used[self.codes if complete else self.codes[self.codes >= 0]] = True
        if used.all():
            return self
        new = (np.cumsum(used, dtype=np.int64) - 1).astype(np.int32)
        if complete:
            codes = new[self.codes]
        else:
            codes = np.where(self.codes >= 0, new[np.maximum(self.codes, 0)], -1).astype(np.int32)
        if self.is_int:
            values = self.values[used]
        else:
            import pyarrow as pa

            values = self.values.filter(pa.array(used))
        labels = {int(new[c]): t for c, t in self.labels.items() if used[c]}
        return IdColumn(codes, values, self.problems[used], labels)


def _chunks(arr: Any) -> list[Any]:
    import pyarrow as pa

    return list(arr.chunks) if isinstance(arr, pa.ChunkedArray) else [arr]


def _type_name(typ: Any) -> str:
    import pyarrow as pa

    checks = (
        (pa.types.is_list, "list"),
        (pa.types.is_large_list, "list"),
        (pa.types.is_fixed_size_list, "list"),
        (pa.types.is_struct, "struct"),
        (pa.types.is_map, "map"),
        (pa.types.is_union, "union"),
    )
    for check, name in checks:
        if check(typ):
            return name
    return ""


def _kind_error(arr: Any, column: str, role: str, locator: Locator) -> DataError:
    typ = arr.type
    nested = _type_name(typ)
    if nested:
        return DataError(
            f"{locator.path}: column {column!r} holds {nested} values ({typ}), but a {role} id "
            f"column needs one string or integer per row. Flatten it first (e.g. explode a list "
            f"into one row per id, or pick one field of a struct), or choose another column "
            f"({fix(role, 'NAME')})."
        )
    return DataError(
        f"{locator.path}: column {column!r} holds {typ} values, but {role} ids must be strings "
        f"or integers. Convert the column, or choose another one ({fix(role, 'NAME')})."
    )


def code_ids(
    arr: Any, column: str, role: str, locator: Locator, *, infer_ints: bool = True
) -> IdColumn:
    """Code an Arrow id column (array or chunked array) of any supported type.

    Strings (stripped of surrounding blanks) stay text unless every usable one is a
    canonical integer and ``infer_ints`` (true for untyped text files; a typed
    Parquet string column keeps its ids text); integer columns stay integers; integral floats (an integer
    column with a null, as pandas writes it) become integers; dictionary columns are
    coded through their dictionary; binary columns are decoded as UTF-8. Lists,
    structs, maps, booleans, dates and binary data that is not UTF-8 raise
    :class:`DataError` naming the column (and the row, for bad bytes).
    """
    import pyarrow as pa

    typ = arr.type
    if pa.types.is_dictionary(typ):
        return _code_dictionary(arr, column, role, locator, infer_ints)
    if pa.types.is_null(typ):
        return IdColumn(
            np.full(len(arr), -1, np.int32), np.empty(0, np.int64), np.empty(0, np.int8)
        )
    if pa.types.is_integer(typ):
        return _code_integers(arr)
    if pa.types.is_floating(typ):
        return _code_floats(arr)
    if pa.types.is_decimal(typ) and typ.scale == 0:
        return _code_integers(
            arr.cast(pa.int64()) if typ.precision <= 18 else arr.cast(pa.string())
        )
    if (
        pa.types.is_binary(typ)
        or pa.types.is_large_binary(typ)
        or pa.types.is_fixed_size_binary(typ)
    ):
        return code_ids(
            _utf8(arr, column, role, locator), column, role, locator, infer_ints=infer_ints
        )
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return _code_strings(arr, infer_ints=infer_ints)
    raise _kind_error(arr, column, role, locator)


def _utf8(arr: Any, column: str, role: str, locator: Locator) -> Any:
    """Binary ids as text, or an error naming the first row that is not UTF-8."""
    import pyarrow as pa

    try:
        return arr.cast(pa.large_string() if pa.types.is_large_binary(arr.type) else pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for pos, value in enumerate(arr.to_pylist()):
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(
                f"{locator.path}, {locator.where(pos)}, column {column!r}: the {role} id is binary "
                f"data that is not UTF-8 text ({show(value)}). Store ids as text or integers."
            ) from None
    raise DataError(f"{locator.path}: column {column!r} cannot be read as text ids.")


def _factorize_ints(values: np.ndarray, valid: np.ndarray | None) -> IdColumn:
    if valid is None:
        codes, uniq = _codes_of_ints(values)
        return IdColumn(codes, uniq, np.zeros(len(uniq), np.int8))
    codes = np.full(len(values), -1, np.int32)
    sub, uniq = pd.factorize(values[valid])
    codes[valid] = sub
    return IdColumn(codes, np.asarray(uniq, np.int64), np.zeros(len(uniq), np.int8))


def _codes_of_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, distinct values) of int64 ids.

    Ids in a range no wider than twice their count (the usual 0..n or 1..n ids)
    are coded through a table over the range, in two linear passes; sparse ids (up to
    2**63) through a hash table, so memory never grows with the largest id.
    """
    if len(values) == 0:
        return np.empty(0, np.int32), np.empty(0, np.int64)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo < 2 * len(values):
        offsets = values - lo
        seen = np.zeros(hi - lo + 1, bool)
        seen[offsets] = True
        table = np.cumsum(seen, dtype=np.int32) - 1
        return table[offsets], np.flatnonzero(seen).astype(np.int64) + lo
    codes, uniq = pd.factorize(values)
    return codes.astype(np.int32), np.asarray(uniq, np.int64)


def _valid_mask(arr: Any) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _code_integers(arr: Any) -> IdColumn:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_uint64(arr.type) and arr.null_count < len(arr):
        if pc.max(arr).as_py() > 2**63 - 1:
            return _code_strings(pc.cast(arr, pa.string()))
    valid = _valid_mask(arr)
    values = pc.cast(arr.fill_null(0), pa.int64()).to_numpy()
    return _factorize_ints(np.asarray(values, np.int64), valid)


def _code_floats(arr: Any) -> IdColumn:
    import pyarrow as pa
    import pyarrow.compute as pc

    f = np.asarray(pc.cast(arr, pa.float64()).fill_null(np.nan).to_numpy(), np.float64)
    finite = np.isfinite(f)
    safe = np.where(finite, f, 0)
    integral = finite & (np.mod(safe, 1) == 0) & (np.abs(safe) < 2.0**63)
    col = _factorize_ints(np.where(integral, f, 0).astype(np.int64), integral)
    odd = finite & ~integral
    if odd.any():  # non-integral values get codes too, flagged, so messages can show them
        sub, uniq = pd.factorize(f[odd])
        n = len(col.values)
        col.codes[odd] = sub + n
        col.values = np.concatenate([col.values, np.zeros(len(uniq), np.int64)])
        col.problems = np.concatenate([col.problems, np.full(len(uniq), NON_INTEGRAL, np.int8)])
        col.labels = {n + j: repr(float(v)) for j, v in enumerate(uniq)}
    return col


_POW10 = np.array([10**k for k in range(20)], dtype=np.uint64)


def _int_values(arr: Any) -> np.ndarray | None:
    """int64 values of a string array of decimal integers (not yet known canonical), or None.

    Cheap tests run first: a failing cast over a million strings costs most of a second.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(arr) == 0 or arr.null_count:
        return None
    first = arr[0].as_py()
    if not (first.isascii() and first.lstrip("-").isdigit()):
        return None
    head = arr.slice(0, 10_000)  # a failing cast is slow: look at a sample first
    if not pc.all(pc.ascii_is_decimal(pc.utf8_ltrim(head, characters="-"))).as_py():
        return None
    try:
        return np.asarray(pc.cast(arr, pa.int64()).to_numpy(), np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # beyond int64, or stray minus signs


def _canonical_ints(arr: Any) -> np.ndarray | None:
    """int64 values of a string array whose every value is a canonical integer, else None.

    Arrow's cast accepts ``"007"``, ``"0x10"`` and ``"-0"``, which would not print back
    the same; a value is canonical when its text is exactly as long as the decimal
    digits of its value (plus a sign), which rules those out. Cheap tests run first:
    a failing cast over a million strings costs most of a second.
    """
    import pyarrow.compute as pc

    ints = _int_values(arr)
    if ints is None:
        return None
    lengths = np.asarray(pc.binary_length(arr), np.int64)
    return ints if np.array_equal(lengths, _text_lengths(ints)) else None


def _text_lengths(ints: np.ndarray) -> np.ndarray:
    """Length of each int64's canonical decimal text (digits, plus 1 for a minus sign)."""
    negative = ints < 0
    magnitude = ints.view(np.uint64).copy()
    np.negative(magnitude, out=magnitude, where=negative)  # two's complement: |v| as uint64
    digits = np.searchsorted(_POW10, magnitude, side="right")
    digits[magnitude == 0] = 1
    return digits + negative


def _code_strings(arr: Any, *, distinct: bool = False, infer_ints: bool = True) -> IdColumn:
    """Text ids: integers when the column is all canonical integers (the fast path), else text.

    ``distinct``: the values are known to be distinct (a dictionary), so each is its own code.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if distinct:
        ints = _canonical_ints(arr) if infer_ints else None
        if ints is not None:
            n = len(ints)
            return IdColumn(np.arange(n, dtype=np.int32), ints, np.zeros(n, np.int8))
    elif infer_ints and (ints := _int_values(arr)) is not None:
        # Canonical when each row's text is as long as its value's decimal text: checked
        # per distinct value, then gathered (rules out "007", "0x10", "-0").
        col = _factorize_ints(ints, None)
        lengths = np.asarray(pc.binary_length(arr), np.int64)
        if np.array_equal(lengths, _text_lengths(col.values)[col.codes]):
            return col
    if distinct:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        lut, values, problems, labels = _clean_texts(arr.fill_null(""), infer_ints)
        codes = lut.astype(np.int32)
        if arr.null_count:
            codes[~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)] = -1
        return IdColumn(codes, values, problems, labels)
    enc = pc.dictionary_encode(arr)
    chunks = _chunks(enc)
    dictionary = chunks[0].dictionary if chunks else pa.array([], pa.string())
    lut, values, problems, labels = _clean_texts(dictionary, infer_ints)
    return IdColumn(_apply_lut(chunks, lut), values, problems, labels)


def _apply_lut(chunks: list[Any], lut: np.ndarray) -> np.ndarray:
    """Per-row codes from dictionary chunks (sharing one dictionary) and a value->code table."""
    parts = []
    lut = lut.astype(np.int32, copy=False)
    for c in chunks:
        if c.null_count == 0:
            parts.append(lut[c.indices.to_numpy(zero_copy_only=False)])  # one gather
            continue
        idx = np.asarray(c.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
        codes = np.where(idx >= 0, lut[np.maximum(idx, 0)] if len(lut) else -1, -1)
        parts.append(codes.astype(np.int32))
    return np.concatenate(parts) if parts else np.empty(0, np.int32)


def _clean_texts(
    texts: Any, infer_ints: bool = True
) -> tuple[np.ndarray, Any, np.ndarray, dict[int, str]]:
    """Strip distinct texts, merge those that become equal, flag missing tokens, find the kind.

    Returns ``lut`` (position in ``texts`` -> code), the coded values (int64 when every
    usable one is a canonical integer, else Arrow text), their problems, and the texts
    of unusable values (for messages). Vectorised with Arrow: a Parquet chunk's
    dictionary can hold the whole catalog.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pc.cast(texts, pa.string()) if not pa.types.is_string(texts.type) else texts
    stripped = pc.utf8_trim_whitespace(texts)
    if pc.any(pc.not_equal(pc.binary_length(stripped), pc.binary_length(texts))).as_py():
        enc = pc.dictionary_encode(stripped)
        lut = np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)
        uniq = enc.dictionary
    else:
        lut, uniq = np.arange(len(texts), dtype=np.int64), texts
    empty = np.asarray(pc.equal(pc.binary_length(uniq), 0).to_numpy(zero_copy_only=False), bool)
    token = np.asarray(
        pc.is_in(uniq, value_set=pa.array(sorted(MISSING_ID_TOKENS - {""}))).to_numpy(
            zero_copy_only=False
        ),
        bool,
    )
    problems = np.where(empty, EMPTY, np.where(token, TOKEN, OK)).astype(np.int8)
    bad = np.flatnonzero(problems)
    labels = (
        dict(zip(bad.tolist(), uniq.take(pa.array(bad)).to_pylist(), strict=True))
        if len(bad)
        else {}
    )
    usable = problems == OK
    if usable.any() and infer_ints:
        ints = _canonical_ints(uniq.filter(pa.array(usable)) if len(bad) else uniq)
        if ints is not None:
            values = np.zeros(len(uniq), np.int64)
            values[usable] = ints
            return lut, values, problems, labels
    return lut, uniq, problems, labels


def _code_dictionary(
    arr: Any, column: str, role: str, locator: Locator, infer_ints: bool
) -> IdColumn:
    """Dictionary columns (Parquet text read as dictionaries): code the dictionaries only."""
    import pyarrow as pa

    chunks = _chunks(arr)
    if len(chunks) > 1:
        chunks = _chunks(pa.chunked_array(chunks, type=arr.type).unify_dictionaries())
    if not chunks:
        return IdColumn(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int8))
    dictionary = chunks[0].dictionary
    if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
        inner = _code_strings(dictionary, distinct=True, infer_ints=infer_ints)
    else:
        inner = code_ids(dictionary, column, role, locator, infer_ints=infer_ints)
    lut = inner.codes.astype(np.int64)
    col = IdColumn(_apply_lut(chunks, lut), inner.values, inner.problems, inner.labels)
    return col.compact()
