"""Issue 16, data: values that do not fit, timestamps, odd columns and encodings.

Each test here failed before the fix it names: a weight of 1e39 became inf in float32,
a millisecond timestamp among seconds became the year 51969, day/month was guessed
per row, Parquet list ids became "[1 2]", binary ids gave a traceback, UTF-16 was
called binary, a repeated header silently used one column, and a byte-order mark
made the first id of a user list unknown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmrec.cli import main
from lmrec.data import load_dataset, read_interactions
from lmrec.data.catalogs import read_id_list
from lmrec.data.ingest import ingest
from lmrec.errors import ConfigError, DataError, DataWarning


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def cli(*args: object) -> int:
    return main([str(a) for a in args])


# ---------------------------------------------------------------------- float32 overflow
def test_weight_beyond_float32_is_an_error_naming_file_row_and_column(tmp_path):
    p = write(tmp_path, "w.csv", "user,item,w\n1,a,2\n2,b,1e39\n")
    with pytest.raises(DataError) as err:
        read_interactions(p, weight="w")
    msg = str(err.value)
    assert "w.csv, row 2 (line 3), column 'w'" in msg
    assert "does not fit float32" in msg and "on_overflow='clip'" in msg
    with pytest.raises(DataError, match="does not fit float32"):
        load_dataset(p, weight="w")
    with pytest.raises(DataError, match="does not fit float32"):
        ingest(p, weight="w")


def test_overflow_clip_is_counted(tmp_path):
    p = write(tmp_path, "w.csv", "user,item,w,r\n1,a,2,1\n2,b,1e39,-1e40\n3,c,1e-50,1\n")
    frame, report = read_interactions(p, weight="w", rating="r", on_overflow="clip")
    assert np.isfinite(frame["weight"]).all() and np.isfinite(frame["rating"]).all()
    assert frame["weight"].iloc[1] == np.finfo(np.float32).max
    assert frame["rating"].iloc[1] == -np.finfo(np.float32).max
    assert frame["weight"].iloc[2] > 0  # a tiny weight is not rounded to 0
    assert any("2 weight(s) clipped" in n for n in report.notes)
    assert any("1 rating(s) clipped" in n for n in report.notes)
    ds = ingest(p, weight="w", on_overflow="clip")
    assert np.isfinite(ds.matrix.data).all()


def test_summed_weights_beyond_float32_are_caught(tmp_path):
    p = write(tmp_path, "w.csv", "user,item,w\n1,a,3e38\n1,a,3e38\n")
    with pytest.raises(DataError, match=r"add up to 6e\+38.*does not\s+fit float32"):
        read_interactions(p, weight="w", duplicates="sum")
    frame, _ = read_interactions(p, weight="w", duplicates="sum", on_overflow="clip")
    assert frame["weight"].iloc[0] == np.finfo(np.float32).max
    with pytest.raises(DataError, match=r"summed weights \(column .w.\) beyond float32"):
        ingest(p, weight="w")


def test_cli_overflow_names_the_flag_and_clip_trains(tmp_path, capsys):
    p = write(tmp_path, "w.csv", "user,item,w\n1,a,2\n1,b,1\n2,a,1e39\n2,b,1\n")
    assert (
        cli("train", "--data", p, "--weight-col", "w", "--model", "ease", "--out", tmp_path / "m")
        == 2
    )
    err = capsys.readouterr().err
    assert "row 3 (line 4), column 'w'" in err and "--on-overflow clip" in err
    assert "on_overflow=" not in err
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------- timestamps
def test_a_millisecond_value_among_seconds_is_reported_with_its_row(tmp_path):
    p = write(
        tmp_path, "t.csv", "user,item,ts\n1,a,1588291200\n2,b,1588291300000\n3,c,1588291400\n"
    )
    with pytest.raises(DataError) as err:
        read_interactions(p, timestamp="ts")
    msg = str(err.value)
    assert "row 2 (line 3), column 'ts'" in msg
    assert "looks like milliseconds while the column holds seconds" in msg
    with pytest.raises(DataError, match="looks like milliseconds"):
        ingest(p, timestamp="ts")


def test_a_second_value_among_milliseconds_is_reported(tmp_path):
    p = write(
        tmp_path, "t.csv", "user,item,ts\n1,a,1588291200000\n2,b,1588291300\n3,c,1588291400000\n"
    )
    with pytest.raises(
        DataError,
        match=r"row 2 \(line 3\).*looks like seconds while the column "
        r"holds milliseconds",
    ):
        read_interactions(p, timestamp="ts")
    with pytest.warns(DataWarning, match="dropped 1 invalid row"):
        frame, report = read_interactions(p, timestamp="ts", on_invalid="drop")
    assert frame["timestamp"].tolist() == [1588291200.0, 1588291400.0]
    assert any("epoch milliseconds" in n for n in report.notes)


def test_millisecond_column_reads_as_seconds(tmp_path):
    p = write(tmp_path, "t.csv", "user,item,ts\n1,a,1588291200123\n2,b,1588291300000\n")
    frame, _ = read_interactions(p, timestamp="ts")
    assert frame["timestamp"].tolist() == [1588291200.123, 1588291300.0]
    frame, _ = read_interactions(p, timestamp="ts", timestamp_format="ms")
    assert frame["timestamp"].tolist() == [1588291200.123, 1588291300.0]


def test_implausible_dates_are_reported(tmp_path):
    p = write(tmp_path, "t.csv", "user,item,ts\n1,a,2020-01-01\n2,b,2300-01-01\n")
    with pytest.raises(
        DataError,
        match=r"row 2 \(line 3\).*'2300-01-01' is on 2300-01-01, an "
        "implausible date",
    ):
        read_interactions(p, timestamp="ts")


def test_day_and_month_are_decided_for_the_whole_column(tmp_path):
    p = write(tmp_path, "t.csv", "user,item,ts\n1,a,01/02/2020\n2,b,13/02/2020\n")
    frame, report = read_interactions(p, timestamp="ts")
    days = pd.to_datetime(frame["timestamp"], unit="s").dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2020-02-01", "2020-02-13"]  # both day-first, as 13/02 proves
    assert any("%d/%m/%Y" in n for n in report.notes)


def test_ambiguous_day_month_asks_for_the_format(tmp_path):
    p = write(tmp_path, "t.csv", "user,item,ts\n1,a,01/02/2020\n2,b,03/04/2020\n")
    with pytest.raises(
        DataError,
        match=r"'01/02/2020'.*timestamp_format='%d/%m/%Y' or "
        r"timestamp_format='%m/%d/%Y'",
    ):
        read_interactions(p, timestamp="ts")
    frame, _ = read_interactions(p, timestamp="ts", timestamp_format="%m/%d/%Y")
    days = pd.to_datetime(frame["timestamp"], unit="s").dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2020-01-02", "2020-03-04"]


def test_rows_not_in_the_columns_format_are_reported(tmp_path):
    p = write(tmp_path, "t.csv", "user,item,ts\n1,a,13/02/2020\n2,b,2020-02-14\n3,c,14/02/2020\n")
    with pytest.raises(
        DataError,
        match=r"row 2 \(line 3\), column 'ts': '2020-02-14' is not a "
        r"timestamp \(expected dates in the layout %d/%m/%Y",
    ):
        read_interactions(p, timestamp="ts")


def test_cli_timestamp_format_flag(tmp_path, capsys):
    p = write(tmp_path, "t.csv", "user,item,ts\n1,a,01/02/2020\n2,b,03/04/2020\n1,b,05/06/2020\n")
    out = tmp_path / "m"
    assert (
        cli("train", "--data", p, "--timestamp-col", "ts", "--model", "popularity", "--out", out)
        == 2
    )
    assert "--timestamp-format '%d/%m/%Y'" in capsys.readouterr().err
    assert (
        cli(
            "train",
            "--data",
            p,
            "--timestamp-col",
            "ts",
            "--timestamp-format",
            "%d/%m/%Y",
            "--model",
            "popularity",
            "--out",
            out,
        )
        == 0
    )


def test_bad_timestamp_format_is_a_config_error(tmp_path):
    p = write(tmp_path, "t.csv", "user,item,ts\n1,a,1\n")
    with pytest.raises(ConfigError, match="strftime"):
        read_interactions(p, timestamp="ts", timestamp_format="dd/mm/yyyy")


# ---------------------------------------------------------------------- odd id columns
def test_parquet_list_and_struct_id_columns_are_clear_errors(tmp_path):
    p = tmp_path / "l.parquet"
    pq.write_table(pa.table({"user": [[1, 2], [3]], "item": ["a", "b"]}), p)
    with pytest.raises(DataError, match=r"column 'user' holds list values .*explode"):
        read_interactions(p)
    with pytest.raises(DataError, match="holds list values"):
        ingest(p)
    s = tmp_path / "s.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [{"id": 1}, {"id": 2}]}), s)
    with pytest.raises(DataError, match="column 'item' holds struct values"):
        read_interactions(s)


def test_parquet_binary_ids_read_as_text_or_name_the_bad_row(tmp_path):
    p = tmp_path / "b.parquet"
    pq.write_table(pa.table({"user": pa.array([b"u1", b"u2"], pa.binary()), "item": [1, 2]}), p)
    frame, _ = read_interactions(p)
    assert frame["user"].tolist() == ["u1", "u2"]
    assert ingest(p).user_ids.ids.tolist() == ["u1", "u2"]
    pq.write_table(
        pa.table({"user": pa.array([b"u1", b"\xff\xfe"], pa.binary()), "item": [1, 2]}), p
    )
    with pytest.raises(
        DataError,
        match=r"b\.parquet, row 2, column 'user': the user id is binary "
        "data that is not UTF-8",
    ):
        read_interactions(p)


def test_boolean_and_date_id_columns_are_refused(tmp_path):
    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"user": [True, False], "item": [1, 2]}), p)
    with pytest.raises(DataError, match="column 'user' holds bool values"):
        read_interactions(p)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_are_read(tmp_path, encoding):
    p = write(tmp_path, "u16.csv", "user,item,rating\nAnna,café,4\nBo,thé,5\n".encode(encoding))
    frame, report = read_interactions(p, rating="rating")
    assert frame["item"].tolist() == ["café", "thé"]
    assert frame["rating"].tolist() == [4.0, 5.0]
    assert any("UTF-16" in n for n in report.notes)


def test_duplicated_header_is_an_error_naming_the_column(tmp_path):
    p = write(tmp_path, "h.csv", "user,item,item\n1,a,b\n")
    with pytest.raises(
        DataError,
        match=r"h\.csv, line 1: the header names column 'item' twice "
        r"\(fields 2 and 3\)",
    ):
        read_interactions(p)
    with pytest.raises(DataError, match="twice"):
        ingest(p)


def test_bom_user_list_reads_its_first_id(tmp_path):
    p = write(tmp_path, "users.txt", "\ufeff7\n8\n\n")
    assert read_id_list(p).tolist() == [7, 8]
    q = write(tmp_path, "users.csv", "\ufeffuser,extra\nu1,x\nu2,y\n")
    assert read_id_list(q).tolist() == ["u1", "u2"]
    r = write(tmp_path, "items.txt", "\ufeff007\n8\n".encode())
    assert read_id_list(r, column="item").tolist() == ["007", "8"]


def test_cli_recommend_with_a_bom_user_list(tmp_path, capsys):
    data = write(tmp_path, "d.csv", "user,item\n7,a\n7,b\n8,a\n9,b\n9,c\n")
    assert cli("train", "--data", data, "--model", "popularity", "--out", tmp_path / "m") == 0
    users = write(tmp_path, "users.txt", "\ufeff7\n8\n")
    capsys.readouterr()
    assert (
        cli("recommend", "--model", tmp_path / "m", "--users", users, "-k", "1", "--output", "-")
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "user,item,rank,score"
    assert [ln.split(",")[0] for ln in lines[1:]] == ["7", "8"]


# ---------------------------------------------------------------------- exact ids
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_large_integer_ids_round_trip_exactly(tmp_path, suffix):
    ids = [2**53 + 1, 2**63 - 1, -(2**63), 0, -7]
    frame = pd.DataFrame({"user": ids, "item": [1, 2, 3, 4, 5]})
    p = tmp_path / f"big.{suffix}"
    frame.to_csv(p, index=False) if suffix == "csv" else frame.to_parquet(p)
    got, _ = read_interactions(p)
    assert got["user"].tolist() == ids and got["user"].dtype == np.int64
    ds, _ = load_dataset(p)
    assert ds.user_ids.kind == "int" and sorted(ds.user_ids.ids.tolist()) == sorted(ids)
    assert ds.user_ids.index([str(2**53 + 1)]).tolist() == ds.user_ids.index([2**53 + 1]).tolist()
    assert ingest(p).user_ids == ds.user_ids


def test_text_ids_stay_text_and_compare_with_integers(tmp_path):
    p = write(tmp_path, "t.csv", "user,item\n007,1\n7,2\n18446744073709551616,3\n")
    frame, _ = read_interactions(p)
    assert frame["user"].tolist() == ["007", "7", "18446744073709551616"]
    ds, _ = load_dataset(p)
    assert ds.user_ids.kind == "str"
    assert ds.user_ids.index([7, "007"]).tolist() == [
        ds.user_ids.index(["7"])[0],
        ds.user_ids.index(["007"])[0],
    ]


def test_integer_and_text_maps_give_the_same_indices(tmp_path):
    a = write(tmp_path, "a.csv", "user,item\n10,1\n2,1\n1,2\n")
    b = tmp_path / "b.parquet"
    pd.DataFrame({"user": ["10", "2", "1"], "item": ["1", "1", "2"]}).to_parquet(b)
    ints, _ = load_dataset(a)
    texts, _ = load_dataset(b)
    assert ints.user_ids.kind == "int" and texts.user_ids.kind == "str"
    assert ints.user_ids == texts.user_ids  # same ids, same (text) order: "1" < "10" < "2"
    assert ints.user_ids.ids.tolist() == [1, 10, 2]
    assert (ints.matrix != texts.matrix).nnz == 0


def test_saved_dataset_keeps_integer_ids(tmp_path):
    p = write(tmp_path, "a.csv", "user,item\n10,1\n2,1\n1,2\n")
    ds, _ = load_dataset(p)
    from lmrec.data import Dataset

    back = Dataset.load(ds.save(tmp_path / "ds"))
    assert back.user_ids.kind == "int" and back.user_ids == ds.user_ids


def test_string_model_files_still_load_and_answer_integer_queries(tmp_path):
    from lmrec.data.idmap import IdMap
    from lmrec.models import create_model, load_model

    p = write(tmp_path, "a.csv", "user,item\nu1,10\nu1,11\nu2,10\n")
    ds, _ = load_dataset(p)
    assert ds.item_ids.kind == "int"
    model = create_model("popularity", {}).fit(ds)
    # a model written before integer maps held its ids as text
    model.item_ids_ = IdMap(np.array(["10", "11"], dtype=object))
    model.save(tmp_path / "m")
    old = load_model(tmp_path / "m")
    assert old.item_ids_.kind == "str"
    assert old.recommend(["u2"], k=1)["item"].tolist() == ["11"]
    assert old.item_ids_.index([11]).tolist() == [1]


def test_retrain_pairs_of_an_integer_id_model_and_text_feedback():
    from lmrec.data import Dataset
    from lmrec.models import create_model
    from lmrec.serve.retrain import training_frame

    ds = Dataset.from_frame(pd.DataFrame({"user": [1, 1, 2, 3], "item": [10, 11, 10, 11]}))
    model = create_model("popularity", {}).fit(ds)
    events = pd.DataFrame(
        {"id": [1, 2], "user": ["1", "4"], "item": ["10", "12"], "weight": [1.0, 1.0]}
    )
    pairs = training_frame(model, events)  # user 1 / item 10 is one pair, not two
    assert sorted(map(tuple, pairs.to_numpy().tolist())) == [
        ("1", "10"),
        ("1", "11"),
        ("2", "10"),
        ("3", "11"),
        ("4", "12"),
    ]
