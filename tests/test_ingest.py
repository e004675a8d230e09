"""Out-of-core ingest equals the in-memory loader, and the chunked synthetic writer."""

import numpy as np
import pandas as pd
import pytest

from lmrec.cli import scale_cmds
from lmrec.data import load_dataset
from lmrec.data.ingest import ingest
from lmrec.data.synthetic import write_synthetic
from lmrec.errors import ConfigError, DataError


def _assert_same(a, b):
    assert a.user_ids == b.user_ids
    assert a.item_ids == b.item_ids
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    assert (a.matrix != b.matrix).nnz == 0
    np.testing.assert_array_equal(a.matrix.indptr, b.matrix.indptr)


@pytest.fixture(scope="module")
def log_frame():
    rng = np.random.default_rng(7)
    n = 3_000
    return pd.DataFrame(
        {
            "uid": rng.integers(0, 300, n).astype(str),
            "iid": np.char.add("i", rng.integers(0, 120, n).astype(str)),
            "w": rng.integers(1, 5, n).astype(np.float64) / 4,
            "ts": rng.integers(1_600_000_000, 1_700_000_000, n),
        }
    )


@pytest.mark.parametrize("duplicates", ["sum", "last", "first", "max"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_ingest_equals_load_dataset(tmp_path, log_frame, duplicates, fmt):
    path = tmp_path / f"log.{fmt}"
    if fmt == "csv":
        log_frame.to_csv(path, index=False)
    else:
        log_frame.to_parquet(path, index=False)
    kw = {"user": "uid", "item": "iid", "weight": "w", "timestamp": "ts"}
    expected, _ = load_dataset(path, duplicates=duplicates, **kw)
    got = ingest(path, duplicates=duplicates, chunk_rows=257, **kw)
    _assert_same(got, expected)
    assert got.name == expected.name


def test_ingest_without_weight_counts_repeats(tmp_path, log_frame):
    path = tmp_path / "log.parquet"
    log_frame[["uid", "iid"]].to_parquet(path, index=False)
    expected, _ = load_dataset(path, user="uid", item="iid", duplicates="sum")
    got = ingest(path, user="uid", item="iid", chunk_rows=100)
    _assert_same(got, expected)
    assert got.matrix.sum() == len(log_frame)


def test_ingest_synthetic_directory_equals_in_memory(tmp_path):
    out = tmp_path / "synth"
    files = write_synthetic(out, 400, 150, 5_000, seed=3, with_weight=True, rows_per_file=900)
    assert len(files.files) > 3 and files.n_interactions == 5_000
    kw = {"weight": "weight", "timestamp": "timestamp"}
    got = ingest(out, chunk_rows=500, **kw)
    frame = pd.concat([pd.read_parquet(out / f) for f in files.files], ignore_index=True)
    frame.to_parquet(tmp_path / "all.parquet", index=False)
    expected, _ = load_dataset(tmp_path / "all.parquet", duplicates="raise", **kw)
    _assert_same(got, expected)
    items = pd.read_parquet(out / "items.parquet")
    assert items.columns.tolist() == ["item", "title", "text", "topic"] and len(items) == 150


def test_write_synthetic_is_deterministic_and_guarded(tmp_path):
    a = write_synthetic(tmp_path / "a", 300, 100, 2_000, seed=1, rows_per_file=600)
    b = write_synthetic(tmp_path / "b", 300, 100, 2_000, seed=1, rows_per_file=600)
    for f in a.files:
        pd.testing.assert_frame_equal(pd.read_parquet(a.path / f), pd.read_parquet(b.path / f))
    with pytest.raises(FileExistsError):
        write_synthetic(tmp_path / "a", 300, 100, 2_000, seed=1)
    with pytest.raises(ConfigError, match="too dense"):
        write_synthetic(tmp_path / "c", 10, 10, 1_000, seed=1)


def test_ingest_duplicates_raise_and_bad_input(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("user,item\n1,a\n1,a\n2,b\n")
    with pytest.raises(DataError, match="repeat 1"):
        ingest(p, duplicates="raise")
    with pytest.raises(ConfigError, match="duplicates"):
        ingest(p, duplicates="mean")
    with pytest.raises(DataError, match="not found"):
        ingest(tmp_path / "nope.csv")
    q = tmp_path / "neg.csv"
    q.write_text("user,item,w\n1,a,-1\n")
    with pytest.raises(DataError, match="negative"):
        ingest(q, weight="w")


def test_cli_synth(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    scale_cmds.register(sub)
    out = tmp_path / "s"
    args = parser.parse_args(
        ["synth", "--users", "200", "--items", "80", "--interactions", "1000", "--out", str(out)]
    )
    assert args.func(args) == 0
    assert (out / "part-00000.parquet").is_file() and (out / "items.parquet").is_file()
    assert "1,000 interactions" in capsys.readouterr().err
    with pytest.raises(FileExistsError):
        args.func(args)


def test_ingest_numeric_ids_and_datetime_timestamps(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user": rng.integers(0, 50, 500),
            "item": rng.integers(0, 30, 500).astype(float),
            "timestamp": pd.to_datetime(rng.integers(1_600_000_000, 1_700_000_000, 500), unit="s"),
        }
    )
    path = tmp_path / "ints.parquet"
    frame.to_parquet(path)
    expected, _ = load_dataset(path, duplicates="sum", timestamp="timestamp")
    _assert_same(ingest(path, timestamp="timestamp", chunk_rows=64), expected)


def test_cli_synth_rejects_bad_sizes_before_writing(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    scale_cmds.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "s"
    argv = ["synth", "--users", "0", "--items", "80", "--interactions", "10", "--out", str(out)]
    args = parser.parse_args(argv)
    with pytest.raises(ConfigError, match="n_users"):
        args.func(args)
    assert not out.exists()
