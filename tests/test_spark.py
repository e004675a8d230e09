"""The Spark engine: ALS fitted by Spark MLlib (an ordinary lmrec model) and Spark splits.

Fitting and splitting need pyspark and a Java runtime; those tests skip cleanly without
them (checked inside each test, so the checks below on the error messages always run).
A Spark session takes ~10-20 s to start on 2 cores; the split tests share one session.
All of them run in CI, which has Java (``make test`` installs it when CI=true).
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from lmrec.errors import ConfigError, MissingExtraError
from tests.conftest import skip_unless

SEED = int(os.environ.get("LMREC_TEST_SEED", "2026"))


def _needs_spark():
    import importlib.util

    skip_unless(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed")
    skip_unless(
        shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME")),
        "Spark needs a Java runtime ('java' on PATH or JAVA_HOME)",
    )


def test_missing_java_is_named_in_the_error(monkeypatch, tmp_path):
    from lmrec.spark import check_java, spark_train_als

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConfigError, match="Java runtime"):
        check_java()
    with pytest.raises(ConfigError, match="Java 17"):
        spark_train_als(tmp_path / "x.csv")


def test_missing_pyspark_names_the_extra(monkeypatch, tmp_path):
    from lmrec.spark import spark_train_als

    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r"lmrec\[spark\]"):
        spark_train_als(tmp_path / "x.csv")


def test_cli_reports_missing_java_with_exit_2(monkeypatch, tmp_path, capsys):
    from lmrec.cli import main

    csv = tmp_path / "x.csv"
    csv.write_text("user,item\na,x\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    for cmd in (["train", "--model", "als"], ["split"]):
        code = main([*cmd, "--engine", "spark", "--data", str(csv), "--out", str(tmp_path / "o")])
        assert code == 2
        assert "needs a Java runtime" in capsys.readouterr().err
        assert not (tmp_path / "o").exists()


def test_cli_split_checks_spark_flags_before_starting_spark(tmp_path, capsys):
    from lmrec.cli import main

    csv = tmp_path / "x.csv"
    csv.write_text("user,item\na,x\n")
    out = str(tmp_path / "o")
    assert (
        main(["split", "--engine", "spark", "--data", str(csv), "--protocol", "loo", "--out", out])
        == 2
    )
    assert "--protocol random or global_temporal" in capsys.readouterr().err
    assert main(["split", "--engine", "spark", "--dataset", "ml-100k", "--out", out]) == 2
    assert "reads --data FILE" in capsys.readouterr().err
    assert main(["split", "--data", str(csv), "--master", "local[2]", "--out", out]) == 2
    assert "--master goes with --engine spark" in capsys.readouterr().err


def test_cli_validates_engine_flags_before_reading_data(tmp_path, capsys):
    from lmrec.cli import main

    out = str(tmp_path / "m")
    assert (
        main(["train", "--data", "nope.csv", "--model", "bpr", "--engine", "spark", "--out", out])
        == 2
    )
    assert "--engine spark fits als" in capsys.readouterr().err
    assert (
        main(
            ["train", "--data", "nope.csv", "--model", "als", "--master", "local[2]", "--out", out]
        )
        == 2
    )
    assert "--master goes with --engine spark" in capsys.readouterr().err
    csv = tmp_path / "x.csv"
    csv.write_text("user,item\na,x\n")
    assert (
        main(
            [
                "train",
                "--data",
                str(csv),
                "--model",
                "als",
                "--engine",
                "spark",
                "--param",
                "l2_scaling=none",
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "always scales the penalty" in capsys.readouterr().err


def test_spark_als_via_cli_is_an_ordinary_lmrec_model(ml100k, tmp_path):
    """Fit on a real slice (200 users, ~20k ratings) through ``lmrec train --engine spark``."""
    _needs_spark()
    from lmrec.cli import main
    from lmrec.data import Dataset
    from lmrec.data.split import random_split
    from lmrec.eval.protocol import evaluate
    from lmrec.models import load_model
    from lmrec.models.als import ALS

    frame = ml100k.to_frame()
    frame = frame[frame["user"].isin(np.sort(frame["user"].unique())[:200])][["user", "item"]]
    split = random_split(Dataset.from_frame(frame), ratios=(0.8, 0.2), seed=SEED)
    csv = tmp_path / "train.csv"
    split.train.to_frame()[["user", "item"]].to_csv(csv, index=False)
    params = [
        "--param",
        "factors=32",
        "--param",
        "l2=0.05",
        "--param",
        "iterations=10",
        "--param",
        "alpha=1.0",
    ]
    code = main(
        [
            "train",
            "--engine",
            "spark",
            "--master",
            "local[2]",
            "--data",
            str(csv),
            "--model",
            "als",
            *params,
            "--out",
            str(tmp_path / "spark"),
        ]
    )
    assert code == 0
    spark_model = load_model(tmp_path / "spark")
    # lmrec on the same file (split.train alone also knows the items seen only in test)
    train = Dataset.from_frame(pd.read_csv(csv, dtype=str))
    local = ALS(factors=32, l2=0.05, iterations=10, alpha=1.0, l2_scaling="count").fit(train)
    # Canonical id maps and the same training pattern as a model lmrec fits itself.
    assert spark_model.user_ids_ == local.user_ids_ and spark_model.item_ids_ == local.item_ids_
    assert (spark_model.seen_ != local.seen_).nnz == 0
    assert spark_model.user_factors_.shape == local.user_factors_.shape
    s, ref = (
        evaluate(m, split.test, metrics=["ndcg@10"], show_progress=False).summary["ndcg@10"]
        for m in (spark_model, local)
    )
    # Spark scales the L2 penalty by each row's count (ALS-WR), so the default lmrec model
    # is a different one; with l2_scaling="count" lmrec fits Spark's objective
    # and lands on a model of the same quality (asserted within 5% on this slice;
    # benchmarks/results/spark.md has the full-data ratio).
    assert spark_model.config.l2_scaling == "count"
    assert abs(s / ref - 1) < 0.05, (s, ref)
    recs = spark_model.recommend(spark_model.user_ids_.ids[:3], k=5)
    assert len(recs) == 15


# ---------------------------------------------------------------------- splits
@pytest.fixture(scope="module")
def spark():
    _needs_spark()
    from lmrec.spark.session import start_session

    session = start_session("lmrec-tests", "local[2]", {"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def ml_csv(ml100k, tmp_path_factory):
    """A real slice of MovieLens-100K (300 users, ~30k ratings) with ratings and timestamps."""
    frame = ml100k.to_frame()
    frame = frame[frame["user"].isin(np.sort(frame["user"].unique())[:300])]
    path = tmp_path_factory.mktemp("ml") / "ml.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _read_parts(out):
    return {
        p: pd.read_csv(out / f"{p}.csv", dtype={"user": str, "item": str})
        for p in ("train", "valid", "test")
        if (out / f"{p}.csv").exists()
    }


@pytest.mark.realdata
def test_spark_random_split_keeps_rows_shares_and_seed(spark, ml_csv, tmp_path):
    from lmrec.spark import spark_split

    path, frame = ml_csv
    kw = dict(ratios=(0.7, 0.1, 0.2), rating_col="rating", timestamp_col="timestamp", spark=spark)
    meta = spark_split(path, tmp_path / "a", seed=SEED, **kw)
    parts = _read_parts(tmp_path / "a")
    assert list(parts["train"].columns) == ["user", "item", "weight", "rating", "timestamp"]
    # Every row once, with its values; counts recorded in split.json.
    both = pd.concat(parts.values()).sort_values(["user", "item"]).reset_index(drop=True)
    ref = frame.astype({"user": str, "item": str}).sort_values(["user", "item"])
    pd.testing.assert_frame_equal(both, ref.reset_index(drop=True), check_dtype=False)
    assert meta["counts"] == {p: len(f) for p, f in parts.items()}
    # Per user: exactly floor(n * ratio) test and valid rows, as the local engine.
    n = frame.groupby("user").size()
    for name, ratio in (("test", 0.2), ("valid", 0.1)):
        got = parts[name].groupby("user").size().reindex(n.index, fill_value=0)
        np.testing.assert_array_equal(got.to_numpy(), np.floor(n.to_numpy() * ratio + 1e-9))
    # Files sorted by user then item (as strings), like the local output.
    t = parts["train"]
    assert list(zip(t["user"], t["item"], strict=True)) == sorted(
        zip(t["user"], t["item"], strict=True)
    )
    # Same seed: same files; another seed: another draw.
    spark_split(path, tmp_path / "b", seed=SEED, **kw)
    spark_split(path, tmp_path / "c", seed=SEED + 1, **kw)
    for name in ("train", "valid", "test"):
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()
    assert (tmp_path / "a" / "test.csv").read_bytes() != (tmp_path / "c" / "test.csv").read_bytes()
    # The CLI (which uses the active session and leaves it running) writes the same split.
    from lmrec.cli import main

    assert (
        main(
            [
                "split",
                "--engine",
                "spark",
                "--data",
                str(path),
                "--ratios",
                "0.7",
                "0.1",
                "0.2",
                "--rating-col",
                "rating",
                "--timestamp-col",
                "timestamp",
                "--seed",
                str(SEED),
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    for name in ("train.csv", "valid.csv", "test.csv", "split.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()


@pytest.mark.realdata
def test_spark_global_temporal_split_equals_the_local_one(spark, ml_csv, tmp_path):
    from lmrec.data import load_dataset
    from lmrec.data.split import global_temporal_split
    from lmrec.spark import spark_split

    path, _ = ml_csv
    spark_split(
        path,
        tmp_path / "s",
        protocol="global_temporal",
        ratios=(0.8, 0.2),
        rating_col="rating",
        timestamp_col="timestamp",
        spark=spark,
    )
    parts = _read_parts(tmp_path / "s")
    ds, _ = load_dataset(path, rating="rating", timestamp="timestamp")
    local = global_temporal_split(ds, ratios=(0.8, 0.2))
    for name in ("train", "test"):
        want = getattr(local, name).to_frame().astype({"user": str, "item": str})
        got = parts[name].sort_values(["user", "item"]).reset_index(drop=True)
        want = want.sort_values(["user", "item"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_spark_split_merges_or_rejects_duplicates(spark, tmp_path):
    from lmrec.errors import DataError
    from lmrec.spark import spark_split

    csv = tmp_path / "d.csv"
    rows = [f"u{u},i{i},{1 + (u + i) % 3}" for u in range(6) for i in range(10)]
    csv.write_text("user,item,w\n" + "\n".join(rows + ["u0,i0,5", "u1,i2,"]) + "\n")
    with pytest.raises(DataError, match="--drop-invalid"):
        spark_split(csv, tmp_path / "a", weight_col="w", spark=spark, ratios=(0.5, 0.5))
    with pytest.raises(DataError, match="repeat an earlier"):
        spark_split(
            csv, tmp_path / "a", weight_col="w", spark=spark, ratios=(0.5, 0.5), drop_invalid=True
        )
    spark_split(
        csv,
        tmp_path / "a",
        weight_col="w",
        spark=spark,
        ratios=(0.5, 0.5),
        drop_invalid=True,
        duplicates="sum",
    )
    parts = _read_parts(tmp_path / "a")
    both = pd.concat(parts.values())
    assert len(both) == 60 and both["user"].value_counts().eq(10).all()
    assert both.loc[(both["user"] == "u0") & (both["item"] == "i0"), "weight"].item() == 6.0
    assert not (tmp_path / "a" / "valid.csv").exists()
