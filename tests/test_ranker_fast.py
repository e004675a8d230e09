"""The LM ranker at serving speed: cached token ids and the ONNX Runtime scorer (issue 18.3)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SEED

pytest.importorskip("peft")
pytest.importorskip("onnxruntime")

FAST = {
    "n_layers": 1,
    "max_length": 64,
    "batch_size": 8,
    "max_examples": 300,
    "warmup_steps": 1,
    "n_history": 5,
    "seed": SEED,
    "side_features": True,
}


@pytest.fixture(scope="module")
def pipeline(ml100k):
    from lmrec.ranker.pipeline import RetrieveRerank

    small = ml100k.subset(ml100k.column("user_idx") < 40, name="ml-small")
    params = dict(FAST, lr=3e-3, max_steps=12)
    return RetrieveRerank(
        n_candidates=20, retriever_params={"l2": 100.0}, ranker_params=params
    ).fit(small)


def test_cached_pairs_equal_the_tokenizers_pair_encoding(pipeline):
    from lmrec.ranker.fast import TokenCache

    ranker = pipeline.ranker_
    cache = TokenCache(ranker._tokenizer, ranker.prompts_)
    users = np.array([0, 0, 3, 7, 12])
    items = np.array([5, 9, 1, 40, 2])
    ctx, cand = ranker.prompts_.pairs(users, items)
    for max_length in (40, 64, 512):  # the tokenizer refuses lengths that cut an item
        ref = ranker._tokenizer(ctx, cand, truncation="only_first", max_length=max_length)
        pairs = [
            cache.pair(c, t, max_length)
            for c, t in zip(cache.contexts(users), cache.items(items), strict=True)
        ]
        assert pairs == ref["input_ids"]
        split = [len(p) - len(t) - 1 for p, t in zip(pairs, cache.items(items), strict=True)]
        batch = cache.batch(pairs, split)
        for row, want in enumerate(ref["token_type_ids"]):
            assert batch["token_type_ids"][row, : len(want)].tolist() == want


def test_onnx_scores_match_torch_float32_and_int8_tracks_them(pipeline):
    from lmrec.ranker.fast import OnnxScorer

    users = np.arange(12)
    cand = pipeline.candidates(users)
    ok = cand >= 0
    torch_scores = pipeline.ranker_.score_candidates(users, cand)
    f32 = OnnxScorer.from_ranker(pipeline.ranker_, int8=False).score_candidates(users, cand)
    assert np.array_equal(np.isfinite(f32), ok)
    np.testing.assert_allclose(f32[ok], torch_scores[ok], rtol=1e-3, atol=1e-3)
    i8 = OnnxScorer.from_ranker(pipeline.ranker_, int8=True).score_candidates(users, cand)
    assert np.corrcoef(torch_scores[ok], i8[ok])[0, 1] > 0.98


def test_pipeline_with_onnx_engine_saves_loads_and_ranks_like_torch(pipeline, tmp_path):
    from lmrec.models import load_model

    users = pipeline.user_ids_.ids[:5]
    torch_recs = pipeline.recommend(users, k=10)
    pipeline.config = pipeline.config.model_copy(update={"engine": "onnx", "int8": False})
    pipeline._scorer = None
    try:
        onnx_recs = pipeline.recommend(users, k=10)
        pipeline.save(tmp_path / "pipe")
    finally:
        pipeline.config = pipeline.config.model_copy(update={"engine": "torch"})
        pipeline._scorer = None
    assert onnx_recs[["user", "item"]].equals(torch_recs[["user", "item"]])
    loaded = load_model(tmp_path / "pipe")
    assert loaded.config.engine == "onnx"
    again = loaded.recommend(users, k=10)
    assert again[["user", "item", "rank"]].equals(onnx_recs[["user", "item", "rank"]])


def test_short_max_length_is_validated(pipeline):
    from lmrec.errors import ConfigError
    from lmrec.ranker.fast import OnnxScorer, TokenCache

    ranker = pipeline.ranker_
    with pytest.raises(ConfigError, match="max_length"):
        OnnxScorer(None, TokenCache(ranker._tokenizer, ranker.prompts_), ranker, max_length=4)


@pytest.fixture(scope="module")
def one_way(ml100k):
    from lmrec.ranker.pipeline import RetrieveRerank

    small = ml100k.subset(ml100k.column("user_idx") < 40, name="ml-small")
    params = dict(
        FAST, lr=3e-3, max_steps=12, shared_context=True, max_length=40, max_item_length=12
    )
    return RetrieveRerank(
        n_candidates=20, retriever_params={"l2": 100.0}, ranker_params=params
    ).fit(small)


def test_packed_scoring_equals_each_pair_under_the_one_way_mask(one_way):
    from lmrec.ranker.fast import OnnxScorer

    users = np.arange(12)
    cand = one_way.candidates(users)
    cand[3, 5:] = -1  # users with different numbers of candidates share a batch
    ok = cand >= 0
    pairs = one_way.ranker_.score_candidates(users, cand)  # torch, one pair per forward pass
    packed = OnnxScorer.from_ranker(one_way.ranker_, int8=False).score_candidates(users, cand)
    assert np.array_equal(np.isfinite(packed), ok)
    np.testing.assert_allclose(packed[ok], pairs[ok], rtol=1e-3, atol=1e-3)
    i8 = OnnxScorer.from_ranker(one_way.ranker_, int8=True).score_candidates(users, cand)
    assert np.corrcoef(pairs[ok], i8[ok])[0, 1] > 0.98


def test_context_does_not_see_the_candidate(one_way):
    ranker = one_way.ranker_
    ctx, _ = ranker.prompts_.pairs(np.array([0, 0]), np.array([1, 2]))
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        # identical contexts, different items: the context tokens' states are identical,
        # so the two pooled vectors differ only through the items' own tokens
        a = ranker._pooled(ctx, ["Heat (1995)", "Up (2009)"])
        b = ranker._pooled(ctx, ["Heat (1995)", "Jaws (1975)"])
    assert torch.allclose(a[0], b[0], atol=1e-5) and not torch.allclose(a[1], b[1], atol=1e-3)


def test_shared_context_needs_mean_pooling(ml100k):
    from lmrec.errors import ConfigError
    from lmrec.ranker.model import LMRanker

    small = ml100k.subset(ml100k.column("user_idx") < 10, name="ml-tiny")
    with pytest.raises(ConfigError, match="pooling='mean'"):
        LMRanker(**dict(FAST, shared_context=True, pooling="cls", max_steps=1)).fit(small)


@pytest.mark.parametrize("layout", ["pipeline", "one_way"])
def test_onnx_engine_scores_request_time_histories_like_torch(layout, request):
    """New users and sessions (histories given as items) score through ONNX Runtime with
    the pair layout and the packed one, as the torch ranker scores them."""
    import copy

    from lmrec.ranker.histories import History, candidate_logits

    pipe = request.getfixturevalue(layout)
    seqs = [np.array([1, 50, 7]), np.array([100, 3]), np.array([1, 50, 7])]
    grid = np.array([[4, 9, 11, -1], [4, 20, 8, 2], [12, 13, 4, 9]])
    histories = [History.of_items(s) for s in seqs]
    torch_logits = candidate_logits(pipe.ranker_, histories, grid)
    fast = copy.copy(pipe)
    fast.config = pipe.config.model_copy(update={"engine": "onnx", "int8": False})
    fast._scorer = None
    onnx_logits = candidate_logits(fast.ranker_scorer(), histories, grid)
    assert np.array_equal(np.isfinite(onnx_logits), grid >= 0)
    ok = grid >= 0
    np.testing.assert_allclose(onnx_logits[ok], torch_logits[ok], rtol=1e-3, atol=1e-3)
    # the pipeline's own history scoring (what lmrec serve checks at load) runs on it
    exact = copy.copy(pipe)
    exact.config = pipe.config.model_copy(update={"engine": "torch", "int8": False})
    exact._scorer = None
    want, got = exact.score_histories(seqs[:2]), fast.score_histories(seqs[:2])
    assert np.array_equal(np.isfinite(want), np.isfinite(got))
    assert np.corrcoef(want[np.isfinite(want)], got[np.isfinite(got)])[0, 1] > 0.999
