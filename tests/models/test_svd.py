import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.errors import ConfigError, DataWarning
from lmrec.models import create_model
from lmrec.models.svd import PureSVD
from lmrec.testing import RecommenderContract, checkerboard


class TestPureSVDContract(RecommenderContract):
    def make_model(self):
        return PureSVD(factors=4, seed=3)


def _random_dataset(n_users=60, n_items=40, density=0.2, seed=11) -> Dataset:
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    frame = pd.DataFrame(
        {
            "user": [f"u{x:02d}" for x in u],
            "item": [f"i{x:02d}" for x in i],
            "weight": rng.uniform(1.0, 5.0, len(u)),
        }
    )
    return Dataset.from_frame(frame)


def test_matches_dense_svd_projection():
    data = _random_dataset()
    f = 6
    model = PureSVD(factors=f).fit(data)
    x = (data.matrix.toarray() > 0).astype(np.float64)  # weights are binarised
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    v = vt[:f].T
    np.testing.assert_allclose(np.abs(model.item_factors_), np.abs(v), atol=1e-4)
    np.testing.assert_allclose(model.score(data.user_ids.ids), x @ v @ v.T, atol=1e-4)
    # Sign convention: the largest-magnitude entry of each factor is positive.
    pivot = np.abs(model.item_factors_).argmax(axis=0)
    assert (model.item_factors_[pivot, np.arange(f)] > 0).all()


def test_same_seed_gives_identical_factors_and_other_seeds_the_same_subspace():
    data = _random_dataset()
    a = PureSVD(factors=5, seed=1).fit(data).item_factors_
    b = PureSVD(factors=5, seed=1).fit(data).item_factors_
    c = PureSVD(factors=5, seed=2).fit(data).item_factors_
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(c, a, atol=1e-4)  # signs fixed, so equal up to round-off


def test_fold_in_equals_training_user_scores():
    data = _random_dataset()
    model = PureSVD(factors=5).fit(data)
    user = data.user_ids.ids[7]
    history = data.to_frame().query("user == @user")["item"].tolist()
    folded = model.recommend_for_items(history, k=5)
    known = model.recommend([user], k=5)
    assert folded["item"].tolist() == known["item"].tolist()
    np.testing.assert_allclose(folded["score"], known["score"], rtol=1e-5)


def test_bad_params_are_clear():
    with pytest.raises(ConfigError, match="factors: Input should be greater than or equal to 1"):
        PureSVD(factors=0)
    with pytest.raises(ConfigError, match="seed"):
        create_model("svd", {"seed": -1})
    with pytest.raises(ConfigError, match="Valid parameters: factors, seed"):
        create_model("svd", {"rank": 8})


def test_more_factors_than_the_data_has_keeps_them_all():
    data = checkerboard(n_users=40, n_items=30)
    with pytest.warns(DataWarning, match="keeping all 30 factors"):
        model = PureSVD(factors=64).fit(data)
    assert model.item_factors_.shape == (30, 30)
    x = (data.matrix.toarray() > 0).astype(np.float64)
    np.testing.assert_allclose(model.score(data.user_ids.ids), x, atol=1e-4)  # X V V^T = X


@pytest.mark.realdata
def test_beats_popularity_on_ml100k(fit_and_evaluate, popularity_summary):
    # Measured on the seed-2026 per-user 80/20 split with factors=20:
    #   PureSVD     ndcg@10 0.4303  recall@20 0.3484
    #   popularity  ndcg@10 0.2183  recall@20 0.1753
    # factors sweep (ndcg@10): 10 0.416, 20 0.430, 32 0.405, 50 0.374, 64 (default) 0.340,
    # 100 0.290 -- on a data set this small, few factors are best (Cremonesi et al. 2010).
    got = fit_and_evaluate(PureSVD(factors=20))
    assert got["ndcg@10"] > 0.8 * 0.4303
    assert got["recall@20"] > 0.8 * 0.3484
    assert got["ndcg@10"] > 1.5 * popularity_summary["ndcg@10"]


@pytest.mark.realdata
def test_star_wars_fan_gets_sci_fi_and_adventure(ml100k, star_wars_fan_check):
    # Measured: 7 of the top 10 are Sci-Fi or Adventure.
    assert star_wars_fan_check(PureSVD(factors=20).fit(ml100k)) >= 3
