"""The Spark engine: implicit ALS fitted by Spark MLlib, returned as an lmrec ALS model.

Fitting needs pyspark and a Java runtime; those tests skip cleanly without them (checked
inside each test, so the checks below on the error messages always run). A Spark session
takes ~10-20 s to start on 2 cores, so the fitting test is ``slow``.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from lmrec.errors import ConfigError, MissingExtraError

SEED = int(os.environ.get("LMREC_TEST_SEED", "2026"))


def _needs_spark():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime ('java' on PATH or JAVA_HOME)")


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


def test_cli_validates_engine_flags_before_reading_data(tmp_path, capsys):
    from lmrec.cli import main

    out = str(tmp_path / "m")
    assert main(["train", "--data", "nope.csv", "--model", "bpr", "--engine", "spark",
                 "--out", out]) == 2  # fmt: skip
    assert "--engine spark fits als" in capsys.readouterr().err
    assert main(["train", "--data", "nope.csv", "--model", "als", "--master", "local[2]",
                 "--out", out]) == 2  # fmt: skip
    assert "--master goes with --engine spark" in capsys.readouterr().err


@pytest.mark.slow
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
    params = ["--param", "factors=32", "--param", "regularization=0.05", "--param",
              "iterations=10", "--param", "alpha=1.0"]  # fmt: skip
    code = main(["train", "--engine", "spark", "--master", "local[2]", "--data", str(csv),
                 "--model", "als", *params, "--out", str(tmp_path / "spark")])  # fmt: skip
    assert code == 0
    spark_model = load_model(tmp_path / "spark")
    # lmrec on the same file (split.train alone also knows the items seen only in test)
    train = Dataset.from_frame(pd.read_csv(csv, dtype=str))
    local = ALS(factors=32, regularization=0.05, iterations=10, alpha=1.0).fit(train)
    # Canonical id maps and the same training pattern as a model lmrec fits itself.
    assert spark_model.user_ids_ == local.user_ids_ and spark_model.item_ids_ == local.item_ids_
    assert (spark_model.seen_ != local.seen_).nnz == 0
    assert spark_model.user_factors_.shape == local.user_factors_.shape
    s, ref = (evaluate(m, split.test, metrics=["ndcg@10"], show_progress=False).summary["ndcg@10"]
              for m in (spark_model, local))  # fmt: skip
    # Spark scales the L2 penalty by each row's count (ALS-WR), so the two models differ;
    # both must be real recommenders of similar quality (measured on this slice: see
    # benchmarks/results/distributed.md for the full-data ratio).
    assert s > 0.8 * ref, (s, ref)
    recs = spark_model.recommend(spark_model.user_ids_.ids[:3], k=5)
    assert len(recs) == 15
