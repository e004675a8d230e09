import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.data.synthetic import TOPIC_WORDS, synthetic_interactions
from lmrec.errors import ConfigError


@pytest.fixture(scope="module")
def data():
    return synthetic_interactions(5_000, 2_000, 100_000, seed=2026)


def test_same_seed_same_data_other_seed_differs(data):
    again = synthetic_interactions(5_000, 2_000, 100_000, seed=2026)
    pd.testing.assert_frame_equal(again.interactions, data.interactions)
    pd.testing.assert_frame_equal(again.items, data.items)
    other = synthetic_interactions(5_000, 2_000, 100_000, seed=2027)
    assert not other.interactions.equals(data.interactions)


def test_sizes_ids_and_unique_pairs(data):
    assert isinstance(data, Dataset)
    assert (data.n_users, data.n_items, data.n_interactions) == (5_000, 2_000, 100_000)
    assert data.user_ids.lookup([0, 4_999]).tolist() == ["u0", "u4999"]
    assert data.item_ids.lookup([7]).tolist() == ["i7"]
    f = data.interactions
    assert not f.duplicated(["user_idx", "item_idx"]).any()
    assert (f["weight"] == 1.0).all()
    ts = pd.to_datetime(f["timestamp"], unit="s")
    assert ts.min() >= pd.Timestamp("2020-01-01") and ts.max() < pd.Timestamp("2022-01-01")


def test_power_law_popularity_and_skewed_activity(data):
    counts = np.sort(data.item_counts())[::-1]
    top_share = counts[: len(counts) // 100].sum() / counts.sum()
    # 1% of items get >12% of interactions (measured 0.185; uniform gives ~0.01). The
    # share is below the raw Zipf ~0.45 because no item can have more than n_users pairs.
    assert top_share > 0.12
    flat = synthetic_interactions(5_000, 2_000, 100_000, seed=2026, alpha_items=0.0)
    flat_counts = np.sort(flat.item_counts())[::-1]
    assert flat_counts[: len(flat_counts) // 100].sum() / flat_counts.sum() < 0.03
    users = data.user_counts()
    assert users.max() > 10 * np.median(users)


def test_users_follow_topics(data):
    topic = data.items["topic"].to_numpy()[data.column("item_idx")]
    per_user = pd.crosstab(data.column("user_idx"), topic)
    active = per_user[per_user.sum(axis=1) >= 20]
    top_topic_share = (active.max(axis=1) / active.sum(axis=1)).median()
    assert top_topic_share > 3 / data.items["topic"].nunique()  # uniform tastes: ~1/20


def test_item_text_carries_the_topic(data):
    items = data.items
    assert items["title"].str.len().gt(0).all() and items["text"].str.len().gt(0).all()
    space = items[items["text"].str.contains(r"\bgalaxy\b|\brocket\b")]
    assert (space["topic"] == 0).mean() > 0.9
    first = items.iloc[0]
    own_words = set(TOPIC_WORDS[first["topic"]])
    assert len(own_words & set(first["text"].split())) >= 5
    bare = synthetic_interactions(50, 40, 200, seed=1, with_text=False, n_topics=30)
    assert bare.items.columns.tolist() == ["topic"]
    assert bare.items["topic"].nunique() == 30


def test_bad_arguments_are_clear():
    with pytest.raises(ConfigError, match="'n_users' parameter"):
        synthetic_interactions(0, 10, 10, seed=0)
    with pytest.raises(ConfigError, match="too dense"):
        synthetic_interactions(10, 10, 60, seed=0)
