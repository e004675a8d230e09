"""The CLI with sequence models on a plain CSV with timestamps: train, recommend, evaluate,
compare, and the messages for missing timestamps."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lmrec.cli import main

FAST = [
    "--param",
    "epochs=3",
    "--param",
    "factors=16",
    "--param",
    "max_len=8",
    "--param",
    "device=cpu",
    "--param",
    "n_threads=1",
]


@pytest.fixture()
def log(tmp_path):
    """60 users walking 40 items of their group in order; column names of the user's own."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(60):
        own = np.roll(np.arange(u % 2, 40, 2), -int(rng.integers(20)))[:12]
        for t, i in enumerate(own):
            rows.append((f"user{u}", f"item{i}", 1_700_000_000 + 60 * t))
    frame = pd.DataFrame(rows, columns=["uid", "iid", "when"])
    train = frame.groupby("uid").head(11)
    test = frame.groupby("uid").tail(1)
    paths = {
        "all": tmp_path / "all.csv",
        "train": tmp_path / "train.csv",
        "test": tmp_path / "test.csv",
        "items": tmp_path / "items.csv",
    }
    frame.to_csv(paths["all"], index=False)
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    items = pd.DataFrame(
        {
            "iid": [f"item{i}" for i in range(40)],
            "title": [f"film {i}" for i in range(40)],
            "genres": ["Drama" if i % 2 else "Comedy" for i in range(40)],
        }
    )
    items.to_csv(paths["items"], index=False)
    return paths


READ = ["--user-col", "uid", "--item-col", "iid"]


def test_train_recommend_evaluate_with_timestamps(tmp_path, log, capsys):
    out = tmp_path / "sasrec"
    assert (
        main(
            [
                "train",
                "--model",
                "sasrec",
                "--data",
                str(log["train"]),
                *READ,
                "--timestamp-col",
                "when",
                "--items",
                str(log["items"]),
                "--param",
                "item_repr=id+text",
                *FAST,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    recs_path = tmp_path / "recs.csv"
    assert (
        main(["recommend", "--model", str(out), "--all", "-k", "5", "--output", str(recs_path)])
        == 0
    )
    recs = pd.read_csv(recs_path)
    assert recs.groupby("user").size().eq(5).all() and recs["user"].nunique() == 60
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(out),
                "--test",
                str(log["test"]),
                *READ,
                "-k",
                "10",
                "--format",
                "json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["users"] == 60 and 0.0 <= result["metrics"]["ndcg@10"] <= 1.0


def test_compare_puts_sequence_and_other_models_on_one_table(log, capsys):
    assert (
        main(
            [
                "compare",
                "--data",
                str(log["all"]),
                *READ,
                "--timestamp-col",
                "when",
                "--protocol",
                "loo",
                "--models",
                "sasrec,gru4rec,popularity",
                "--param",
                "sasrec.epochs=3",
                "--param",
                "sasrec.device=cpu",
                "--param",
                "gru4rec.epochs=3",
                "--param",
                "gru4rec.device=cpu",
                "--metrics",
                "ndcg@10",
                "--format",
                "json",
            ]
        )
        == 0
    )
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"sasrec", "gru4rec", "popularity"}
    assert all(row["users"] == 60 for row in table.values())


def test_sequence_model_without_timestamps_is_refused_before_reading(tmp_path, log, capsys):
    assert (
        main(
            [
                "train",
                "--model",
                "gru4rec",
                "--data",
                str(log["train"]),
                *READ,
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--timestamp-col" in err and "gru4rec" in err
    assert (
        main(
            [
                "compare",
                "--data",
                str(log["all"]),
                *READ,
                "--protocol",
                "loo",
                "--models",
                "ease,sasrec",
            ]
        )
        == 2
    )
    assert "--timestamp-col" in capsys.readouterr().err


def test_unsortable_timestamps_and_single_item_histories(tmp_path, log, capsys):
    bad = pd.read_csv(log["train"]).astype({"when": object})
    bad.loc[3, "when"] = "not a time"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert (
        main(
            [
                "train",
                "--model",
                "sasrec",
                "--data",
                str(tmp_path / "bad.csv"),
                *READ,
                "--timestamp-col",
                "when",
                *FAST,
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    assert "when" in capsys.readouterr().err
    pd.read_csv(log["test"]).to_csv(tmp_path / "ones.csv", index=False)
    assert (
        main(
            [
                "train",
                "--model",
                "sasrec",
                "--data",
                str(tmp_path / "ones.csv"),
                *READ,
                "--timestamp-col",
                "when",
                *FAST,
                "--out",
                str(tmp_path / "m2"),
            ]
        )
        == 2
    )
    assert "at most one" in capsys.readouterr().err
