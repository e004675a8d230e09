"""Search spaces: declared as config field metadata, spelled as users write them (issue 15.5)."""

from __future__ import annotations

import pandas as pd
import pytest

from lmrec.errors import ConfigError
from lmrec.models.registry import get_model_class, list_models
from lmrec.tune import resolve_space, search_space

#: Registered models that declare no space: the LM models (their config lives outside
#: models/) and group_popularity (its one choice, the attribute columns, depends on the
#: data). tune explains what to search instead.
NO_BUILTIN_SPACE = {"ranker", "pipeline", "group_popularity"}


def test_every_registered_model_has_a_space_or_a_message():
    """Every model lmrec ships (not ones tests register) has a space, or tune says what to search."""
    shipped = [n for n in list_models() if get_model_class(n).__module__.startswith("lmrec.")]
    assert {"ease", "als", "fm", "content", "text_ease", "twotower", "ranker"} <= set(shipped)
    for name in shipped:
        if name in NO_BUILTIN_SPACE:
            with pytest.raises(ConfigError) as err:
                resolve_space(name)
            message = str(err.value)
            assert f"Model {name!r} declares no built-in search space" in message
            assert "--space" in message
            assert "(int, default" in message or "none of its parameters is numeric" in message
            continue
        space = resolve_space(name)  # checked against the model's config
        assert space, name
        fields = get_model_class(name).config_class.model_fields
        assert list(space) == [f for f in fields if f in space]  # field order


def test_space_is_field_metadata():
    from lmrec.models.knn import KNNConfig

    extra = KNNConfig.model_fields["shrinkage"].json_schema_extra
    assert extra == {"search": ["float", 0.0, 100.0, {"similarity": "cosine"}]}  # JSON: a list
    assert search_space("itemknn")["shrinkage"] == ("float", 0.0, 100.0, {"similarity": "cosine"})


@pytest.mark.parametrize(
    ("model", "param", "spec", "expected"),
    [
        ("ease", "l2", ["log", 10, 5000], ("float_log", 10.0, 5000.0)),
        ("ease", "l2", ["loguniform", 10, 5000], ("float_log", 10.0, 5000.0)),
        ("ease", "l2", ["Log-Uniform", 10, 5000], ("float_log", 10.0, 5000.0)),
        ("ease", "l2", ["float", 10, 5000, "log"], ("float_log", 10.0, 5000.0)),
        ("ease", "l2", ["uniform", 10, 5000], ("float", 10.0, 5000.0)),
        (
            "ease",
            "l2",
            {"type": "float", "low": 10, "high": 5000, "log": True},
            ("float_log", 10.0, 5000.0),
        ),
        ("svd", "factors", ["log", 8, 512], ("int_log", 8, 512)),  # int field: int_log
        ("svd", "factors", ["int", 8, 512, "log"], ("int_log", 8, 512)),
        ("svd", "factors", ["range", 8, 64], ("int", 8, 64)),
        ("svd", "factors", {"low": 8, "high": 64}, ("int", 8, 64)),
        ("popularity", "by", ["choice", ["count"]], ("categorical", ["count"])),
        (
            "popularity",
            "by",
            {"choices": ["count", "weight"]},
            ("categorical", ["count", "weight"]),
        ),
    ],
)
def test_spellings_users_write(model, param, spec, expected):
    assert resolve_space(model, {param: spec})[param] == expected


def test_keyword_form_with_condition():
    space = resolve_space(
        "itemknn",
        {
            "similarity": {"choices": ["cosine", "bm25"]},
            "shrinkage": {"low": 0, "high": 50, "when": {"similarity": "cosine"}},
        },
    )
    assert space["shrinkage"] == ("float", 0.0, 50.0, {"similarity": ["cosine"]})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (["lgo", 10, 5000], "unknown kind 'lgo'.*log, uniform"),
        ({"type": "float", "low": 1}, "needs low and high"),
        ({"type": "float", "low": 1, "high": 2, "step": 1}, "unknown key"),
        (["categorical", ["a"], "log"], "trailing 'log'"),
        ("log", "write \\[kind, low, high\\]"),
    ],
)
def test_bad_spellings_say_what_to_write(spec, match):
    with pytest.raises(ConfigError, match=match):
        resolve_space("ease", {"l2": spec})


def test_cli_tune_reads_a_toml_space_with_log(tmp_path, capsys):
    pytest.importorskip("optuna")
    from lmrec.cli import main

    rows = [(f"u{u}", f"i{(u * 7 + j) % 25}") for u in range(30) for j in range(8)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    split = tmp_path / "split"
    split.mkdir()
    frame.iloc[::4].to_csv(split / "valid.csv", index=False)
    frame.drop(frame.index[::4]).to_csv(split / "train.csv", index=False)
    (tmp_path / "space.toml").write_text('l2 = ["log", 10, 5000]\n')
    code = main(
        [
            "tune",
            "--model",
            "ease",
            "--split",
            str(split),
            "--space",
            str(tmp_path / "space.toml"),
            "--trials",
            "2",
            "--out",
            str(tmp_path / "t"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"float_log"' in (tmp_path / "t" / "study.json").read_text()
    (tmp_path / "bad.toml").write_text('l2 = ["lgo", 10, 5000]\n')
    code = main(
        [
            "tune",
            "--model",
            "ease",
            "--split",
            str(split),
            "--space",
            str(tmp_path / "bad.toml"),
            "--out",
            str(tmp_path / "t2"),
        ]
    )
    assert code == 2 and "unknown kind 'lgo'" in capsys.readouterr().err


def test_tune_help_documents_the_space_format(capsys):
    from lmrec.cli import main

    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    out = capsys.readouterr().out
    for text in ('["log", 10, 5000]', '"categorical"', "int_log", "log = true"):
        assert text in out
