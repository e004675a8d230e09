"""CLI with an item catalog: text models train from any CSV, catalog-only items are recommendable."""

from __future__ import annotations

import pandas as pd

from lmrec.cli import main


def test_content_model_from_csv_with_catalog(tmp_path, capsys):
    space = ["space station drama", "alien invasion war", "galaxy explorers", "robot uprising"]
    cooking = [
        "french pastry contest",
        "italian pasta family",
        "street food tour",
        "bakery romance",
    ]
    items = pd.DataFrame(
        {
            "item": [f"s{i}" for i in range(4)] + [f"c{i}" for i in range(4)] + ["s-new", "c-new"],
            "title": space + cooking + ["starship rescue mission", "chocolate cake championship"],
            "kind": ["science fiction"] * 4 + ["cooking"] * 4 + ["science fiction", "cooking"],
        }
    )
    items.to_csv(tmp_path / "items.csv", index=False)
    rows = [(f"u{u}", f"{'s' if u % 2 == 0 else 'c'}{i}") for u in range(10) for i in range(3)]
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(tmp_path / "log.csv", index=False)

    model_dir = tmp_path / "content"
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "log.csv"),
                "--items",
                str(tmp_path / "items.csv"),
                "--model",
                "content",
                "--text-template",
                "{title}. A {kind} film.",
                "--out",
                str(model_dir),
            ]
        )
        == 0
    )
    out = tmp_path / "recs.csv"
    assert (
        main(["recommend", "--model", str(model_dir), "--all", "-k", "2", "--output", str(out)])
        == 0
    )
    recs = pd.read_csv(out, dtype=str)
    top = recs[recs["rank"] == "1"].set_index("user")["item"]
    # Catalog-only items (no interactions) are recommended, to the users whose taste matches.
    assert set(top) <= {"s-new", "c-new", "s3", "c3"}
    assert all(top[f"u{u}"].startswith("s" if u % 2 == 0 else "c") for u in range(10))
    assert {"s-new", "c-new"} <= set(recs["item"])


def test_text_template_rejected_for_models_without_text(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user,item\na,x\n")
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "log.csv"),
            "--model",
            "ease",
            "--text-template",
            "{title}",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert code == 2
    assert "reads no item text" in capsys.readouterr().err


def test_content_without_catalog_says_what_to_pass(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user,item\na,x\nb,y\n")
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "log.csv"),
            "--model",
            "content",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert code == 2
    assert "--items" in capsys.readouterr().err
