"""Reliability check 7: generated interaction files, and what reading each one must give.

A Hypothesis strategy (:func:`cases`) writes CSV or Parquet files with the inputs that
break readers -- missing, empty, 'nan' and negative ids, duplicates, integers at 2**53+1
and 2**63-1, text ids that look like numbers ("007", "-0", " 7"), multi-line quoted
ids, header-only and empty files, rows with the wrong number of fields, columns that
mix integers and text, a byte-order mark, CRLF line ends, UTF-16 -- together with an
independent oracle of the outcome. :func:`check_case` reads the file with
``load_dataset`` and with ``ingest`` and asserts the property:

- either a :class:`~lmrec.errors.DataError` that names the file, and, where one row
  is at fault, that row (the first bad one) and its column;
- or a data set whose id maps round-trip every external id exactly (its text, no
  float conversion), with as many users and items as distinct ids, and duplicate
  pairs summed (``duplicates="sum"``).

Anything else (another exception, a wrong id, a wrong count) fails. Used by
``tests/test_ingest_properties.py`` (a few hundred examples in the default run) and
``benchmarks/ingest_properties.py`` (2,000 or more).
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

MISSING = {"", "nan", "NaN", "NAN", "<NA>", "None", "null", "NULL", "NaT"}
F32_MAX = float(np.finfo(np.float32).max)

_INTS = st.one_of(
    st.integers(-5, 40),
    st.sampled_from([2**53 + 1, 2**63 - 1, -(2**63), 2**53, 0, -7]),
    st.integers(-(2**63), 2**63 - 1),
)
_TEXT_IDS = st.one_of(
    st.sampled_from(
        [
            "007",
            "-0",
            "a",
            "NA",
            "u1",
            "é",
            "日本",
            "x y",
            "a,b",
            'q"t',
            "1.5",
            "1e3",
            "2**63",
            "18446744073709551616",
            "a\nb",
            "+7",
            "0x10",
            " 7 ",
            "\t12",
        ]
    ),
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
        min_size=1,
        max_size=6,
    ),
)
_BAD_IDS = st.sampled_from(["", "nan", "NULL", "None", "NaN", "<NA>"])
_WEIGHTS = st.sampled_from(["1", "2", "0", "2.5", "3e38", "1e39", "-1", "nan", "abc", "", "inf"])


@dataclass
class Case:
    """One generated file and what reading it must give."""

    name: str
    data: bytes | None = None  # CSV bytes (None: a Parquet table)
    table: object = None  # pyarrow.Table for Parquet
    user: list[object] = field(default_factory=list)
    item: list[object] = field(default_factory=list)
    weight: list[str] | None = None
    ragged: int | None = None  # 1-based data row with the wrong number of fields
    file_error: str | None = None  # expected words of a file-level error

    @property
    def suffix(self) -> str:
        return ".csv" if self.data is not None else ".parquet"


def _text(value: object) -> str | None:
    """The id a cell stands for, as text (None: missing)."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    text = str(value).strip(" \t")
    return None if text in MISSING else text


def _weight_problem(text: str) -> bool:
    t = text.strip()
    try:
        v = float(t)
    except ValueError:
        return True
    return not math.isfinite(v) or v < 0 or abs(v) > F32_MAX or (0 < abs(v) < 1e-45)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A CSV or Parquet interaction file (see the module docstring)."""
    kind = draw(st.sampled_from(["csv", "csv", "csv", "parquet"]))
    n = draw(st.integers(0, 12))
    id_kinds = [draw(st.sampled_from(["int", "text", "mixed"])) for _ in range(2)]

    def ids(kind: str) -> list[object]:
        out: list[object] = []
        for _ in range(n):
            if draw(st.integers(0, 40)) == 0:
                out.append(draw(_BAD_IDS))
            elif kind == "int" or (kind == "mixed" and draw(st.booleans())):
                out.append(draw(_INTS))
            else:
                out.append(draw(_TEXT_IDS))
        if n > 2 and draw(st.booleans()):  # repeat a pair: duplicates are summed
            out[-1] = out[0]
        return out

    case = Case(name=kind, user=ids(id_kinds[0]), item=ids(id_kinds[1]))
    if n > 2:
        case.item[-1] = case.item[0] if case.user[-1] == case.user[0] else case.item[-1]
    if draw(st.booleans()):
        case.weight = [draw(_WEIGHTS) if draw(st.integers(0, 12)) == 0 else "1" for _ in range(n)]
    if kind == "parquet":
        return _parquet(draw, case)
    return _csv(draw, case)


def _csv(draw: st.DrawFn, case: Case) -> Case:
    if draw(st.integers(0, 30)) == 0:
        case.data, case.file_error = b"", "empty"
        return case
    cols = ["user", "item"] + (["w"] if case.weight is not None else [])
    extra = draw(st.booleans())
    if extra:
        cols.append("note")
    order = draw(st.permutations(cols))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(order)
    n = len(case.user)
    ragged_at = draw(st.integers(0, n - 1)) if n and draw(st.integers(0, 5)) == 0 else n + 1
    for r in range(n):
        values = {"user": case.user[r], "item": case.item[r], "note": "x"}
        if case.weight is not None:
            values["w"] = case.weight[r]
        row = ["" if values[c] is None else str(values[c]) for c in order]
        if r == ragged_at:
            row = row[:1] if draw(st.booleans()) else [*row, "extra"]
            case.ragged = r + 1
        writer.writerow(row)
    text = buf.getvalue()
    if draw(st.integers(0, 4)) == 0:
        text = "\ufeff" + text
    encoding = "utf-16" if draw(st.integers(0, 9)) == 0 else "utf-8"
    case.data = text.encode(encoding)
    if n == 0:
        case.file_error = "no data rows"
    return case


def _parquet(draw: st.DrawFn, case: Case) -> Case:
    import pyarrow as pa

    columns = {}
    for role, values in (("user", case.user), ("item", case.item)):
        as_ints = all(isinstance(v, int) for v in values)
        how = draw(st.sampled_from(["native", "string", "float", "binary"]))
        if how == "float" and as_ints and all(abs(v) <= 2**53 for v in values):
            with_nan = [float(v) for v in values]
            if values and draw(st.booleans()):
                with_nan[draw(st.integers(0, len(values) - 1))] = float("nan")
            values[:] = with_nan
            columns[role] = pa.array(values, pa.float64())
        elif how in ("native", "float") and as_ints:
            columns[role] = pa.array(values, pa.int64())
        else:
            texts = [None if v is None else str(v) for v in values]
            values[:] = texts
            typ = pa.binary() if how == "binary" else pa.string()
            columns[role] = pa.array(
                [None if t is None else (t.encode() if how == "binary" else t) for t in texts], typ
            )
    if case.weight is not None:
        columns["w"] = pa.array(case.weight, pa.string())
    case.table = pa.table(columns)
    if not case.user:
        case.file_error = "no data rows"
    return case


# ---------------------------------------------------------------------- the oracle
@dataclass
class Expected:
    """What a case must give: an error (row, column) or the data set's ids and weights."""

    error_row: int | None = None
    error_column: str | None = None
    file_error: str | None = None
    pairs: dict[tuple[str, str], float] = field(default_factory=dict)


def expect(case: Case) -> Expected:
    """The oracle, written without the library's code paths."""
    if case.file_error:
        return Expected(file_error=case.file_error)
    if case.ragged is not None:
        return Expected(error_row=case.ragged)
    pairs: dict[tuple[str, str], float] = {}
    for r, (u, i) in enumerate(zip(case.user, case.item, strict=True)):
        tu, ti = _text(u), _text(i)
        w = case.weight[r] if case.weight is not None else None
        blank = (
            case.data is not None
            and _raw(u) == ""
            and _raw(i) == ""
            and (w is None or w.strip() == "")
        )
        if blank:
            continue
        for text, column in ((tu, "user"), (ti, "item")):
            if text is None:
                return Expected(error_row=r + 1, error_column=column)
        if w is not None and _weight_problem(w):
            return Expected(error_row=r + 1, error_column="w")
        pairs[(tu, ti)] = pairs.get((tu, ti), 0.0) + (float(w) if w is not None else 1.0)
    if not pairs:
        return Expected(file_error="no data rows")
    if any(v > F32_MAX for v in pairs.values()):
        return Expected(error_column="w")
    return Expected(pairs=pairs)


def _raw(value: object) -> str:
    return "" if value is None else str(value).strip(" \t")


# ---------------------------------------------------------------------- the property
def write_case(case: Case, directory: Path) -> Path:
    """The case's file in ``directory``."""
    path = directory / f"case{case.suffix}"
    if case.data is not None:
        path.write_bytes(case.data)
    else:
        import pyarrow.parquet as pq

        pq.write_table(case.table, path)
    return path


def check_case(case: Case, directory: Path) -> str:
    """Read the case with load_dataset and ingest; assert the property; return the outcome."""
    from lmrec.data import load_dataset
    from lmrec.data.ingest import ingest
    from lmrec.errors import DataError

    path = write_case(case, directory)
    want = expect(case)
    kw = {"weight": "w"} if case.weight is not None else {}
    sep = {"sep": ","} if case.data is not None else {}
    outcomes = []
    for reader in ("load_dataset", "ingest"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if reader == "load_dataset":
                    ds, _ = load_dataset(path, duplicates="sum", **sep, **kw)
                else:
                    ds = ingest(path, duplicates="sum", **sep, **kw)
        except DataError as e:
            _check_error(str(e), path, want, reader)
            outcomes.append("error")
            continue
        _check_dataset(ds, want, reader)
        outcomes.append("dataset")
    assert outcomes[0] == outcomes[1], outcomes
    return outcomes[0]


def _check_error(msg: str, path: Path, want: Expected, reader: str) -> None:
    assert want.pairs == {} or want.error_column == "w", f"{reader}: unexpected error {msg!r}"
    assert path.name in msg, msg
    assert "\n" not in msg and "Traceback" not in msg, msg
    if want.file_error:
        assert want.file_error in msg or "no data" in msg, (want.file_error, msg)
        return
    if want.error_row is not None:
        assert f"row {want.error_row}" in msg, (want.error_row, msg)
    elif reader == "load_dataset":
        assert "row " in msg, msg  # a summed weight names the first row of its pair
    if want.error_column is not None:
        assert f"'{want.error_column}'" in msg, (want.error_column, msg)


def _check_dataset(ds: object, want: Expected, reader: str) -> None:
    assert want.pairs, f"{reader}: expected an error, read a data set"
    users = {u for u, _ in want.pairs}
    items = {i for _, i in want.pairs}
    for ids, expected, kind in ((ds.user_ids, users, "user"), (ds.item_ids, items, "item")):
        got = [str(x) for x in ids.ids.tolist()]
        assert sorted(got) == sorted(expected), (reader, kind, got, expected)
        assert len(ids) == len(expected)
        idx = ids.index(sorted(expected))  # every external id finds itself again
        assert [str(x) for x in ids.lookup(idx).tolist()] == sorted(expected)
    frame = ds.to_frame()
    columns = (frame["user"].tolist(), frame["item"].tolist(), frame["weight"].tolist())
    got = {(str(u), str(i)): float(w) for u, i, w in zip(*columns, strict=True)}
    assert got.keys() == want.pairs.keys(), (reader, got, want.pairs)
    for key, w in want.pairs.items():
        assert math.isclose(got[key], w, rel_tol=1e-6), (reader, key, got[key], w)
