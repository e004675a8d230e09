"""Fixtures for the classic-model tests: a per-user 80/20 split of MovieLens-100K and helpers.

``ml100k`` (the real data set) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

SPLIT_SEED = int(os.environ.get("LMREC_TEST_SEED", "2026"))
STAR_WARS_TITLES = ("Star Wars", "Empire Strikes Back, The", "Return of the Jedi")


@pytest.fixture(scope="session")
def ml100k_80_20(ml100k):
    """Per-user random 80/20 train/test split of MovieLens-100K (seed 2026)."""
    from lmrec.data.split import random_split

    return random_split(ml100k, ratios=(0.8, 0.2), seed=SPLIT_SEED)


def _summary(model, test) -> dict[str, float]:
    from lmrec.eval.protocol import evaluate

    result = evaluate(model, test, metrics=["ndcg@10", "recall@20"], show_progress=False)
    return result.summary


@pytest.fixture(scope="session")
def fit_and_evaluate(ml100k_80_20):
    """``fit_and_evaluate(model)``: fit on the 80/20 train part; NDCG@10 and Recall@20 on test."""

    def run(model) -> dict[str, float]:
        return _summary(model.fit(ml100k_80_20.train), ml100k_80_20.test)

    return run


@pytest.fixture(scope="session")
def popularity_summary(fit_and_evaluate) -> dict[str, float]:
    """The popularity baseline on the 80/20 split (measured: ndcg@10 0.218, recall@20 0.175)."""
    from lmrec.models.popularity import Popularity

    return fit_and_evaluate(Popularity())


@pytest.fixture(scope="session")
def star_wars_ids(ml100k) -> list[object]:
    """External ids of the three original Star Wars films."""
    titles = ml100k.items["title"]
    ids = [titles.index[titles == t][0] for t in STAR_WARS_TITLES]
    assert len(ids) == 3
    return ids


@pytest.fixture(scope="session")
def star_wars_fan_check(ml100k, star_wars_ids):
    """``check(model)``: fold in a Star Wars-only fan; count Sci-Fi/Adventure in the top 10."""

    def check(model) -> int:
        recs = model.recommend_for_items(star_wars_ids, k=10)
        assert len(recs) == 10
        assert not set(recs["item"]) & set(star_wars_ids)
        genres = ml100k.items.loc[list(recs["item"]), "genres"].astype(str)
        return int(np.sum(genres.str.contains("Sci-Fi") | genres.str.contains("Adventure")))

    return check
