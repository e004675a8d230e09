"""The streaming CG half-step (lmrec.models.als_stream) against implicit's row-by-row CG."""

import numpy as np
import pytest
import scipy.sparse as sp

from lmrec.errors import MissingExtraError
from lmrec.models import als_stream
from lmrec.models.als import ALS
from lmrec.testing import checkerboard

pytest.importorskip("numba")


def _problem(n_users=300, n_items=70, density=0.08, seed=0, k=16):
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=density, format="csr", random_state=seed,
                  dtype=np.float32)  # fmt: skip
    m.data = (1.0 + 5.0 * rng.random(m.nnz)).astype(np.float32)  # confidences in [1, 6)
    m = m.tocsc()
    m[:, [3, 40]] = 0  # two items without interactions
    m = m.tocsr()
    m.eliminate_zeros()
    x = rng.random((n_users, k), dtype=np.float32)
    y = rng.random((n_items, k), dtype=np.float32) * 0.01
    return m, x, y


def _implicit_half(matrix, x, y, reg, cg_steps=3):
    from implicit.cpu import _als

    y = y.copy()
    _als.least_squares_cg(matrix.T.tocsr(), y, x, reg, num_threads=1, cg_steps=cg_steps)
    return y


@pytest.mark.parametrize("cg_steps", [1, 3, 8])
def test_one_half_step_equals_implicits_cg(cg_steps):
    m, x, y = _problem()
    want = _implicit_half(m, x, y, 0.1, cg_steps)
    got = y.copy()
    als_stream.solve_streaming(m, x, got, 0.1, cg_steps=cg_steps, num_threads=2)
    # Same iteration, only the order of float32 sums differs (more steps drift a little more).
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert np.abs(want - y).max() > 0.02  # a real update of the near-zero start
    np.testing.assert_array_equal(got[[3, 40]], 0.0)  # implicit zeroes empty rows too


def test_converged_rows_stay_put_and_runs_are_bitwise_repeatable():
    m, x, y = _problem(seed=4)
    solved = _implicit_half(m, x, y, 0.5, cg_steps=60)  # converged: residual below 1e-20
    again = solved.copy()
    als_stream.solve_streaming(m, x, again, 0.5, cg_steps=3, num_threads=2)
    np.testing.assert_allclose(again, solved, atol=1e-5)
    a, b = y.copy(), y.copy()
    for out in (a, b):
        als_stream.solve_streaming(m, x, out, 0.1, num_threads=2)
    np.testing.assert_array_equal(a, b)


def test_bad_arguments_are_refused():
    m, x, y = _problem()
    with pytest.raises(ValueError, match="shapes disagree"):
        als_stream.solve_streaming(m, x[:-1], y, 0.1)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        als_stream.solve_streaming(m, x, y.astype(np.float64), 0.1)


def test_popularity_order_ranks_columns_by_count():
    m = sp.csr_matrix(np.array([[1, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]], np.float32))
    order, rank = als_stream.popularity_order(m)
    np.testing.assert_array_equal(order, [3, 2, 0, 1])
    np.testing.assert_array_equal(rank[order], np.arange(4))


@pytest.mark.parametrize("shape", [(240, 40), (40, 240)])  # users or items as the larger side
def test_streamed_als_fit_matches_implicits(shape):
    data = checkerboard(n_users=shape[0], n_items=shape[1], density=0.3, seed=2)
    kw = dict(factors=8, iterations=4, regularization=0.1, alpha=5.0, num_threads=2, seed=3)
    ref = ALS(solver="implicit", **kw).fit(data)
    got = ALS(solver="stream", **kw).fit(data)
    assert len(got.iteration_seconds_) == 4
    # Same initial factors and sweeps. A 3-step CG from a warm start is sensitive to the
    # order of float32 sums (the streamed fit with 1 and 2 threads differs as much), so
    # the models are compared by their scores and top lists, not factor by factor.
    ref_scores = ref.user_factors_ @ ref.item_factors_.T
    scores = got.user_factors_ @ got.item_factors_.T
    assert np.corrcoef(scores.ravel(), ref_scores.ravel())[0, 1] > 0.998
    assert np.abs(scores - ref_scores).mean() < 0.02 * np.abs(ref_scores).max()
    users = np.arange(data.n_users)
    ids, ref_ids = got.recommend_indices(users, 5)[0], ref.recommend_indices(users, 5)[0]
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, ref_ids, strict=True)]) > 0.9


def test_auto_streams_only_when_the_larger_side_dwarfs_the_smaller(monkeypatch):
    model = ALS(num_threads=2)
    assert model._streams((1000, 100)) and model._streams((100, 1000))
    assert not model._streams((150, 100))
    assert not ALS(solver="implicit")._streams((1000, 100))
    monkeypatch.setattr(als_stream, "available", lambda: False)
    assert not model._streams((1000, 100))  # auto falls back to implicit without numba
    with pytest.raises(MissingExtraError, match=r"lmrec\[fast\]"):
        ALS(solver="stream")._streams((1000, 100))


@pytest.mark.realdata
def test_ml100k_streamed_fit_ranks_like_implicit(ml100k):
    from lmrec.data.split import random_split
    from lmrec.eval.protocol import evaluate

    split = random_split(ml100k, ratios=(0.8, 0.2), seed=2026)
    ndcg = {}
    for solver in ("implicit", "stream"):
        model = ALS(num_threads=2, solver=solver).fit(split.train)
        ndcg[solver] = evaluate(model, split.test, metrics=["ndcg@10"]).summary["ndcg@10"]
    assert ndcg["implicit"] >= 0.30
    assert ndcg["stream"] == pytest.approx(ndcg["implicit"], abs=0.005)
