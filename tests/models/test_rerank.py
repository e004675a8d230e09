"""The re-ranking wrapper: the model contract for each method, hand-computed greedy orders,
validation at construction, and the calibration target on real MovieLens-100K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.errors import ConfigError
from lmrec.models import create_model
from lmrec.models.rerank import Rerank
from lmrec.testing import RecommenderContract


class TestCalibratedContract(RecommenderContract):
    def make_model(self):
        return Rerank(base_params={"l2": 10.0}, trade_off=0.3, n_candidates=12)


class TestMMRContract(RecommenderContract):
    def make_model(self):
        return Rerank(base_params={"l2": 10.0}, method="mmr", trade_off=0.1, n_factors=4)


class TestExposureContract(RecommenderContract):
    def make_model(self):
        return Rerank(base_model="itemknn", method="exposure", trade_off=0.1, n_candidates=8)


def _tiny() -> Dataset:
    """Popularity i0: 4, i1: 3, i2: 1; genres i0 A, i1 A, i2 B, h A, g B."""
    rows = [
        ("a", "i0"),
        ("b", "i0"),
        ("c", "i0"),
        ("d", "i0"),
        ("a", "i1"),
        ("b", "i1"),
        ("c", "i1"),
        ("a", "i2"),
        ("a", "h"),
        ("b", "g"),
    ]
    items = pd.DataFrame(
        {"genres": ["A", "A", "B", "A", "B"]}, index=pd.Index(["i0", "i1", "i2", "h", "g"])
    )
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item"]), items=items)


@pytest.mark.parametrize(
    ("params", "order"),
    [
        # lambda 0: the base order. Relevance after min-max: i0 1, i1 2/3, i2 0.
        ({"method": "calibrated", "trade_off": 0.0}, ["i0", "i1", "i2"]),
        # Calibrated sets of 2, history {h: A, g: B}, p = (1/2, 1/2): the start set {i0, i1}
        # has KL 1.9585 (q = (1, 0)); swapping i1 for i2 makes it 0 and costs 2/3 relevance:
        # worth it at 0.5 (-1/3 + 0.979 > 0), not at 0.2 (-0.533 + 0.392 < 0).
        ({"method": "calibrated", "trade_off": 0.5, "depth": 2}, ["i0", "i2", "i1"]),
        ({"method": "calibrated", "trade_off": 0.2, "depth": 2}, ["i0", "i1", "i2"]),
        # MMR on genre cosine: i1 after i0 costs 0.5 * 1 > 0.5 * 2/3 - 0 ...
        ({"method": "mmr", "similarity": "attribute", "trade_off": 0.5}, ["i0", "i2", "i1"]),
        # ... but not at lambda 0.2: 0.8 * 2/3 - 0.2 = 0.33 > 0.
        ({"method": "mmr", "similarity": "attribute", "trade_off": 0.2}, ["i0", "i1", "i2"]),
        # Exposure for genre B at 0.6: i2 gets 0.6 > 0.4 * 1; then B's share is 1 (no bonus).
        (
            {
                "method": "exposure",
                "protected_attribute": "genres",
                "protected_group": "B",
                "trade_off": 0.6,
            },
            ["i2", "i0", "i1"],
        ),
    ],
)
def test_greedy_orders_by_hand(params, order):
    model = Rerank(base_model="popularity", n_candidates=3, **params).fit(_tiny())
    recs = model.recommend_for_items([["h", "g"]], k=3)
    assert recs["item"].tolist() == order


def test_config_is_validated_at_construction():
    with pytest.raises(ConfigError, match="Unknown model 'nope'"):
        create_model("rerank", {"base_model": "nope"})
    with pytest.raises(ConfigError, match="base_params for 'ease'"):
        create_model("rerank", {"base_params": {"l3": 1}})
    with pytest.raises(ConfigError, match="trade_off"):
        Rerank(trade_off=1.5)


def test_missing_attribute_and_group_are_named():
    data = _tiny()
    with pytest.raises(ConfigError, match="attribute 'year'.*columns genres"):
        Rerank(base_model="popularity", attribute="year").fit(data)
    with pytest.raises(ConfigError, match="protected_group 'C'.*A, B"):
        Rerank(
            base_model="popularity",
            method="exposure",
            protected_attribute="genres",
            protected_group="C",
        ).fit(data)


@pytest.mark.realdata
def test_calibration_on_movielens(ml100k_split):
    """Calibrated EASE halves miscalibration at a small NDCG cost (issue 22 target)."""
    from lmrec.eval.groups import ItemGroups
    from lmrec.eval.protocol import evaluate

    split = ml100k_split
    train = split.train.concat(split.valid)
    genres = ItemGroups.from_labels(
        train.items["genres"].to_numpy(), separator="|", attribute="genres"
    ).membership
    metrics = ["ndcg@10", "miscalibration@10"]
    base = evaluate(
        create_model("ease", {"l2": 300.0}).fit(train),
        split.test,
        metrics=metrics,
        item_features=genres,
    )
    model = Rerank(base_params={"l2": 300.0}, trade_off=0.7).fit(train)
    calibrated = evaluate(model, split.test, metrics=metrics, item_features=genres)
    kl_cut = 1 - calibrated.summary["miscalibration@10"] / base.summary["miscalibration@10"]
    ndcg_loss = 1 - calibrated.summary["ndcg@10"] / base.summary["ndcg@10"]
    assert kl_cut >= 0.5 and ndcg_loss <= 0.05, (kl_cut, ndcg_loss)
    assert np.isfinite(calibrated.per_user["miscalibration@10"]).mean() > 0.9
