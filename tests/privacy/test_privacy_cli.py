"""``lmrec forget`` (with the event store) and ``lmrec anonymize`` end to end."""

from __future__ import annotations

import json
import stat

import pandas as pd
import pytest

from lmrec.cli import main


@pytest.fixture()
def small_csv(tmp_path):
    rows = [(f"u{u}", f"i{(u * 3 + j) % 12}") for u in range(30) for j in range(5)]
    path = tmp_path / "train.csv"
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(path, index=False)
    return path


def test_forget_cli_model_and_store(tmp_path, small_csv, capsys):
    pytest.importorskip("sqlalchemy")
    from lmrec.models import load_model
    from lmrec.serve.events import Event, EventStore

    assert (
        main(["train", "--data", str(small_csv), "--model", "ease", "--out", str(tmp_path / "m")])
        == 0
    )
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    store.write(
        [
            Event(f"k{u}-{i}", f"u{u}", f"i{i}", "click", 1.0, 0.0)
            for u in range(5)
            for i in range(3)
        ]
    )
    store.close()
    (tmp_path / "gone.txt").write_text("u1\nu2\n")
    capsys.readouterr()
    assert (
        main(
            [
                "forget",
                "--model",
                str(tmp_path / "m"),
                "--users",
                str(tmp_path / "gone.txt"),
                "--out",
                str(tmp_path / "m2"),
                "--store",
                url,
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "exact" and record["n_users"] == 2
    assert record["events_deleted"] == 6
    assert "u1" not in json.dumps(record)
    model = load_model(tmp_path / "m2")
    assert "u1" not in set(model.user_ids_.ids) and "u3" in set(model.user_ids_.ids)
    store = EventStore(url)
    assert {e.user for e in store.events_after(0)} == {"u0", "u3", "u4"}
    store.close()
    raw = (tmp_path / "events.db").read_bytes()
    assert b"k1-0" not in raw and b"k2-2" not in raw


def test_forget_cli_errors(tmp_path, small_csv, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                str(small_csv),
                "--model",
                "als",
                "--param",
                "factors=4",
                "--param",
                "iterations=2",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    (tmp_path / "gone.txt").write_text("u1\n")
    (tmp_path / "nobody.txt").write_text("zz\n")
    args = ["forget", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "m2")]
    assert main([*args, "--users", str(tmp_path / "nobody.txt")]) == 2
    assert "unknown user" in capsys.readouterr().err
    assert main([*args, "--users", str(tmp_path / "gone.txt")]) == 2
    assert "give the training data" in capsys.readouterr().err
    assert main([*args, "--users", str(tmp_path / "gone.txt"), "--data", str(small_csv)]) == 0
    assert '"retrained"' in capsys.readouterr().out


def test_anonymize_cli(tmp_path, small_csv):
    key, out, reid = tmp_path / "secret" / "k.hex", tmp_path / "anon.csv", tmp_path / "reid.csv"
    key.parent.mkdir()
    assert (
        main(
            [
                "anonymize",
                "--data",
                str(small_csv),
                "--out",
                str(out),
                "--key-file",
                str(key),
                "--new-key",
                "--map",
                str(reid),
            ]
        )
        == 0
    )
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    src, anon, back = pd.read_csv(small_csv), pd.read_csv(out), pd.read_csv(reid)
    assert not set(src["user"]) & set(anon["user"])
    assert (anon["item"] == src["item"]).all()
    assert anon["user"].str.len().eq(32).all()
    assert (
        dict(zip(back["pseudonym"], back["original"], strict=True))[anon["user"][0]]
        == src["user"][0]
    )
    # same key, same pseudonyms; a second --new-key never overwrites the key
    out2 = tmp_path / "anon2.csv"
    assert (
        main(
            [
                "anonymize",
                "--data",
                str(small_csv),
                "--out",
                str(out2),
                "--key-file",
                str(key),
                "--items",
            ]
        )
        == 0
    )
    assert (pd.read_csv(out2)["user"] == anon["user"]).all()
    assert (
        main(
            [
                "anonymize",
                "--data",
                str(small_csv),
                "--out",
                str(tmp_path / "x.csv"),
                "--key-file",
                str(key),
                "--new-key",
            ]
        )
        == 2
    )


def test_models_shows_the_privacy_budget(tmp_path, small_csv, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                str(small_csv),
                "--model",
                "ease",
                "--param",
                "dp_epsilon=4",
                "--param",
                "dp_delta=0.001",
                "--param",
                "dp_seed=0",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["models", str(tmp_path / "m")]) == 0
    assert "epsilon=4, delta=0.001, unit=user" in capsys.readouterr().out
    assert (
        main(
            [
                "train",
                "--data",
                str(small_csv),
                "--model",
                "als",
                "--param",
                "dp_epsilon=4",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 2
    )
    assert "does not support differential privacy" in capsys.readouterr().err
