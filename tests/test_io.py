"""Reading interaction, item and user files: round trips, policies and every bad input."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.data import (
    Dataset,
    LoadReport,
    check_coverage,
    load_dataset,
    read_interactions,
    read_items,
    read_users,
)
from lmrec.errors import ConfigError, DataError, DataWarning
from tests.bad_inputs import BAD_INPUTS, BadInput


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ---------------------------------------------------------------------- round trips
def test_csv_with_header_keeps_id_strings(tmp_path):
    p = write(tmp_path, "r.csv", "userId,movieId,rating\n007,0042,4.5\n 8 ,1,3\n")
    frame, report = read_interactions(p, user="userId", item="movieId", rating="rating")
    assert list(frame.columns) == ["user", "item", "rating"]
    assert frame["user"].tolist() == ["007", "8"]
    assert frame["item"].tolist() == ["0042", "1"]
    assert frame["user"].dtype == object and all(type(u) is str for u in frame["user"])
    assert frame["rating"].dtype == np.float32
    assert frame["rating"].tolist() == [4.5, 3.0]
    assert report.n_rows_read == 2 and report.n_interactions == 2
    assert "delimiter detected: comma" in report.notes


def test_csv_without_header_uses_positions(tmp_path):
    p = write(tmp_path, "r.csv", "1,10,5,100\n2,20,3,200\n")
    frame, _ = read_interactions(p, header=False, rating=2, timestamp=3)
    assert frame["user"].tolist() == [1, 2] and frame["user"].dtype == np.int64
    assert frame["item"].tolist() == [10, 20]
    assert frame["timestamp"].dtype == np.float64
    assert frame["timestamp"].tolist() == [100.0, 200.0]
    # digit strings (as the CLI passes them) are positions too
    again, _ = read_interactions(p, header=False, user="1", item="0")
    assert again["user"].tolist() == [10, 20]


def test_tsv_is_sniffed(tmp_path):
    p = write(tmp_path, "r.tsv", "user\titem\tw\na, b\tx\t2\nc\ty\t1.5\n")
    frame, report = read_interactions(p, weight="w")
    assert frame["user"].tolist() == ["a, b", "c"]
    assert frame["weight"].dtype == np.float32
    assert frame["weight"].tolist() == [2.0, 1.5]
    assert "delimiter detected: tab" in report.notes


def test_movielens_double_colon(tmp_path):
    p = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    frame, report = read_interactions(p, header=False, rating=2, timestamp=3)
    assert frame["item"].tolist() == [1193, 661]
    assert frame["rating"].tolist() == [5.0, 3.0]
    assert frame["timestamp"].tolist() == [978300760.0, 978302109.0]
    assert "delimiter detected: '::'" in report.notes


@pytest.mark.parametrize("sep", [";", "|", "\\t", "tab"])
def test_explicit_sep(tmp_path, sep):
    real = {"\\t": "\t", "tab": "\t"}.get(sep, sep)
    p = write(tmp_path, "r.txt", f"user{real}item\nu{real}i\n")
    frame, report = read_interactions(p, sep=sep)
    assert frame[["user", "item"]].values.tolist() == [["u", "i"]]
    assert not any("delimiter detected" in n for n in report.notes)


def test_parquet_round_trip(tmp_path):
    p = tmp_path / "r.parquet"
    pd.DataFrame(
        {
            "u": [7, 8],
            "i": ["007", "x"],
            "r": [4.0, 2.5],
            "t": [pd.Timestamp("1999-12-31 23:59:50"), pd.Timestamp("2020-01-01")],
        }
    ).to_parquet(p)
    frame, report = read_interactions(p, user="u", item="i", rating="r", timestamp="t")
    assert frame["user"].tolist() == [7, 8]
    assert frame["item"].tolist() == ["007", "x"]
    assert frame["timestamp"].tolist() == [946684790.0, 1577836800.0]
    assert report.n_interactions == 2


def test_parquet_float_ids_become_integers(tmp_path):
    p = tmp_path / "r.pq"
    pd.DataFrame({"user": [1.0, 2.0], "item": [3, 4]}).to_parquet(p)
    frame, _ = read_interactions(p)
    assert frame["user"].tolist() == [1, 2] and frame["user"].dtype == np.int64


def test_recbole_files(tmp_path):
    inter = write(
        tmp_path,
        "ml.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t10\t4\t100\n2\t10\t5\t200\n",
    )
    frame, report = read_interactions(inter)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["rating"].tolist() == [4.0, 5.0]
    assert any("user='user_id'" in n for n in report.notes)
    item = write(
        tmp_path,
        "ml.item",
        'item_id:token\ttitle:token_seq\tyear:float\n10\tToy "Story"\t1995\n11\tHeat\t\n',
    )
    items = read_items(item, text_cols=["title"])
    assert items.index.tolist() == [10, 11]
    assert items.loc[10, "title"] == 'Toy "Story"'
    assert items["year"].iloc[0] == 1995.0 and np.isnan(items["year"].iloc[1])
    user = write(tmp_path, "ml.user", "user_id:token\tage:float\tzip:token\n1\t24\t02134\n")
    users = read_users(user)
    assert users.loc[1, "zip"] == "02134"


def test_iso_timestamps_are_utc_seconds(tmp_path):
    p = write(
        tmp_path,
        "r.csv",
        "user,item,ts\na,x,1970-01-02\nb,x,1970-01-01T00:00:10Z\nc,x,1970-01-01T01:00:00+01:00\n",
    )
    frame, report = read_interactions(p, timestamp="ts")
    assert frame["timestamp"].tolist() == [86400.0, 10.0, 0.0]
    assert any("read as ISO 8601 dates" in n for n in report.notes)


def test_millisecond_timestamps_are_noted(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,ts\na,x,1577836800000\n")
    _, report = read_interactions(p, timestamp="ts")
    assert any("milliseconds" in n for n in report.notes)


def test_gzip_and_bom(tmp_path):
    p = tmp_path / "r.csv.gz"
    p.write_bytes(gzip.compress("\ufeffuser,item\n1,2\n".encode()))
    frame, _ = read_interactions(p)
    assert frame.values.tolist() == [[1, 2]]


def test_blank_lines_are_noted_and_lines_stay_right(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,a,4\n\n2,b,x\n\n")
    with pytest.raises(DataError, match=r"row 2 \(line 4\)"):
        read_interactions(p, rating="rating")
    frame, report = read_interactions(p)
    assert len(frame) == 2 and report.n_rows_read == 2
    assert any("skipped 2 blank line(s) (line(s) 3, 5)" in n for n in report.notes)


def test_quoted_newline_shifts_line_numbers(tmp_path):
    p = write(tmp_path, "r.csv", 'user,item,rating\n"a\nb",x,1\nc,y,bad\n')
    with pytest.raises(DataError, match=r"row 2 \(line 4\)"):
        read_interactions(p, rating="rating")


def test_latin1_encoding(tmp_path):
    p = write(tmp_path, "movies.dat", "1::Café (1995)::Comedy\n".encode("latin-1"))
    items = read_items(p, header=False, encoding="latin-1")
    assert items.loc[1, "1"] == "Café (1995)"


# ---------------------------------------------------------------------- duplicates
DUPS = "user,item,w,rating,ts\nu,a,1,2,10\nv,b,1,5,5\nu,a,3,4,30\nu,a,2,1,20\n"
COLS = {"weight": "w", "rating": "rating", "timestamp": "ts"}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("first", [1.0, 2.0, 10.0]),
        ("last", [2.0, 1.0, 20.0]),
        ("sum", [6.0, 1.0, 30.0]),
        ("max", [3.0, 4.0, 30.0]),
    ],
)
def test_duplicate_policies(tmp_path, policy, expected):
    p = write(tmp_path, "d.csv", DUPS)
    frame, report = read_interactions(p, duplicates=policy, **COLS)
    assert frame[["user", "item"]].values.tolist() == [["u", "a"], ["v", "b"]]
    assert frame.iloc[0][["weight", "rating", "timestamp"]].tolist() == expected
    assert frame.iloc[1][["weight", "rating", "timestamp"]].tolist() == [1.0, 5.0, 5.0]
    assert report.n_duplicates == 2 and report.n_interactions == 2
    assert report.duplicate_policy == policy
    assert f"2 row(s) merged (policy {policy!r})" in report.summary()


def test_duplicate_sum_without_weight_counts_rows(tmp_path):
    p = write(tmp_path, "d.csv", "user,item\nu,a\nu,a\nu,b\n")
    frame, _ = read_interactions(p, duplicates="sum")
    assert frame["weight"].tolist() == [2.0, 1.0]
    assert frame["weight"].dtype == np.float32


def test_duplicate_raise_names_rows_and_policies(tmp_path):
    p = write(tmp_path, "d.csv", DUPS)
    with pytest.raises(DataError) as err:
        read_interactions(p, **COLS)
    msg = str(err.value)
    assert "2 duplicate" in msg and "row 1 (line 2) and row 3 (line 4)" in msg
    for policy in ("last", "first", "sum", "max", "duplicates="):
        assert policy in msg


# ---------------------------------------------------------------------- invalid rows
def test_drop_invalid_counts_and_warns(tmp_path):
    p = write(
        tmp_path,
        "r.csv",
        "user,item,rating,ts\n1,a,4,1\n,b,3,2\n3,c,x,3\n4,d,inf,4\n5,e,2,never\n6,f,1,5\n7,g,0,6\n",
    )
    with pytest.warns(DataWarning, match="dropped 4 invalid row"):
        frame, report = read_interactions(p, rating="rating", timestamp="ts", on_invalid="drop")
    assert frame["user"].tolist() == [1, 6, 7]
    assert report.n_rows_read == 7 and report.n_dropped_invalid == 4
    assert report.n_interactions == 3
    assert report.dropped_examples == [
        "row 2 (line 3): column 'user': user id is empty",
        "row 3 (line 4): column 'rating': 'x' is not a number",
        "row 4 (line 5): column 'rating': the rating 'inf' is infinite",
        "row 5 (line 6): column 'ts': 'never' is not a timestamp (the column holds epoch seconds)",
    ]
    assert "invalid rows dropped: 4" in report.summary()


def test_raise_reports_first_row_and_count(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,a,x\n2,b,y\n3,c,4\n4,d,z\n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\).*2 more row\(s\) are invalid"):
        read_interactions(p, rating="rating")


def test_drop_before_duplicates(tmp_path):
    p = write(tmp_path, "r.csv", "user,item,rating\n1,a,bad\n1,a,4\n")
    with pytest.warns(DataWarning):
        frame, report = read_interactions(p, rating="rating", on_invalid="drop")
    assert report.n_duplicates == 0 and frame["rating"].tolist() == [4.0]


# ---------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.name for c in BAD_INPUTS])
def test_bad_input(tmp_path, case: BadInput):
    path = write(tmp_path, case.filename, case.content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataError) as err:
            read_interactions(path, **case.read_kwargs)
    msg = str(err.value)
    assert (case.library_expected or case.expected).lower() in msg.lower()
    assert case.filename in msg
    if case.row:
        assert "row " in msg
    assert "\n" not in msg and "Traceback" not in msg


def test_bad_inputs_catalogue_is_complete():
    assert len(BAD_INPUTS) >= 18
    assert len({c.name for c in BAD_INPUTS}) == len(BAD_INPUTS)
    assert len({c.filename for c in BAD_INPUTS}) == len(BAD_INPUTS)


def test_missing_file(tmp_path):
    write(tmp_path, "ratings.csv", "user,item\n1,2\n")
    with pytest.raises(DataError, match=r"rating\.csv: file not found.*ratings\.csv"):
        read_interactions(tmp_path / "rating.csv")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"duplicates": "mean"}, "'raise', 'last', 'first', 'sum', 'max'"),
        ({"on_invalid": "skip"}, "'raise', 'drop'"),
        ({"format": "xlsx"}, "'csv', 'parquet', 'recbole'"),
        ({"user": "item"}, "cannot both be 'item'"),
        ({"sep": ""}, "non-empty delimiter"),
    ],
)
def test_bad_arguments_are_config_errors(tmp_path, kwargs, match):
    p = write(tmp_path, "r.csv", "user,item\n1,2\n")
    with pytest.raises(ConfigError, match=match):
        read_interactions(p, **kwargs)


# ---------------------------------------------------------------------- catalogs
def test_read_items_csv(tmp_path):
    p = write(tmp_path, "items.csv", "item,title,year,code\n007,A,1995,01\n8,,,2\n")
    items = read_items(p, text_cols=["title"])
    assert items.index.name == "item" and items.index.tolist() == ["007", "8"]
    assert items["title"].tolist() == ["A", ""]
    assert items.loc["007", "year"] == 1995.0 and np.isnan(items.loc["8", "year"])
    assert items["code"].tolist() == ["01", "2"]  # a leading zero keeps the column text


def test_read_items_duplicate_and_empty_ids(tmp_path):
    p = write(tmp_path, "items.csv", "item,title\n1,A\n2,B\n1,C\n")
    msg = r"items\.csv: 1 item id.*'1' at row 1 \(line 2\) and row 3"
    with pytest.raises(DataError, match=msg):
        read_items(p)
    p = write(tmp_path, "items2.csv", "item,title\n1,A\n,B\n")
    with pytest.raises(DataError, match=r"items2\.csv, row 2 \(line 3\), column 'item'"):
        read_items(p)
    with pytest.raises(DataError, match=r"text column\(s\) \['plot'\] not found"):
        read_items(tmp_path / "items2.csv", id_col="title", text_cols=["plot"])


def test_read_users_id_col(tmp_path):
    p = write(tmp_path, "users.csv", "uid,age\n1,20\n2,30\n")
    users = read_users(p, id_col="uid")
    assert users.index.tolist() == [1, 2] and users["age"].tolist() == [20, 30]


def test_check_coverage_notes_and_warns():
    frame = pd.DataFrame({"user": ["u1", "u2"], "item": ["a", "z"]})
    items = pd.DataFrame({"title": ["A", "B", "C"]}, index=["a", "b", "c"])
    with pytest.warns(DataWarning) as rec:
        notes = check_coverage(frame, items=items)
    assert len(rec) == 2
    assert notes[0].startswith("1 item id(s) in the interactions are not in the item table")
    assert "'z'" in notes[0]
    assert notes[1].startswith("2 catalog item id(s) never occur") and "'b', 'c'" in notes[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_coverage(frame) == []


def test_load_dataset_with_catalog(tmp_path):
    ratings = write(tmp_path, "ratings.csv", "userId,movieId,rating\n1,10,4\n2,10,5\n2,11,3\n")
    movies = write(tmp_path, "movies.csv", "movieId,title\n10,A\n11,B\n12,C\n")
    with pytest.warns(DataWarning, match="cold-start"):
        ds, report = load_dataset(
            ratings, items=movies, user="userId", item="movieId", rating="rating"
        )
    assert isinstance(ds, Dataset) and isinstance(report, LoadReport)
    assert ds.name == "ratings" and ds.n_users == 2 and ds.n_items == 3
    assert ds.n_interactions == 3 and ds.has_ratings
    assert ds.items.loc[12, "title"] == "C"
    assert any("never occur" in n for n in report.notes)
    assert any("2 users, 3 items" in n for n in report.notes)


def test_summary_is_multiline_text(tmp_path):
    p = write(tmp_path, "r.csv", "user,item\n1,2\n")
    _, report = read_interactions(p)
    text = report.summary()
    assert text.splitlines()[0].endswith("1 row(s) read -> 1 interaction(s)")
    assert "note: delimiter detected: comma" in text
