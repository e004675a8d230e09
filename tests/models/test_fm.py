"""The LightFM-style factorization machine: contract, features, cold start, MovieLens-100K."""

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.errors import ConfigError
from lmrec.models import create_model, load_model
from lmrec.models.fm import FactorizationMachine, build_encoders, encode
from lmrec.testing import RecommenderContract, checkerboard

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="the FM needs the torch extra"
)

SEED = 7
# Tiny and fast; n_threads=1 keeps the bitwise same-seed check independent of the
# machine's thread count.
TINY = dict(factors=8, epochs=20, batch_size=128, lr=0.05, l2=1e-3, seed=SEED, n_threads=1)


class TestFMContract(RecommenderContract):
    # Same ridge fold-in as BPR (item bias included): 0.67-0.96 of 24 across seeds on the toy.
    fold_in_floor = 0.75

    def make_model(self):
        return FactorizationMachine(**TINY)


class TestFMWarpFeaturesOnlyContract(RecommenderContract):
    # Items are only their "genres" token (Even/Odd): WARP must still separate the groups.
    def make_model(self):
        return FactorizationMachine(**TINY, use_item_ids=False, loss="warp", n_negatives=5)


def _tiny_with_users() -> Dataset:
    data = checkerboard()
    users = pd.DataFrame(
        {
            "age": np.arange(data.n_users) + 18.0,
            "side": ["even", "odd"] * (data.n_users // 2),
            "tags": ["a|b", "b", None, "c|a"] * (data.n_users // 4),
        },
        index=pd.Index(data.user_ids.ids, name="user"),
    )
    return Dataset(data.interactions, data.user_ids, data.item_ids, items=data.items, users=users)


def test_encoders_bucket_split_and_onehot():
    users = _tiny_with_users().users
    enc = build_encoders(users, ["age", "side", "tags"], 4, "user")
    assert [e["kind"] for e in enc] == ["bucket", "onehot", "multi"]
    assert len(enc[0]["values"]) == 3  # 4 quantile buckets -> 3 inner edges
    assert enc[2]["values"] == ["a", "b", "c"]
    x = encode(users, enc).toarray()
    assert x.shape == (40, 4 + 2 + 3)
    np.testing.assert_allclose(x[:, :4].sum(1), 1.0)  # every age lands in one bucket
    np.testing.assert_allclose(x[0, 6:], [0.5, 0.5, 0.0])  # "a|b": the column's weight is shared
    assert x[2, 6:].sum() == 0  # missing value: no token
    # Unseen values give no token; the encoders survive a JSON round trip unchanged.
    again = json.loads(json.dumps(enc))
    new = pd.DataFrame({"age": [np.nan], "side": ["other"], "tags": ["z|c"]})
    np.testing.assert_allclose(encode(new, again).toarray(), [[0] * 8 + [1.0]])


def test_user_features_train_and_round_trip(tmp_path):
    data = _tiny_with_users()
    model = FactorizationMachine(**TINY, n_buckets=4, user_features=["age", "side", "tags"])
    model.fit(data)
    assert model.user_embeddings_.shape == (40 + 4 + 2 + 3, 8)  # ids, then age, side, tags tokens
    model.save(tmp_path / "fm")
    loaded = load_model(tmp_path / "fm")
    assert loaded.user_encoders_ == model.user_encoders_
    assert loaded.item_encoders_ == model.item_encoders_
    np.testing.assert_array_equal(loaded.score(["u0", "u5"]), model.score(["u0", "u5"]))


def test_training_reduces_the_loss_for_both_losses():
    for loss in ("bpr", "warp"):
        model = FactorizationMachine(**{**TINY, "epochs": 8}, loss=loss, n_negatives=4)
        losses = [h["loss"] for h in model.fit(checkerboard()).history_]
        assert losses[-1] < 0.8 * losses[0], loss


def test_fit_is_bitwise_reproducible():
    a = FactorizationMachine(**TINY).fit(checkerboard())
    b = FactorizationMachine(**TINY).fit(checkerboard())
    np.testing.assert_array_equal(a.item_repr_, b.item_repr_)
    np.testing.assert_array_equal(a.user_repr_, b.user_repr_)


@pytest.mark.parametrize(
    "params",
    [
        {"factors": 0},
        {"lr": -1.0},
        {"loss": "hinge"},
        {"n_buckets": 0},
        {"use_item_ids": False, "item_features": []},
        {"use_user_ids": False},
        {"item_features": ["genres", "genres"]},
        {"item_feature": ["genres"]},
    ],
)
def test_bad_hyperparameters_raise_config_error(params):
    with pytest.raises(ConfigError):
        create_model("fm", params)


def test_unknown_or_missing_feature_columns_fail_clearly():
    with pytest.raises(ConfigError, match="Unknown item_features.*genres"):
        FactorizationMachine(**TINY, item_features=["colour"]).fit(checkerboard())
    with pytest.raises(ConfigError, match="no user attribute table"):
        FactorizationMachine(**TINY, user_features=["age"]).fit(checkerboard())


def test_cold_item_is_scored_from_its_features_alone():
    data = checkerboard()
    keep = data.column("item_idx") != data.item_ids.index(["i4"])[0]
    model = FactorizationMachine(**TINY).fit(data.subset(keep))
    cold = data.item_ids.index(["i4"])[0]
    # The id embedding of an item without interactions stays zero...
    np.testing.assert_array_equal(model.item_embeddings_[cold], 0.0)
    # ...so its representation is its "Even" genre token's, and even users rank it high.
    rep, bias = model.represent_items(data.items.loc[["i4"]])
    np.testing.assert_allclose(model.item_repr_[cold], rep[0], rtol=1e-6)
    scores = model.score(["u0", "u1"], ["i4"])[:, 0]
    assert scores[0] > scores[1]


@pytest.mark.realdata
def test_ml100k_beats_popularity(fit_and_evaluate, popularity_summary):
    # Genres + user age/gender/occupation, 10 epochs, 1 thread. Measured on the seed-2026
    # 80/20 split with the default 20 epochs: NDCG@10 0.393 (genres only 0.391, ids only
    # 0.391) vs popularity 0.218; see the assertion margins for the shorter run here.
    model = FactorizationMachine(
        user_features=["age", "gender", "occupation"], epochs=10, n_threads=1
    )
    summary = fit_and_evaluate(model)
    assert summary["ndcg@10"] > popularity_summary["ndcg@10"] + 0.10
    assert summary["recall@20"] > popularity_summary["recall@20"] + 0.08


@pytest.mark.realdata
def test_ml100k_cold_items_are_ranked_by_genre(ml100k):
    rng = np.random.default_rng(2026)
    cold = rng.choice(ml100k.n_items, size=ml100k.n_items // 10, replace=False)
    train = ml100k.subset(~np.isin(ml100k.column("item_idx"), cold))  # same ids and items table
    model = FactorizationMachine(factors=32, epochs=8, n_threads=1, seed=0).fit(train)
    assert not np.isin(train.column("item_idx"), cold).any()
    np.testing.assert_array_equal(model.item_embeddings_[cold], 0.0)

    genres = ml100k.items["genres"].fillna("").str.split("|")
    hist = train.matrix.tocsr()
    users = np.arange(0, ml100k.n_users, 3)
    scores = model.score(ml100k.user_ids.ids[users], ml100k.item_ids.ids[cold])
    # Centre each cold item's scores over the sampled users: what is left is how much more
    # *this* user likes the item than the average user does (the genre-token biases, which
    # favour e.g. all dramas for everyone, cancel out).
    scores = scores - scores.mean(axis=0)
    wins, n_users = 0, 0
    for row, u in enumerate(users):
        seen = hist.indices[hist.indptr[u] : hist.indptr[u + 1]]
        counts = pd.Series([g for i in seen for g in genres.iloc[i]]).value_counts()
        top, share = counts.index[0], counts.iloc[0] / len(seen)
        if share < 0.5:
            continue  # only users whose history is dominated by one genre
        has_top = np.array([top in genres.iloc[i] for i in cold])
        if has_top.all() or not has_top.any():
            continue
        wins += scores[row, has_top].mean() > scores[row, ~has_top].mean()
        n_users += 1
    # Measured (factors=32, epochs=8): 117 of 126 such users (0.93); uncentred 0.68. An
    # id-only model gives every cold item the same zero score, so it would win for none.
    assert n_users > 50
    assert wins / n_users > 0.8
