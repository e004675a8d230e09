"""Text2CF: the shared contract, attribute features, cold-start items on real MovieLens-100K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.models.text2cf import Text2CF, item_attributes
from lmrec.testing import RecommenderContract, checkerboard


class TestText2CFContract(RecommenderContract):
    def make_model(self):
        return Text2CF(cf_l2=10.0, l2=1.0)


class TestText2CFTextOnlyContract(RecommenderContract):
    def make_model(self):
        return Text2CF(cf_l2=10.0, l2=1.0, attribute_weight=0.0)


def test_needs_item_table():
    data = Dataset.from_frame(pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}))
    with pytest.raises(ConfigError, match="--items items.csv"):
        Text2CF().fit(data)


def test_item_attributes_one_hot_and_bins():
    items = pd.DataFrame(
        {
            "title": ["a", "b", "c", "d"],
            "genres": ["X|Y", "Y", None, "Z"],
            "year": [1990.0, 2000.0, np.nan, 2010.0],
        }
    )
    attrs = item_attributes(items, n_bins=2, max_categories=3)
    # title: 4 distinct values > 3, ignored; genres: X, Y, Z; year: 2 bins, NaN in none
    assert attrs.shape == (4, 3 + 2)
    # within max_categories, a column of distinct values names items: ignored too
    np.testing.assert_array_equal(item_attributes(items, n_bins=2, max_categories=10), attrs)
    np.testing.assert_array_equal(attrs[:, :3], [[1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]])
    assert attrs[2, 3:].sum() == 0 and (attrs[[0, 1, 3], 3:].sum(axis=1) == 1).all()


def test_catalog_only_item_is_scored_from_its_text():
    data = checkerboard()
    items = pd.concat(
        [
            data.items,
            pd.DataFrame(
                {"title": ["item 98"], "genres": ["Even"]}, index=pd.Index(["new"], name="item")
            ),
        ]
    )
    data = Dataset.from_frame(data.to_frame(), items=items)
    model = Text2CF(cf_l2=10.0, l2=1.0).fit(data)
    assert np.abs(model.mapping_[data.item_ids.index(["new"])]).sum() == 0  # no CF row
    even = model.score([f"u{i}" for i in range(0, 40, 2)], ["new"]).mean()
    odd = model.score([f"u{i}" for i in range(1, 40, 2)], ["new"]).mean()
    assert even > odd


@pytest.mark.realdata
def test_cold_items_protocol_beats_genre_popularity_and_content(ml100k):
    """Text2CF clearly beats genre popularity and plain text similarity on cold items.

    Measured on cold_start_items_split(item_fraction=0.2, seed=2026), 336 held-out items,
    939 users, Recall@20 / NDCG@20: text2cf 0.3205 / 0.3570 (text only, attribute_weight=0:
    0.2926 / 0.3328); content 0.2760 / 0.3015; GenrePopularity (personalised)
    0.1200 / 0.1111. Defaults chosen on a validation split of train (items held out with
    seed 7: text2cf 0.3790 / 0.3829, content 0.3188 / 0.3021). About 10 s on 2 cores.
    """
    from lmrec.data.split import cold_start_items_split
    from lmrec.eval.coldstart import GenrePopularity, evaluate_cold_items
    from lmrec.models.content import ContentModel

    split = cold_start_items_split(ml100k, item_fraction=0.2, seed=2026)
    t2c = evaluate_cold_items(Text2CF().fit(split.train), split).summary
    content = evaluate_cold_items(ContentModel().fit(split.train), split).summary
    genre = evaluate_cold_items(GenrePopularity().fit(split.train), split).summary
    assert t2c["recall@20"] >= 2.5 * genre["recall@20"]
    assert t2c["ndcg@20"] >= 3.0 * genre["ndcg@20"]
    assert t2c["recall@20"] >= content["recall@20"] + 0.02
    assert t2c["ndcg@20"] >= content["ndcg@20"] + 0.03
