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
    # ingest does not record the input position of rows (the tie-breaker of equal timestamps)
    pd.testing.assert_frame_equal(
        a.interactions.drop(columns="order", errors="ignore"),
        b.interactions.drop(columns="order", errors="ignore"),
    )
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


# ---------------------------------------------------------------- zero-copy CSR path
def test_ingest_adopts_its_arrays_and_equals_the_general_constructor(tmp_path, log_frame):
    from lmrec.data import Dataset

    path = tmp_path / "log.parquet"
    log_frame.to_parquet(path, index=False)
    got = ingest(path, user="uid", item="iid", timestamp="ts", chunk_rows=300)
    # The matrix and the interaction table share the data set's own arrays (no copy).
    assert np.shares_memory(got.matrix.indices, got.column("item_idx"))
    assert np.shares_memory(got.matrix.data, got.column("weight"))
    again = Dataset(got.interactions, got.user_ids, got.item_ids)
    _assert_same(got, again)


def test_from_csr_keeps_arrays_and_checks_structure():
    from lmrec.data import Dataset
    from lmrec.data.idmap import IdMap

    users, items = IdMap(["a", "b", "c"]), IdMap(["x", "y", "z"])
    indptr = np.array([0, 2, 2, 3])
    item_idx = np.array([0, 2, 1], np.int32)
    weight = np.array([1, 2, 3], np.float32)
    d = Dataset.from_csr(indptr, item_idx, weight, users, items, name="t")
    assert np.shares_memory(d.column("item_idx"), item_idx)
    assert d.matrix.toarray().tolist() == [[1, 0, 2], [0, 0, 0], [0, 3, 0]]
    assert d.column("user_idx").tolist() == [0, 0, 2]
    expected = Dataset(d.interactions, users, items)
    _assert_same(d, expected)
    with pytest.raises(DataError, match="strictly increasing"):
        Dataset.from_csr(indptr, np.array([2, 0, 1], np.int32), weight, users, items)
    with pytest.raises(DataError, match="strictly increasing"):  # repeated pair
        Dataset.from_csr(indptr, np.array([1, 1, 1], np.int32), weight, users, items)
    with pytest.raises(DataError, match=r"in \[0, 3\)"):
        Dataset.from_csr(indptr, np.array([0, 3, 1], np.int32), weight, users, items)
    with pytest.raises(DataError, match="indptr must have"):
        Dataset.from_csr(np.array([0, 2, 3]), item_idx, weight, users, items)
    with pytest.raises(DataError, match="decreases"):
        Dataset.from_csr(np.array([0, 2, 1, 3]), item_idx, weight, users, items)
    with pytest.raises(DataError, match="one value per interaction"):
        Dataset.from_csr(indptr, item_idx, weight[:2], users, items)


def test_from_csr_checks_rows_across_blocks():
    """Rows spanning the 2**20-row check blocks: a decrease inside a row is still found."""
    from lmrec.data import Dataset
    from lmrec.data.idmap import IdMap

    n_items, per_user = 1_000, 700
    n_users = (1 << 20) // per_user + 2
    item_idx = np.tile(
        np.arange(0, n_items, n_items // per_user, dtype=np.int32)[:per_user], n_users
    )
    indptr = np.arange(n_users + 1) * per_user
    users = IdMap([f"u{i:07d}" for i in range(n_users)])
    items = IdMap([f"i{i:04d}" for i in range(n_items)])
    ones = np.ones(len(item_idx), np.float32)
    d = Dataset.from_csr(indptr, item_idx, ones, users, items)
    assert d.n_interactions == n_users * per_user
    bad = item_idx.copy()
    pos = (1 << 20) + 1  # inside a row, just past the first block boundary
    assert pos not in set(indptr)
    bad[pos] = bad[pos - 1]
    with pytest.raises(DataError, match=f"row {pos}"):
        Dataset.from_csr(indptr, bad, ones, users, items)


def test_saved_dataset_loads_back_in_csr_order(tmp_path, log_frame):
    from lmrec.data import Dataset

    path = tmp_path / "log.csv"
    log_frame.to_csv(path, index=False)
    got = ingest(path, user="uid", item="iid", weight="w", timestamp="ts")
    back = Dataset.load(got.save(tmp_path / "ds"))
    _assert_same(back, got)
    assert back.name == got.name


def test_csv_ingest_grows_its_buffers(tmp_path):
    """More CSV rows than the initial buffer (65,536): the growing path equals load_dataset."""
    rng = np.random.default_rng(1)
    n = 150_000
    frame = pd.DataFrame({"user": rng.integers(0, 5_000, n), "item": rng.integers(0, 800, n)})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    expected, _ = load_dataset(path, duplicates="sum")
    _assert_same(ingest(path, chunk_rows=20_000), expected)


# ---------------------------------------------------------------- datasets CLI
def _cli(argv):
    from lmrec.cli import main

    return main([str(a) for a in argv])


def test_cli_datasets_synth_ingest_then_split(tmp_path, capsys):
    synth, ds = tmp_path / "synth", tmp_path / "ds"
    argv = [
        "datasets",
        "synth",
        "--users",
        300,
        "--items",
        90,
        "--interactions",
        2_000,
        "--rows-per-file",
        700,
        "--out",
        synth,
    ]
    assert _cli(argv) == 0
    assert len(list(synth.glob("part-*.parquet"))) == 3
    assert (
        _cli(
            [
                "datasets",
                "ingest",
                "--data",
                synth / "part-*.parquet",
                "--out",
                ds,
                "--timestamp-col",
                "timestamp",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "ingested 2,000 interactions" in err and "peak RSS" in err
    from lmrec.data import Dataset

    saved = Dataset.load(ds)
    assert saved.name == "ds" and saved.has_timestamps
    _assert_same(saved, ingest(synth, timestamp="timestamp"))
    assert _cli(["split", "--data", ds, "--ratios", "0.8", "0.2", "--out", tmp_path / "sp"]) == 0
    train = pd.read_csv(tmp_path / "sp" / "train.csv")
    test = pd.read_csv(tmp_path / "sp" / "test.csv")
    assert len(train) + len(test) == 2_000
    # the top-level alias still works
    assert (
        _cli(
            [
                "synth",
                "--users",
                50,
                "--items",
                20,
                "--interactions",
                100,
                "--out",
                tmp_path / "alias",
            ]
        )
        == 0
    )


def test_cli_datasets_ingest_bad_input(tmp_path, capsys):
    ok = tmp_path / "log.csv"
    ok.write_text("user,item\n1,a\n1,a\n2,b\n")
    assert (
        _cli(["datasets", "ingest", "--data", tmp_path / "nope-*.csv", "--out", tmp_path / "o"])
        == 2
    )
    assert "matches no file" in capsys.readouterr().err
    assert (
        _cli(["datasets", "ingest", "--data", tmp_path / "nope.csv", "--out", tmp_path / "o"]) == 2
    )
    assert "not found" in capsys.readouterr().err
    argv = ["datasets", "ingest", "--data", ok, "--out", tmp_path / "o"]
    assert _cli([*argv, "--duplicates", "raise"]) == 2
    assert "repeat 1" in capsys.readouterr().err
    assert _cli([*argv, "--chunk-rows", 0]) == 2
    assert "--chunk-rows" in capsys.readouterr().err
    assert _cli([*argv, "--user-col", "uid"]) == 2
    assert "uid" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert _cli(argv) == 0
    assert _cli(argv) == 2  # exists, no --force
    assert "already exists" in capsys.readouterr().err
    assert _cli(["split", "--data", tmp_path / "o", "--items", ok, "--out", tmp_path / "s"]) == 2
    assert "saved data set" in capsys.readouterr().err


def test_cli_datasets_synth_bad_input(tmp_path, capsys):
    out = tmp_path / "s"
    base = ["datasets", "synth", "--users", 10, "--items", 10, "--out", out]
    assert _cli([*base, "--interactions", 1_000]) == 2
    assert "too dense" in capsys.readouterr().err
    assert _cli([*base, "--interactions", -5]) == 2
    assert "n_interactions" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()
    assert _cli([*base, "--interactions", 20]) == 2
    assert "already exists" in capsys.readouterr().err


def test_integer_and_text_ids_across_files_code_the_same(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"user": rng.integers(-5, 40, 600), "item": rng.integers(0, 25, 600)})
    frame.iloc[:300].to_parquet(tmp_path / "a.parquet", index=False)  # integer ids
    frame.iloc[300:].astype(str).to_csv(tmp_path / "b.csv", index=False)  # the same ids as text
    frame.astype(str).to_csv(tmp_path / "all.csv", index=False)
    expected, _ = load_dataset(tmp_path / "all.csv", duplicates="sum")
    got = ingest([tmp_path / "a.parquet", tmp_path / "b.csv"], chunk_rows=70)
    _assert_same(got, expected)
    # text first, then integers: the integer chunk joins the text table
    got = ingest([tmp_path / "b.csv", tmp_path / "a.parquet"], chunk_rows=70)
    assert got.user_ids == expected.user_ids and got.matrix.sum() == len(frame)


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 100_003])
def test_parallel_key_sort_equals_numpy_sort(n):
    from lmrec.data.ingest import _sort_in_place

    rng = np.random.default_rng(n)
    key = rng.integers(0, 50, n).astype(np.int64) * 10**9 + rng.integers(0, 1000, n)
    want = np.sort(key)
    _sort_in_place(key, min_parallel=0)  # the partition-then-sort path, even when small
    np.testing.assert_array_equal(key, want)


def test_prefetched_batches_keep_order_and_raise_reader_errors():
    from lmrec.data.ingest import _prefetched

    assert list(_prefetched(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise DataError("bad chunk")

    got = _prefetched(failing())
    assert next(got) == 1
    with pytest.raises(DataError, match="bad chunk"):
        next(got)
    endless = _prefetched(iter(range(10**9)), depth=1)
    assert next(endless) == 0
    endless.close()  # the consumer stops early: the reader thread stops and is joined


def test_ingest_with_parallel_sort_equals_load_dataset(tmp_path, monkeypatch):
    from lmrec.data import ingest as ingest_module

    write_synthetic(tmp_path / "s", 2_000, 400, 20_000, seed=5)
    want = ingest(tmp_path / "s")
    real = ingest_module._sort_in_place
    monkeypatch.setattr(ingest_module, "_sort_in_place", lambda key: real(key, min_parallel=0))
    got = ingest(tmp_path / "s")
    assert (got.matrix != want.matrix).nnz == 0
    np.testing.assert_array_equal(got.matrix.indptr, want.matrix.indptr)


def test_grouped_dictionary_lookup_equals_load_dataset(tmp_path, log_frame, monkeypatch):
    # Row groups of 100 rows: each chunk brings its own Parquet dictionary, with ids
    # first seen in late chunks; groups of 4 chunks are looked up together.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lmrec.data import ingest as ingest_module

    path = tmp_path / "groups.parquet"
    pq.write_table(pa.Table.from_pandas(log_frame[["uid", "iid"]]), path, row_group_size=100)
    merged = []
    check = ingest_module.check_rows
    monkeypatch.setattr(
        ingest_module,
        "check_rows",
        lambda table, *a, **k: merged.append(table.num_rows) or check(table, *a, **k),
    )
    expected, _ = load_dataset(path, user="uid", item="iid", duplicates="sum")
    _assert_same(ingest(path, user="uid", item="iid", chunk_rows=100), expected)
    assert max(merged) == 400  # four chunks were checked and looked up together

    bad = log_frame[["uid", "iid"]].astype(object)
    bad.loc[450, "iid"] = None  # in the second chunk of the second group
    pq.write_table(pa.Table.from_pandas(bad), path, row_group_size=100)
    with pytest.raises(
        DataError, match=r"groups\.parquet, row 451, column 'iid': item id is missing"
    ):
        ingest(path, user="uid", item="iid", chunk_rows=100)
