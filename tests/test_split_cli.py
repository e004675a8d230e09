"""``lmrec split`` writes what it read (issue 15.7): the input's column names and value
types, and files with the user's umask rather than private ones."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.cli import main
from lmrec.cli._common import split_file_kwargs
from lmrec.data import load_dataset, read_interactions


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture()
def log_csv(tmp_path):
    rng = np.random.default_rng(3)
    rows = [
        (u, int(i), int(rng.integers(1, 6)), 875241637 + 17 * n)
        for n, (u, i) in enumerate(
            (u, i) for u in range(30) for i in rng.choice(50, 8, replace=False)
        )
    ]
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "ts"]).to_csv(path, index=False)
    return path


READ = [
    "--user-col",
    "userId",
    "--item-col",
    "movieId",
    "--rating-col",
    "rating",
    "--timestamp-col",
    "ts",
]


def split(tmp_path: Path, data: Path, *flags: str) -> Path:
    out = tmp_path / "split"
    args = ["split", "--data", str(data), *flags, "--ratios", "0.6", "0.2", "0.2", "--seed", "1"]
    assert main([*args, "--out", str(out)]) == 0
    return out


def test_split_keeps_names_and_integer_types(tmp_path, log_csv):
    out = split(tmp_path, log_csv, *READ)
    original = log_csv.read_text().splitlines()
    lines = (out / "train.csv").read_text().splitlines()
    assert lines[0] == original[0] == "userId,movieId,rating,ts"
    assert "." not in "".join(lines[1:])  # 875241637, not 875241637.0; rating 4, not 4.0
    parts = [pd.read_csv(out / f"{p}.csv") for p in ("train", "valid", "test")]
    assert all(str(t) == "int64" for part in parts for t in part.dtypes)
    together = pd.concat(parts).sort_values(["userId", "movieId"]).reset_index(drop=True)
    source = pd.read_csv(log_csv).sort_values(["userId", "movieId"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, source)
    meta = json.loads((out / "split.json").read_text())
    assert meta["columns"]["names"] == {
        "user": "userId",
        "item": "movieId",
        "rating": "rating",
        "timestamp": "ts",
    }


def test_split_files_read_back_into_the_same_parts(tmp_path, log_csv):
    out = split(tmp_path, log_csv, *READ)
    full, _ = load_dataset(log_csv, user="userId", item="movieId", rating="rating", timestamp="ts")
    train, _ = read_interactions(out / "train.csv", **split_file_kwargs(out / "train.csv"))
    assert list(train.columns) == ["user", "item", "rating", "timestamp"]
    assert train["user"].dtype == np.int64
    rows = full.to_frame().merge(train, on=["user", "item"], suffixes=("", "_split"))
    assert len(rows) == len(train)
    np.testing.assert_array_equal(rows["timestamp"], rows["timestamp_split"])
    np.testing.assert_array_equal(rows["rating"], rows["rating_split"])


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_split_files_follow_the_umask(tmp_path, log_csv, mask):
    old = os.umask(mask)
    try:
        out = split(tmp_path, log_csv, *READ)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    for f in ("train.csv", "valid.csv", "test.csv", "split.json"):
        assert stat.S_IMODE((out / f).stat().st_mode) == 0o666 & ~mask, f


def test_split_keeps_date_layout_and_millisecond_units(tmp_path):
    dates = "\n".join(
        f"u{u},i{i},{(i % 28) + 1:02d}/0{u % 9 + 1}/2020" for u in range(12) for i in range(6)
    )
    p = write(tmp_path, "d.csv", "user,item,day\n" + dates + "\n")
    out = split(tmp_path, p, "--timestamp-col", "day", "--timestamp-format", "%d/%m/%Y")
    written = (out / "train.csv").read_text().splitlines()
    assert written[0] == "user,item,day"
    assert all(
        len(line.split(",")[2]) == 10 and line.split(",")[2][2] == "/" for line in written[1:]
    )
    source = {tuple(line.split(",")) for line in dates.splitlines()}
    assert {tuple(line.split(",")) for line in written[1:]} <= source

    ms = "\n".join(f"{u},{i},{1588291200000 + 1000 * u + i}" for u in range(12) for i in range(6))
    q = write(tmp_path, "ms.csv", "user,item,t\n" + ms + "\n")
    out2 = tmp_path / "split2"
    args = ["split", "--data", str(q), "--timestamp-col", "t", "--ratios", "0.6", "0.2", "0.2"]
    assert main([*args, "--out", str(out2)]) == 0
    got = {tuple(line.split(",")) for line in (out2 / "test.csv").read_text().splitlines()[1:]}
    assert got <= {tuple(line.split(",")) for line in ms.splitlines()}


def test_split_without_weights_writes_no_weight_column(tmp_path):
    p = write(
        tmp_path,
        "w.csv",
        "u,i\n" + "\n".join(f"{a},{b}" for a in range(10) for b in range(5)) + "\n",
    )
    out = split(tmp_path, p, "--user-col", "u", "--item-col", "i")
    assert (out / "train.csv").read_text().splitlines()[0] == "u,i"


def test_builtin_split_writes_integer_timestamps(ml100k):
    frame = ml100k.to_frame(as_read=True)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["timestamp"].dtype == np.int64 and frame["rating"].dtype == np.int64
    assert frame["timestamp"].iloc[0] > 8e8
