"""The recommender contract on the LM ranker and the retrieve-rerank pipeline.

Both read item titles in their prompts, so the checkerboard's titles name each item's
group ("even film 4"), as a catalog would; a tiny LoRA ranker (1 layer, short prompts)
learns it in a few dozen steps. The read-only checks share one fit per class to keep
the suite fast; the checks about fitting (same seed, refit, exclusion, prefixes) fit
afresh as the contract does.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.data import Dataset
from lmrec.testing import RecommenderContract, checkerboard
from tests.conftest import SEED

pytest.importorskip("peft")

TINY = {
    "n_layers": 1,
    "max_length": 32,
    "batch_size": 16,
    "max_examples": 400,
    "warmup_steps": 1,
    "n_history": 5,
    "n_threads": 2,
    "max_steps": 40,
    "lr": 1e-2,
    "target_modules": ["query", "key", "value", "dense"],
    "lora_r": 16,
    "seed": SEED,
}


def titled_checkerboard() -> Dataset:
    """The contract's checkerboard with titles that name the item's group."""
    base = checkerboard()
    items = base.items.copy()
    items["title"] = [
        f"{'even' if int(i[1:]) % 2 == 0 else 'odd'} film {i[1:]}" for i in items.index
    ]
    return Dataset.from_frame(base.to_frame()[["user", "item"]], items=items, name="checkerboard")


class _SharedFit(RecommenderContract):
    """One fit shared by the checks that only read the fitted model."""

    atol = 1e-4  # prompts are padded per batch: a batch and a single row differ by ~1e-6
    _shared = None

    def data(self):
        return titled_checkerboard()

    def fitted(self):
        cls = type(self)
        if cls._shared is None:
            cls._shared = self.make_model().fit(self.data())
        return cls._shared

    def test_same_seed_same_model(self):
        a, b = self.fitted(), self.make_model().fit(self.data())
        np.testing.assert_allclose(a.score(["u0", "u1"]), b.score(["u0", "u1"]), atol=self.atol)


class TestLMRankerContract(_SharedFit):
    def make_model(self):
        from lmrec.ranker.model import LMRanker

        return LMRanker(**TINY)


class TestPipelineContract(_SharedFit):
    def make_model(self):
        from lmrec.ranker.pipeline import RetrieveRerank

        return RetrieveRerank(n_candidates=8, retriever_params={"l2": 10.0}, ranker_params=TINY)


def test_new_user_prompt_is_the_known_users_prompt_without_attributes():
    """A known user's items given as a new user's list are scored from the same prompt,
    minus the attributes and like marks the known user's prompt has."""
    from lmrec.ranker.model import LMRanker

    model = TestLMRankerContract._shared or LMRanker(**TINY).fit(titled_checkerboard())
    p = model.prompts_
    hist = model.user_history(3)
    assert p.render(hist, p.liked[p.indptr[3] : p.indptr[4]], p.user_texts[3]) == p.context(3)
    as_items = model.score_histories([hist], items=np.array([1, 2]))
    as_user = model.score_candidates(np.array([3]), np.array([[1, 2]]))
    np.testing.assert_allclose(as_items, as_user, atol=1e-5)  # no attributes, no ratings here


def test_pipeline_scores_of_some_items_are_its_full_scores():
    """``score_histories(items=...)`` scores only what it must, and agrees with the full
    scores: for candidates and for items below them (in the retriever's order)."""
    from lmrec.ranker.pipeline import RetrieveRerank

    model = TestPipelineContract._shared or RetrieveRerank(
        n_candidates=8, retriever_params={"l2": 10.0}, ranker_params=TINY
    ).fit(titled_checkerboard())
    hist = model.user_history(2)[:4]
    full = model.score_histories([hist])
    assert np.isfinite(full[0, np.setdiff1d(np.arange(model.n_items), hist)]).all()
    order = np.argsort(-full[0])
    asked = np.array([order[0], order[12], order[20]])  # a candidate and two below them
    np.testing.assert_allclose(
        model.score_histories([hist], items=asked), full[:, asked], rtol=1e-5, atol=1e-5
    )
