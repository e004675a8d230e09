"""End-to-end CLI tests on hand-written files: split -> train -> recommend -> evaluate."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lmrec.cli import main
from tests.bad_inputs import BAD_INPUTS


@pytest.fixture()
def interactions_csv(tmp_path):
    """A small but non-trivial log: 60 users, 40 items, two taste groups, timestamps."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(60):
        own = np.arange(u % 2, 40, 2)
        for i in rng.choice(own, size=12, replace=False):
            rows.append(
                (f"user{u}", f"item{i}", int(rng.integers(1, 6)), 1_600_000_000 + len(rows))
            )
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["uid", "iid", "stars", "when"]).to_csv(path, index=False)
    return path


READ = [
    "--user-col",
    "uid",
    "--item-col",
    "iid",
    "--rating-col",
    "stars",
    "--timestamp-col",
    "when",
]


def test_end_to_end_any_csv(tmp_path, interactions_csv, capsys):
    split_dir = tmp_path / "split"
    assert (
        main(
            [
                "split",
                "--data",
                str(interactions_csv),
                *READ,
                "--seed",
                "1",
                "--out",
                str(split_dir),
            ]
        )
        == 0
    )
    train = pd.read_csv(split_dir / "train.csv", dtype={"uid": str, "iid": str})
    test = pd.read_csv(split_dir / "test.csv", dtype={"uid": str, "iid": str})
    valid = pd.read_csv(split_dir / "valid.csv", dtype={"uid": str, "iid": str})
    assert len(train) + len(valid) + len(test) == 60 * 12
    assert list(train.columns) == ["uid", "iid", "stars", "when"]  # the input's names (15.7)
    meta = json.loads((split_dir / "split.json").read_text())
    assert meta["seed"] == 1

    model_dir = tmp_path / "pop"
    assert (
        main(
            [
                "train",
                "--data",
                str(split_dir / "train.csv"),
                *READ,
                "--model",
                "popularity",
                "--out",
                str(model_dir),
            ]
        )
        == 0
    )
    users = tmp_path / "users.txt"
    users.write_text("user0\nuser1\n")
    recs_path = tmp_path / "recs.csv"
    assert (
        main(
            [
                "recommend",
                "--model",
                str(model_dir),
                "--users",
                str(users),
                "-k",
                "5",
                "--output",
                str(recs_path),
            ]
        )
        == 0
    )
    recs = pd.read_csv(recs_path, dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "item", "rank", "score"]
    assert recs.groupby("user").size().to_dict() == {"user0": 5, "user1": 5}
    seen = set(map(tuple, train[["uid", "iid"]].to_numpy()))
    assert not any((u, i) in seen for u, i in recs[["user", "item"]].to_numpy())

    all_recs = tmp_path / "all.csv"
    assert (
        main(
            ["recommend", "--model", str(model_dir), "--all", "-k", "10", "--output", str(all_recs)]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--recommendations",
                str(all_recs),
                "--test",
                str(split_dir / "test.csv"),
                "--train",
                str(split_dir / "train.csv"),
                *READ,
                "-k",
                "10",
                "--format",
                "json",
            ]
        )
        == 0
    )
    from_file = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(model_dir),
                "--test",
                str(split_dir / "test.csv"),
                *READ,
                "-k",
                "10",
                "--format",
                "json",
            ]
        )
        == 0
    )
    from_model = json.loads(capsys.readouterr().out)
    # The same lists scored two ways must agree exactly.
    for metric in ("ndcg@10", "recall@10", "precision@10", "mrr@10"):
        assert from_file["metrics"][metric] == pytest.approx(from_model["metrics"][metric])
    assert 0.0 <= from_model["metrics"]["ndcg@10"] <= 1.0


def test_output_exists_needs_force(tmp_path, interactions_csv, capsys):
    out = tmp_path / "m"
    out.mkdir()
    code = main(
        [
            "train",
            "--data",
            str(interactions_csv),
            *READ,
            "--model",
            "popularity",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert "--force" in capsys.readouterr().err


def test_bad_model_name_and_param_fail_before_reading(tmp_path, capsys):
    missing = tmp_path / "does-not-exist.csv"
    assert (
        main(["train", "--data", str(missing), "--model", "nope", "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err
    assert "Unknown model 'nope'" in err and "popularity" in err
    assert (
        main(
            [
                "train",
                "--data",
                str(missing),
                "--model",
                "popularity",
                "--param",
                "by=clicks",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "by" in capsys.readouterr().err


def test_bad_k_is_rejected(tmp_path, capsys):
    assert main(["recommend", "--model", str(tmp_path), "--all", "-k", "0", "--output", "-"]) == 2
    assert "'k'" in capsys.readouterr().err


def test_compare_on_files(tmp_path, interactions_csv, capsys):
    split_dir = tmp_path / "split"
    main(
        [
            "split",
            "--data",
            str(interactions_csv),
            *READ,
            "--ratios",
            "0.8",
            "0.2",
            "--out",
            str(split_dir),
        ]
    )
    capsys.readouterr()
    assert (
        main(
            [
                "compare",
                "--train",
                str(split_dir / "train.csv"),
                "--test",
                str(split_dir / "test.csv"),
                *READ,
                "--models",
                "popularity",
                "-k",
                "5",
                "--format",
                "json",
            ]
        )
        == 0
    )
    table = json.loads(capsys.readouterr().out)
    assert 0 <= table["popularity"]["ndcg@5"] <= 1


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.name for c in BAD_INPUTS])
def test_malformed_files_give_clear_cli_errors(tmp_path, capsys, case):
    path = tmp_path / case.filename
    path.write_bytes(case.content)
    code = main(
        [
            "train",
            "--data",
            str(path),
            "--model",
            "popularity",
            "--out",
            str(tmp_path / "out"),
            *case.cli_args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert case.expected.lower() in err.lower()
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_real_process_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,abc\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmrec",
            "train",
            "--data",
            str(bad),
            "--rating-col",
            "rating",
            "--model",
            "popularity",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "row 1" in proc.stderr and "rating" in proc.stderr
