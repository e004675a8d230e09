"""Rating models: contract on a rated checkerboard, hand-computed baselines, similarities and
predictions, clear errors on implicit data, and RMSE floors on real MovieLens-100K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmrec.data import Dataset
from lmrec.errors import ConfigError
from lmrec.eval.ratings import evaluate_ratings
from lmrec.models import create_model
from lmrec.models.ratings import BiasedMF, KNNBaseline, fit_baselines
from lmrec.testing import RecommenderContract, checkerboard, rated_checkerboard


class _RatedContract(RecommenderContract):
    def data(self) -> Dataset:
        return rated_checkerboard()

    def test_refit_equals_single_fit(self):
        data = self.data()
        once = self.make_model().fit(data)
        other = Dataset.from_frame(
            pd.DataFrame(
                {"user": ["x", "y", "y"], "item": ["i0", "i1", "i2"], "rating": [1.0, 2.0, 3.0]}
            )
        )
        twice = self.make_model().fit(other).fit(data)
        np.testing.assert_allclose(
            once.score(["u0", "u3"]), twice.score(["u0", "u3"]), atol=self.atol
        )


class TestBiasedMFContract(_RatedContract):
    def make_model(self):
        return BiasedMF(factors=4, iterations=5, l2=0.05, seed=0)


class TestKNNBaselineContract(_RatedContract):
    def make_model(self):
        return KNNBaseline(k_neighbors=10, shrinkage=0.0)


def test_baselines_by_hand():
    # Ratings: a: x=5, y=3; b: x=4. mu = 4. With no penalty the fixed point is exact.
    r = sp.csr_matrix(np.array([[5.0, 3.0], [4.0, 0.0]]))
    mu, b_u, b_i = fit_baselines(r, reg_user=0.0, reg_item=0.0, iterations=200)
    assert mu == pytest.approx(4.0)
    fitted = mu + b_u[[0, 0, 1]] + b_i[[0, 1, 0]]
    np.testing.assert_allclose(fitted, [5.0, 3.0, 4.0], atol=1e-6)


def test_pearson_similarity_and_prediction_by_hand():
    # Items x, y, z. x and y move together over users a, b, c; z is rated by a only.
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b", "c", "c"],
            "item": ["x", "y", "z", "x", "y", "x", "y"],
            "rating": [5.0, 4.0, 3.0, 1.0, 2.0, 3.0, 3.0],
        }
    )
    model = KNNBaseline(similarity="pearson", shrinkage=0.0).fit(Dataset.from_frame(frame))
    # Item means: x 3, y 3; centred x = (2, -2, 0), y = (1, -1, 0): correlation 1.
    x, y, z = model.item_ids_.index(["x", "y", "z"])
    assert model.similarity_[x, y] == pytest.approx(1.0)
    assert model.similarity_[x, z] == 0.0  # one common user: below min support of 2
    # Prediction for (b, y): baseline + s_xy * residual of (b, x) / s_xy.
    mu, b_u, b_i = model.mean_, model.user_bias_, model.item_bias_
    b = model.user_ids_.index(["b"])[0]
    resid_bx = 1.0 - (mu + b_u[b] + b_i[x])
    expected = mu + b_u[b] + b_i[y] + resid_bx
    assert model.predict_ratings([b], [y])[0] == pytest.approx(max(1.0, expected), rel=1e-5)


def test_biasedmf_fits_a_rank_one_matrix():
    rng = np.random.default_rng(0)
    u, v = rng.uniform(1, 2, 30), rng.uniform(1, 2, 20)
    full = np.outer(u, v)
    rows, cols = np.nonzero(rng.random(full.shape) < 0.6)
    frame = pd.DataFrame(
        {"user": rows.astype(str), "item": cols.astype(str), "rating": full[rows, cols]}
    )
    model = BiasedMF(factors=2, l2=1e-4, l2_bias=0.0, iterations=30).fit(Dataset.from_frame(frame))
    pred = model.predict_ratings(
        model.user_ids_.index(rows.astype(str)), model.item_ids_.index(cols.astype(str))
    )
    assert np.sqrt(np.mean((pred - full[rows, cols]) ** 2)) < 0.02


def test_implicit_data_gets_a_clear_message():
    with pytest.raises(ConfigError, match="needs a 'rating' column"):
        BiasedMF().fit(checkerboard())
    ease = create_model("ease", {"l2": 10.0}).fit(checkerboard())
    with pytest.raises(ConfigError, match="ranks items without predicting ratings.*biasedmf"):
        evaluate_ratings(ease, rated_checkerboard())
    model = BiasedMF(factors=2, iterations=2).fit(rated_checkerboard())
    with pytest.raises(ConfigError, match="no 'rating' column"):
        evaluate_ratings(model, checkerboard())


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "floor"), [("biasedmf", 0.93), ("knnbaseline", 0.94)])
def test_rmse_on_movielens(ml100k_split, name, floor):
    split = ml100k_split
    model = create_model(name).fit(split.train.concat(split.valid))
    result = evaluate_ratings(model, split.test)
    assert result.summary["rmse"] < floor
    assert result.summary["mae"] < result.summary["rmse"]


def test_pointwise_metrics_where_the_inputs_allow():
    from lmrec.eval.pointwise import auc
    from lmrec.eval.ratings import _auc_fast, evaluate_pointwise

    rng = np.random.default_rng(0)
    y, s = rng.random(50) < 0.3, np.round(rng.random(50), 1)  # ties on purpose
    assert _auc_fast(y, s) == pytest.approx(auc(y, s))

    def split(data):
        rows = data.to_frame().groupby("user").tail(3).index.to_numpy()
        return data.subset(np.setdiff1d(np.arange(data.n_interactions), rows)), data.subset(rows)

    train, test = split(checkerboard())
    ease = create_model("ease", {"l2": 10.0}).fit(train)
    ranked = evaluate_pointwise(ease, test, metrics=["auc"])
    assert ranked.n_users == 40
    # u0's AUC by hand: its test items against every other item it has not seen in train.
    scores = ease.score(["u0"])[0]
    unseen = ~np.isin(
        ease.item_ids_.lookup(np.arange(30)), train.to_frame().query("user == 'u0'")["item"]
    )
    positive = np.isin(
        ease.item_ids_.lookup(np.arange(30)), test.to_frame().query("user == 'u0'")["item"]
    )
    assert ranked.per_user.loc["u0", "auc"] == pytest.approx(auc(positive[unseen], scores[unseen]))
    for metric, words in (
        ("f1", "ranks items without predicting"),
        ("rmse", "ranks items"),
        ("log_loss", "needs predicted probabilities"),
    ):
        with pytest.raises(ConfigError, match=words):
            evaluate_pointwise(ease, test, metrics=[metric])
    train, test = split(rated_checkerboard())
    mf = BiasedMF(factors=4, iterations=10, l2=0.05).fit(train)
    rated = evaluate_pointwise(mf, test, metrics=["rmse", "mae", "auc", "f1"])
    assert list(rated.summary) == ["rmse", "mae", "auc", "f1"]
    assert 0 <= rated.summary["f1"] <= 1 and rated.summary["auc"] > 0.5
