"""CLI inputs: catalog id columns, repeated --data, --exclude, --titles, one coverage catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.cli import main


@pytest.fixture()
def movies(tmp_path):
    """A log with MovieLens-style column names, its catalog, and a train/valid/test split."""
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", f"m{i}") for u in range(30) for i in rng.choice(20, 8, replace=False)]
    log = pd.DataFrame(rows, columns=["userId", "movieId"])
    log.to_csv(tmp_path / "ratings.csv", index=False)
    catalog = pd.DataFrame(
        {"item": [f"m{i}" for i in range(22)], "title": [f"Movie {i}" for i in range(22)]}
    )
    catalog.to_csv(tmp_path / "items.csv", index=False)
    parts = {"train": log.iloc[0::3], "valid": log.iloc[1::3], "test": log.iloc[2::3]}
    for name, part in parts.items():
        part.rename(columns={"userId": "user", "movieId": "item"}).to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    return tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_item_col_of_the_log_does_not_apply_to_the_catalog(movies, capsys):
    # The trap: --item-col movieId names the log's column; the catalog says 'item'.
    code, _, err = run(
        capsys,
        "train",
        "--data",
        movies / "ratings.csv",
        "--user-col",
        "userId",
        "--item-col",
        "movieId",
        "--items",
        movies / "items.csv",
        "--model",
        "popularity",
        "--out",
        movies / "m1",
    )
    assert code == 0, err
    code, out, err = run(
        capsys,
        "recommend",
        "--model",
        movies / "m1",
        "--all",
        "-k",
        "3",
        "--output",
        "-",
        "--include-seen",
    )
    assert code == 0, err
    recs = pd.read_csv(pd.io.common.StringIO(out))
    assert recs["user"].nunique() == 30


def test_catalog_with_the_log_column_name_is_found(movies, capsys):
    cat = pd.read_csv(movies / "items.csv").rename(columns={"item": "movieId"})
    cat.to_csv(movies / "movies.csv", index=False)
    code, _, err = run(
        capsys,
        "train",
        "--data",
        movies / "ratings.csv",
        "--user-col",
        "userId",
        "--item-col",
        "movieId",
        "--items",
        movies / "movies.csv",
        "--model",
        "popularity",
        "--out",
        movies / "m2",
    )
    assert code == 0, err
    from lmrec.models import load_model

    assert load_model(movies / "m2").n_items == 22  # catalog-only m20, m21 joined the id map


def test_catalog_without_a_known_id_column_names_the_flag(movies, capsys):
    cat = pd.read_csv(movies / "items.csv").rename(columns={"item": "mid"})
    cat.to_csv(movies / "odd.csv", index=False)
    argv = [
        "train",
        "--data",
        movies / "ratings.csv",
        "--user-col",
        "userId",
        "--item-col",
        "movieId",
        "--items",
        movies / "odd.csv",
        "--model",
        "popularity",
    ]
    code, _, err = run(capsys, *argv, "--out", movies / "m3")
    assert code == 2
    assert "--items-item-col COLUMN" in err and "'movieId' and 'item'" in err and "'mid'" in err
    assert "--item-col NAME" not in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, *argv, "--items-item-col", "mid", "--out", movies / "m3")
    assert code == 0, err


def test_users_catalog_has_its_own_flag(movies, capsys):
    pd.DataFrame({"uid": [f"u{u}" for u in range(30)], "age": range(30)}).to_csv(
        movies / "users.csv", index=False
    )
    argv = [
        "train",
        "--data",
        movies / "ratings.csv",
        "--user-col",
        "userId",
        "--item-col",
        "movieId",
        "--users",
        movies / "users.csv",
        "--model",
        "popularity",
    ]
    code, _, err = run(capsys, *argv, "--out", movies / "u1")
    assert code == 2 and "--users-user-col COLUMN" in err
    code, _, err = run(capsys, *argv, "--users-user-col", "uid", "--out", movies / "u1")
    assert code == 0, err


def test_train_on_several_files_equals_one_file_of_their_union(movies, capsys):
    both = pd.concat([pd.read_csv(movies / "train.csv"), pd.read_csv(movies / "valid.csv")])
    both.to_csv(movies / "trainvalid.csv", index=False)
    assert (
        run(
            capsys,
            "train",
            "--data",
            movies / "train.csv",
            "--data",
            movies / "valid.csv",
            "--model",
            "ease",
            "--out",
            movies / "two",
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "train",
            "--data",
            movies / "trainvalid.csv",
            "--model",
            "ease",
            "--out",
            movies / "one",
        )[0]
        == 0
    )
    a = run(capsys, "evaluate", "--model", movies / "two", "--test", movies / "test.csv")[1]
    b = run(capsys, "evaluate", "--model", movies / "one", "--test", movies / "test.csv")[1]
    assert a.splitlines()[1:] == b.splitlines()[1:] and "ndcg@10" in a


def test_repeated_data_files_must_be_disjoint(movies, capsys):
    code, _, err = run(
        capsys,
        "train",
        "--data",
        movies / "train.csv",
        "--data",
        movies / "train.csv",
        "--model",
        "popularity",
        "--out",
        movies / "x",
    )
    assert code == 2 and "share" in err and "one file only" in err


def test_exclude_drops_the_pairs_from_lists_and_evaluation(movies, capsys):
    assert (
        run(
            capsys,
            "train",
            "--data",
            movies / "train.csv",
            "--model",
            "popularity",
            "--out",
            movies / "pop",
        )[0]
        == 0
    )
    valid = pd.read_csv(movies / "valid.csv", dtype=str)
    code, out, err = run(
        capsys,
        "recommend",
        "--model",
        movies / "pop",
        "--all",
        "-k",
        "5",
        "--exclude",
        movies / "valid.csv",
        "--output",
        "-",
    )
    assert code == 0, err
    recs = pd.read_csv(pd.io.common.StringIO(out), dtype={"user": str, "item": str})
    clash = recs.merge(valid, on=["user", "item"])
    assert clash.empty and (recs.groupby("user").size() == 5).all()
    _, plain_out, _ = run(
        capsys, "recommend", "--model", movies / "pop", "--all", "-k", "12", "--output", "-"
    )
    plain = pd.read_csv(pd.io.common.StringIO(plain_out), dtype={"user": str, "item": str})
    # the --exclude lists are the plain lists with the valid items taken out, in order
    kept = plain.merge(valid, on=["user", "item"], how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].groupby("user").head(5)
    assert recs[["user", "item"]].values.tolist() == kept[["user", "item"]].values.tolist()
    code, out, _ = run(
        capsys,
        "evaluate",
        "--model",
        movies / "pop",
        "--test",
        movies / "test.csv",
        "--exclude",
        movies / "valid.csv",
    )
    assert code == 0 and "ndcg@10" in out
    code, _, err = run(
        capsys,
        "evaluate",
        "--recommendations",
        movies / "valid.csv",
        "--test",
        movies / "test.csv",
        "--exclude",
        movies / "valid.csv",
    )
    assert code == 2 and "--exclude goes with --model" in err


def test_recommend_titles(movies, capsys):
    assert (
        run(
            capsys,
            "train",
            "--data",
            movies / "train.csv",
            "--model",
            "popularity",
            "--out",
            movies / "pop",
        )[0]
        == 0
    )
    code, out, err = run(
        capsys,
        "recommend",
        "--model",
        movies / "pop",
        "--users",
        movies / "test.csv",
        "-k",
        "3",
        "--titles",
        movies / "items.csv",
        "--output",
        "-",
    )
    assert code == 0, err
    recs = pd.read_csv(pd.io.common.StringIO(out), dtype=str)
    assert list(recs.columns) == ["user", "item", "rank", "score", "title"]
    assert (recs["title"] == "Movie " + recs["item"].str[1:]).all()
    code, _, err = run(
        capsys,
        "recommend",
        "--model",
        movies / "pop",
        "--all",
        "--titles",
        movies / "items.csv",
        "--title-col",
        "name",
        "--output",
        "-",
    )
    assert code == 2 and "--title-col COLUMN" in err and "'title'" in err


def test_coverage_is_the_same_from_a_model_and_from_its_lists(movies, capsys):
    """Issue 15.8: one catalog (the items the recommender knew) for both routes."""
    train = [movies / "train.csv", movies / "valid.csv"]
    assert (
        run(
            capsys,
            "train",
            "--data",
            train[0],
            "--data",
            train[1],
            "--model",
            "ease",
            "--out",
            movies / "ease",
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "recommend",
            "--model",
            movies / "ease",
            "--all",
            "-k",
            "4",
            "--output",
            movies / "recs.csv",
        )[0]
        == 0
    )
    metrics = "coverage@4,gini@4,novelty@4,ndcg@4"
    _, by_model, _ = run(
        capsys,
        "evaluate",
        "--model",
        movies / "ease",
        "--test",
        movies / "test.csv",
        "--metrics",
        metrics,
    )
    _, by_lists, _ = run(
        capsys,
        "evaluate",
        "--recommendations",
        movies / "recs.csv",
        "--test",
        movies / "test.csv",
        "--train",
        train[0],
        "--train",
        train[1],
        "--metrics",
        metrics,
    )
    assert by_model.splitlines()[1:] == by_lists.splitlines()[1:]
    # without the training files the catalog is unknown: coverage and gini are left out
    _, out, err = run(
        capsys,
        "evaluate",
        "--recommendations",
        movies / "recs.csv",
        "--test",
        movies / "test.csv",
        "--metrics",
        metrics,
    )
    assert "coverage" not in out and "coverage and gini need the catalog" in err
    # an item catalog alone defines it too: 22 items, of which the lists cover some
    _, out, _ = run(
        capsys,
        "evaluate",
        "--recommendations",
        movies / "recs.csv",
        "--test",
        movies / "test.csv",
        "--items",
        movies / "items.csv",
        "--metrics",
        "coverage@4",
    )
    recs = pd.read_csv(movies / "recs.csv", dtype=str)
    assert f"{recs['item'].nunique() / 22:.4f}" in out


def test_unknown_users_are_named_in_cli_words(movies, capsys):
    assert (
        run(
            capsys,
            "train",
            "--data",
            movies / "train.csv",
            "--model",
            "popularity",
            "--out",
            movies / "pop",
        )[0]
        == 0
    )
    (movies / "who.txt").write_text("u1\nstranger\nu2\n")
    code, _, err = run(
        capsys,
        "recommend",
        "--model",
        movies / "pop",
        "--users",
        movies / "who.txt",
        "--output",
        "-",
    )
    assert code == 2 and "--on-unknown warn" in err and "'stranger'" in err
    assert "on_unknown" not in err and len(err.strip().splitlines()) == 1
    code, out, err = run(
        capsys,
        "recommend",
        "--model",
        movies / "pop",
        "--users",
        movies / "who.txt",
        "--output",
        "-",
        "--on-unknown",
        "skip",
    )
    assert code == 0 and set(pd.read_csv(pd.io.common.StringIO(out))["user"]) == {"u1", "u2"}
    assert err.count("stranger") == 1 and "warning" in err and ".py:" not in err


def test_python_warnings_once_on_one_line_without_source(monkeypatch, capsys):
    import warnings

    from lmrec.cli import model_cmds
    from lmrec.errors import DataWarning

    def noisy(args):
        for _ in range(2):
            warnings.warn("same message", DataWarning, stacklevel=1)
        warnings.warn("same message", DataWarning, stacklevel=2)  # another location
        warnings.warn("first line\n  second line", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(model_cmds, "cmd_train", noisy)
    code, _, err = run(capsys, "train", "--data", "x.csv", "--model", "ease", "--out", "o")
    assert code == 0
    assert err.splitlines() == [
        "lmrec train: warning: same message",
        "lmrec train: warning: first line second line",
    ]
