import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.errors import ConfigError
from lmrec.models import create_model
from lmrec.models.popularity import Popularity
from lmrec.testing import RecommenderContract


class TestPopularityContract(RecommenderContract):
    def make_model(self):
        return Popularity()

    def test_checkerboard_known_answer(self):
        """Not personalised: every user gets the most-interacted unseen items, ties by index."""
        data = self.data()
        model = self.fitted()
        counts = data.to_frame()["item"].value_counts()
        for user, group in data.to_frame().groupby("user"):
            unseen = counts.drop(group["item"])
            rank = sorted(unseen.index, key=lambda i: (-unseen[i], model.item_ids_.index([i])[0]))
            assert model.recommend([user], k=3)["item"].tolist() == rank[:3]

    def test_fold_in_history(self):
        recs = self.fitted().recommend_for_items(["i0"], k=3)
        assert "i0" not in set(recs["item"])


def test_counts_and_ties_by_index():
    d = Dataset.from_frame(
        pd.DataFrame(
            {"user": ["a", "b", "b", "c", "c", "c"], "item": ["x", "x", "y", "x", "y", "z"]}
        )
    )
    m = Popularity().fit(d)
    np.testing.assert_array_equal(m.scores_, [3, 2, 1])
    recs = m.recommend(["a"], k=5)
    assert recs["item"].tolist() == ["y", "z"]  # x seen; list shorter than k
    assert recs["rank"].tolist() == [1, 2]


def test_half_life_needs_timestamps():
    d = Dataset.from_frame(pd.DataFrame({"user": ["a"], "item": ["x"]}))
    with pytest.raises(ConfigError, match="timestamps"):
        Popularity(half_life_days=7).fit(d)


def test_bad_params_are_clear():
    with pytest.raises(ConfigError, match="Valid parameters: by, half_life_days"):
        create_model("popularity", {"bye": "count"})
    with pytest.raises(ConfigError, match="by"):
        Popularity(by="clicks")
