"""Hyperparameter search (lmrec.tune) on the tiny checkerboard data set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lmrec.data.dataset import Dataset
from lmrec.data.split import random_split
from lmrec.errors import ConfigError
from lmrec.testing import checkerboard

pytest.importorskip("optuna")

from lmrec.tune import TuneResult, grid_values, resolve_space, search_space, tune  # noqa: E402

SAMPLERS = ["tpe", "random", "grid"]
EASE_SPACE = {"l2": ("float_log", 1.0, 1000.0)}


@pytest.fixture(scope="module")
def split():
    data = checkerboard()  # without its timestamps: time-decay trials must fail here
    untimed = Dataset.from_frame(data.to_frame().drop(columns="timestamp"), items=data.items)
    return random_split(untimed, ratios=(0.6, 0.2, 0.2), seed=2026)


def _in_space(value, spec) -> bool:
    if spec[0] == "categorical":
        return value in spec[1]
    return spec[1] <= value <= spec[2]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_tune_popularity_each_sampler(split, sampler):
    res = tune("popularity", split.train, split.valid, n_trials=3, sampler=sampler, seed=1)
    assert isinstance(res, TuneResult)
    assert res.model_name == "popularity" and res.metric == "ndcg@10"
    assert res.best_params["by"] in ("count", "weight")
    assert 0.0 <= res.best_value <= 1.0
    assert list(res.trials.columns) == ["number", "by", "value", "duration_s", "state", "error"]
    # The grid has 2 points, so the grid sampler stops after 2 trials.
    assert len(res.trials) == (2 if sampler == "grid" else 3)
    assert (res.trials["state"] == "COMPLETE").all()
    assert res.best_value == res.trials["value"].max()


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_tune_ease_each_sampler(split, sampler):
    res = tune("ease", split.train, split.valid, n_trials=4, sampler=sampler, seed=0)
    assert len(res.trials) == 4
    spec = search_space("ease")["l2"]
    assert _in_space(res.best_params["l2"], spec)
    assert res.trials["l2"].between(spec[1], spec[2]).all()
    if sampler == "grid":
        assert sorted(res.trials["l2"]) == pytest.approx(grid_values(spec))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_same_trials(split, sampler):
    space = {"by": ("categorical", ["count", "weight"])}
    cols = ["number", "by", "value", "state"]
    a = tune(
        "popularity", split.train, split.valid, n_trials=4, sampler=sampler, seed=7, space=space
    )
    b = tune(
        "popularity", split.train, split.valid, n_trials=4, sampler=sampler, seed=7, space=space
    )
    pd.testing.assert_frame_equal(a.trials[cols], b.trials[cols])
    assert a.best_params == b.best_params


def test_same_seed_same_trials_continuous(split):
    a = tune("ease", split.train, split.valid, n_trials=5, seed=3, space=EASE_SPACE)
    b = tune("ease", split.train, split.valid, n_trials=5, seed=3, space=EASE_SPACE)
    c = tune("ease", split.train, split.valid, n_trials=5, seed=4, space=EASE_SPACE)
    np.testing.assert_array_equal(a.trials["l2"], b.trials["l2"])
    np.testing.assert_array_equal(a.trials["value"], b.trials["value"])
    assert not np.array_equal(a.trials["l2"], c.trials["l2"])


def test_best_params_within_custom_space(split):
    space = {"by": ["categorical", ["weight"]], "half_life_days": ["float_log", 1.0, 100.0]}
    # checkerboard has no timestamps: every half_life_days trial fails with a ConfigError,
    # which must be recorded, not raised.
    with pytest.raises(ConfigError, match="All 2 trials"):
        tune("popularity", split.train, split.valid, n_trials=2, space=space)
    res = tune("popularity", split.train, split.valid, n_trials=2, space={"by": space["by"]})
    assert res.best_params == {"by": "weight"}


def test_failed_trials_are_recorded(split):
    space = {"half_life_days": ("categorical", [None, 10.0])}
    res = tune("popularity", split.train, split.valid, n_trials=2, sampler="grid", space=space)
    states = dict(zip(res.trials["half_life_days"].isna(), res.trials["state"], strict=True))
    assert states == {True: "COMPLETE", False: "FAIL"}
    failed = res.trials[res.trials["state"] == "FAIL"]
    assert "timestamps" in failed["error"].iloc[0]
    assert np.isnan(failed["value"].iloc[0])
    assert res.best_params["half_life_days"] is None


def test_unknown_param_in_space_raises(split):
    with pytest.raises(ConfigError, match="Unknown parameter.*'nope'.*Valid parameters: by"):
        tune("popularity", split.train, split.valid, n_trials=1, space={"nope": ("int", 1, 3)})
    with pytest.raises(ConfigError, match="Unknown parameter"):
        tune("popularity", split.train, split.valid, n_trials=1, fixed_params={"nope": 1})


@pytest.mark.parametrize(
    "spec",
    [
        ("int", 5, 1),
        ("float_log", 0.0, 1.0),
        ("cube", 1, 2),
        ("categorical", []),
        "int",
        ("int", 1.5, 3),
    ],
)
def test_bad_spec_raises(spec):
    with pytest.raises(ConfigError, match="Search space of 'popularity'"):
        resolve_space("popularity", {"half_life_days": spec})


def test_bad_arguments_raise(split):
    with pytest.raises(ConfigError, match="sampler"):
        tune("popularity", split.train, split.valid, sampler="anneal")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_trials"):
        tune("popularity", split.train, split.valid, n_trials=0)
    with pytest.raises(ConfigError, match="Unknown metric"):
        tune("popularity", split.train, split.valid, metric="nope@10")
    with pytest.raises(ConfigError, match="Unknown model"):
        tune("no_such_model", split.train, split.valid)


def test_builtin_spaces_match_model_configs():
    from lmrec.models.registry import builtin_models

    for name in builtin_models():  # a broken import of a built-in model fails here
        if search_space(name):
            resolve_space(name)


def test_space_from_toml_and_json(tmp_path, split):
    toml = tmp_path / "space.toml"
    toml.write_text('by = ["categorical", ["count"]]\n')
    js = tmp_path / "space.json"
    js.write_text(json.dumps({"by": ["categorical", ["weight"]]}))
    assert tune("popularity", split.train, split.valid, n_trials=1, space=toml).best_params == {
        "by": "count"
    }
    assert tune("popularity", split.train, split.valid, n_trials=1, space=str(js)).best_params == {
        "by": "weight"
    }
    bad = tmp_path / "space.yaml"
    bad.write_text("by: 1")
    with pytest.raises(ConfigError, match=".toml or .json"):
        resolve_space("popularity", bad)


def test_refit_returns_fitted_model(split):
    res = tune("popularity", split.train, split.valid, n_trials=2, sampler="grid")
    model = res.refit(split.train, split.valid)
    assert model.is_fitted
    assert model.name == "popularity"
    assert model.config.by == res.best_params["by"]
    # Refit learns from train + valid.
    n_train_valid = split.train.n_interactions + split.valid.n_interactions
    assert model.seen_.nnz == n_train_valid


def test_save_writes_files(tmp_path, split):
    res = tune("popularity", split.train, split.valid, n_trials=3, seed=0)
    out = res.save(tmp_path / "study")
    assert json.loads((out / "best_params.json").read_text()) == res.best_params
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials.columns) == list(res.trials.columns)
    assert len(trials) == 3
    meta = json.loads((out / "study.json").read_text())
    assert meta["model"] == "popularity" and meta["metric"] == "ndcg@10"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_optuna_verbosity_restored(split):
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        tune("popularity", split.train, split.valid, n_trials=1)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(before)


def test_grid_values():
    assert grid_values(("float_log", 1.0, 1000.0)) == pytest.approx([1.0, 10.0, 100.0, 1000.0])
    assert grid_values(("int_log", 10, 500)) == [10, 37, 136, 500]
    assert grid_values(("float", 0.0, 3.0)) == [0.0, 1.0, 2.0, 3.0]
    assert grid_values(("categorical", ["a", None])) == ["a", None]


def test_conditional_params_sampled_only_when_condition_holds(split):
    res = tune("itemknn", split.train, split.valid, n_trials=8, sampler="random", seed=0)
    t = res.trials
    assert (t["state"] == "COMPLETE").all(), t["error"].dropna().tolist()
    assert t.loc[t["similarity"] != "cosine", "shrinkage"].isna().all()
    assert t.loc[t["similarity"] != "bm25", "bm25_k1"].isna().all()
    assert t.loc[t["similarity"] == "bm25", "bm25_b"].notna().all()
    if res.best_params["similarity"] != "cosine":
        assert "shrinkage" not in res.best_params


def test_condition_on_fixed_param(split):
    space = {"half_life_days": ("float", 1.0, 2.0, {"by": "weight"})}
    res = tune(
        "popularity",
        split.train,
        split.valid,
        n_trials=2,
        space=space,
        fixed_params={"by": "count"},
    )
    assert res.best_params == {"by": "count"}
    assert res.trials["half_life_days"].isna().all()


def test_condition_must_name_an_earlier_param():
    with pytest.raises(ConfigError, match="condition names 'half_life_days'"):
        resolve_space(
            "popularity",
            {
                "by": ("categorical", ["count"], {"half_life_days": 1.0}),
                "half_life_days": ("float", 1.0, 2.0),
            },
        )


def test_condition_from_toml(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text(
        'by = ["categorical", ["count", "weight"]]\n'
        'half_life_days = ["float_log", 1.0, 10.0, {by = "weight"}]\n'
    )
    space = resolve_space("popularity", f)
    assert space["half_life_days"] == ("float_log", 1.0, 10.0, {"by": ["weight"]})
