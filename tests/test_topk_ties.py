"""Top-k is a total order (score descending, then item index): deterministic and k-independent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lmrec.ops.topk import dot_topk, select_topk, topk


def reference_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Brute force: sort every row by (-score, item index), drop -inf, pad with -1."""
    out = np.full((len(scores), k), -1, np.int64)
    for r, row in enumerate(scores):
        order = np.lexsort((np.arange(len(row)), -row))
        order = order[np.isfinite(row[order]) | (row[order] > 0)][:k]
        out[r, : len(order)] = order
    return out


def test_ties_at_the_cut_keep_the_lowest_item_indices():
    scores = np.array([[5.0, 1.0, 3.0, 3.0, 3.0, 0.0]], np.float32)
    items, vals = topk(scores, 3)
    assert items.tolist() == [[0, 2, 3]]
    assert vals.tolist() == [[5.0, 3.0, 3.0]]
    assert topk(scores, 2)[0].tolist() == [[0, 2]]


# Small integer scores make ties the rule rather than the exception.
score_blocks = arrays(
    np.float32,
    st.tuples(st.integers(1, 6), st.integers(1, 300)),
    elements=st.integers(-3, 3).map(float) | st.just(-np.inf),
)


@settings(max_examples=300, deadline=None)
@given(score_blocks, st.integers(1, 12), st.integers(1, 20))
def test_topk_is_the_total_order_and_a_prefix_of_longer_lists(scores, k, more):
    short, _ = topk(scores, k)
    long, _ = topk(scores, k + more)
    np.testing.assert_array_equal(short, reference_topk(scores, k))
    np.testing.assert_array_equal(long[:, :k], short)


@settings(max_examples=200, deadline=None)
@given(score_blocks, st.integers(1, 6))
def test_select_topk_agrees_with_topk_on_ties(scores, k):
    wide = np.tile(scores, (1, 40))  # wide enough for the chunked pre-selection
    np.testing.assert_array_equal(select_topk(wide, k)[0], topk(wide, k)[0])


def test_dot_topk_breaks_ties_by_item_index():
    rng = np.random.default_rng(0)
    items = rng.integers(0, 3, size=(2000, 4)).astype(np.float32)
    queries = rng.integers(0, 3, size=(50, 4)).astype(np.float32)
    want = reference_topk(queries @ items.T, 10)
    for threads in (1, 2):
        got, _ = dot_topk(queries, items, 10, n_threads=threads)
        np.testing.assert_array_equal(got, want)


@pytest.mark.realdata
def test_popularity_ndcg_does_not_depend_on_other_cutoffs(ml100k_split):
    """ml-100k user 655: items 269 and 328 both scored 248 used to swap with the cut-offs."""
    from lmrec.eval.protocol import evaluate
    from lmrec.models.popularity import Popularity

    model = Popularity().fit(ml100k_split.train)
    alone = evaluate(model, ml100k_split.test, metrics=["ndcg@10"], show_progress=False)
    both = evaluate(model, ml100k_split.test, metrics=["ndcg@10", "ndcg@20"], show_progress=False)
    assert alone.summary["ndcg@10"] == both.summary["ndcg@10"]
    top10 = model.recommend(["655"], k=10)["item"].tolist()
    assert model.recommend(["655"], k=20)["item"].tolist()[:10] == top10
