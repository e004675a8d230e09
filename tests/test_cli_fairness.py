"""``lmrec evaluate|compare`` with --items, --users, --groups, every metric and --report, on a
small CSV with a catalog (not MovieLens): what works, and the messages for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.cli import main


@pytest.fixture()
def files(tmp_path):
    """Ratings of 60 users on 40 items in two taste groups, a catalog and user attributes."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(60):
        own = np.arange(u % 2, 40, 2)
        for i in rng.choice(own, size=12, replace=False):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(3, 6))))
        for i in rng.choice(np.arange(1 - u % 2, 40, 2), size=2, replace=False):
            rows.append((f"u{u}", f"i{i}", 1))
    paths = {
        "data": tmp_path / "ratings.csv",
        "items": tmp_path / "items.csv",
        "users": tmp_path / "users.csv",
    }
    pd.DataFrame(rows, columns=["user", "item", "stars"]).to_csv(paths["data"], index=False)
    pd.DataFrame(
        {
            "item": [f"i{i}" for i in range(40)],
            "title": [f"Item {i}" for i in range(40)],
            "kind": ["odd|x" if i % 2 else "even" for i in range(40)],
        }
    ).to_csv(paths["items"], index=False)
    pd.DataFrame(
        {
            "user": [f"u{u}" for u in range(60)],
            "sex": ["F" if u % 3 else "M" for u in range(60)],
            "age": [18 + u for u in range(60)],
        }
    ).to_csv(paths["users"], index=False)
    return paths


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_compare_with_groups_every_metric_and_report(files, tmp_path, capsys):
    report = tmp_path / "report.html"
    code, out, err = _run(
        [
            "compare",
            "--data",
            str(files["data"]),
            "--rating-col",
            "stars",
            "--items",
            str(files["items"]),
            "--users",
            str(files["users"]),
            "--models",
            "popularity,biasedmf",
            "--param",
            "biasedmf.factors=4",
            "--metrics",
            "ndcg@5,f1,auc,rmse,mae,miscalibration@5,ild@5,arp@5",
            "--attribute",
            "kind",
            "--groups",
            "sex,age_band,kind,activity",
            "--report",
            str(report),
            "-k",
            "5",
        ],
        capsys,
    )
    assert (
        code == 2 and "rmse" in err and "'popularity' ranks items" in err
    )  # popularity has no ratings
    code, out, err = _run(
        [
            "compare",
            "--data",
            str(files["data"]),
            "--rating-col",
            "stars",
            "--items",
            str(files["items"]),
            "--users",
            str(files["users"]),
            "--models",
            "biasedmf,knnbaseline",
            "--param",
            "biasedmf.factors=4",
            "--metrics",
            "ndcg@5,f1,auc,rmse,mae,miscalibration@5,ild@5,arp@5",
            "--attribute",
            "kind",
            "--groups",
            "sex,age_band,kind,activity",
            "--report",
            str(report),
            "-k",
            "5",
        ],
        capsys,
    )
    assert code == 0, err
    for metric in ("rmse", "mae", "auc", "f1", "miscalibration@5", "ild@5", "arp@5"):
        assert metric in out
    assert "biasedmf by sex" in out and "gap ndcg@5" in out
    html = report.read_text()
    assert '<section id="user-fairness">' in html and "By sex" in html and "By kind" in html
    assert "lmrec compare" in html and "sha256:" in html


def test_evaluate_model_and_recommendations(files, tmp_path, capsys):
    model = tmp_path / "ease"
    assert (
        main(
            [
                "train",
                "--data",
                str(files["data"]),
                "--model",
                "ease",
                "--param",
                "l2=10",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code, out, err = _run(
        [
            "evaluate",
            "--model",
            str(model),
            "--test",
            str(files["data"]),
            "--items",
            str(files["items"]),
            "--users",
            str(files["users"]),
            "--metrics",
            "recall@5,auc,pop_lift@5",
            "--attribute",
            "kind",
            "--groups",
            "sex",
            "--report",
            str(tmp_path / "e.html"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "auc" in out and "pop_lift@5" in out and "by sex" in out
    code, _, err = _run(
        ["evaluate", "--model", str(model), "--test", str(files["data"]), "--metrics", "rmse"],
        capsys,
    )
    assert code == 2 and "ranks items without predicting ratings" in err
    recs = tmp_path / "recs.csv"
    pd.DataFrame(
        {"user": ["u0", "u0", "u1"], "item": ["i2", "i4", "i3"], "rank": [1, 2, 1]}
    ).to_csv(recs, index=False)
    code, out, err = _run(
        [
            "evaluate",
            "--recommendations",
            str(recs),
            "--test",
            str(files["data"]),
            "--items",
            str(files["items"]),
            "--users",
            str(files["users"]),
            "--metrics",
            "ndcg@5",
            "--groups",
            "sex",
            "--report",
            str(tmp_path / "r.html"),
        ],
        capsys,
    )
    assert code == 0, err
    assert '<section id="metrics">' in (tmp_path / "r.html").read_text()
    code, _, err = _run(
        [
            "evaluate",
            "--recommendations",
            str(recs),
            "--test",
            str(files["data"]),
            "--metrics",
            "auc",
        ],
        capsys,
    )
    assert code == 2 and "need a model's scores" in err


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--groups", "shoe_size"], "unknown attribute(s) 'shoe_size'. Available: activity, age"),
        (["--metrics", "miscalibration@5"], "need an item attribute: pass --items"),
        (["--metrics", "rmse"], "needs a 'rating' column"),
    ],
)
def test_bad_input_gets_a_clear_message(files, capsys, extra, words):
    args = [
        "compare",
        "--data",
        str(files["data"]),
        "--users",
        str(files["users"]),
        "--models",
        "biasedmf",
        "--param",
        "biasedmf.factors=2",
        *extra,
    ]
    code, _, err = _run(args, capsys)
    assert code == 2 and words in err
