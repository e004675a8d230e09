"""Forgetting users (issue 21.1, plan check 19): exact unlearning equals a fit without them,
retraining for the others, and no trace of a forgotten user in a saved model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmrec.errors import ConfigError, UnknownIdError
from lmrec.models.capabilities import UnlearningModel, supports
from lmrec.models.registry import create_model, models_supporting
from lmrec.privacy.forget import forget_users, without_users

#: Exact models and small configurations (text2cf and content need item text: own test).
EXACT = {
    "popularity": {},
    "itemknn": {"k_neighbors": 20},
    "userknn": {"k_neighbors": 20},
    "ease": {"l2": 200.0},
    "svd": {"factors": 16},
}


@pytest.fixture(scope="module")
def train(ml100k_split):
    return ml100k_split.train


def _forgotten_ids(data, n=25, seed=0):
    rng = np.random.default_rng(seed)
    return list(data.user_ids.ids[rng.choice(data.n_users, n, replace=False)])


def test_unlearning_models_are_declared():
    assert set(EXACT) <= set(models_supporting(UnlearningModel))
    assert not supports(create_model("als"), UnlearningModel)


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(EXACT))
def test_forget_equals_fit_without_the_users(train, name):
    gone = _forgotten_ids(train)
    model = create_model(name, EXACT[name]).fit(train)
    forgotten, report = forget_users(model, gone)
    scratch = create_model(name, EXACT[name]).fit(without_users(train, gone))
    assert report.method == "exact" and report.n_users == len(gone)
    assert list(forgotten.user_ids_.ids) == list(scratch.user_ids_.ids)
    assert not set(gone) & set(forgotten.user_ids_.ids)
    assert (forgotten.seen_ != scratch.seen_).nnz == 0
    users = list(scratch.user_ids_.ids)
    diff = np.abs(forgotten.score(users) - scratch.score(users)).max()
    assert diff < 1e-6, f"{name}: max |forgotten - from scratch| = {diff:g}"
    # the original model is untouched
    assert set(gone) <= set(model.user_ids_.ids)


@pytest.mark.realdata
def test_saved_model_keeps_no_trace(train, tmp_path):
    gone = _forgotten_ids(train, n=3, seed=1)
    model = create_model("ease", {"l2": 200.0}).fit(train)
    forgotten, _ = forget_users(model, gone)
    out = forgotten.save(tmp_path / "m")
    from lmrec.models import load_model

    back = load_model(out)
    assert back.seen_.shape[0] == train.n_users - 3
    assert not set(gone) & set(back.user_ids_.ids)
    import pandas as pd

    ids = set(pd.read_parquet(out / "user_ids.parquet")["user"].astype(str))
    assert not {str(g) for g in gone} & ids
    assert "forget" not in json.loads((out / "config.json").read_text())["meta"]


@pytest.mark.realdata
def test_iterative_models_retrain_with_data(train):
    gone = _forgotten_ids(train, n=5)
    model = create_model("als", {"factors": 8, "iterations": 2}).fit(train)
    with pytest.raises(ConfigError, match="give the training data"):
        forget_users(model, gone)
    forgotten, report = forget_users(model, gone, data=train)
    assert report.method == "retrained"
    assert forgotten.user_factors_.shape[0] == train.n_users - 5
    assert not set(gone) & set(forgotten.user_ids_.ids)


def test_bad_requests(train):
    model = create_model("popularity").fit(train)
    with pytest.raises(UnknownIdError, match="unknown user"):
        forget_users(model, ["no-such-user"])
    with pytest.raises(ConfigError, match="empty"):
        forget_users(model, [])
    weighted = create_model("popularity", {"by": "weight"}).fit(train)
    with pytest.raises(ConfigError, match="cannot forget exactly"):
        forget_users(weighted, _forgotten_ids(train, 2), method="exact")
