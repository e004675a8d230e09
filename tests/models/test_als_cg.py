"""lmrec's numba CG half-step (lmrec.models.als_cg) against implicit's row-by-row CG."""

import numpy as np
import pytest
import scipy.sparse as sp

from lmrec.errors import MissingExtraError
from lmrec.models import als_cg
from lmrec.models.als import ALS
from lmrec.testing import checkerboard

pytest.importorskip("numba")


def _problem(n_users=300, n_items=70, density=0.08, seed=0, k=16):
    rng = np.random.default_rng(seed)
    m = sp.random(
        n_users, n_items, density=density, format="csr", random_state=seed, dtype=np.float32
    )
    m.data = (1.0 + 5.0 * rng.random(m.nnz)).astype(np.float32)  # confidences in [1, 6)
    m = m.tocsc()
    m[:, [3, 40]] = 0  # two items without interactions
    m = m.tocsr()
    m.eliminate_zeros()
    x = rng.random((n_users, k), dtype=np.float32)
    y = rng.random((n_items, k), dtype=np.float32) * 0.01
    return m.T.tocsr(), y, x  # item-major: solve the items' near-zero factors


def _implicit_half(matrix, factors, other, reg, cg_steps=3):
    from implicit.cpu import _als

    factors = factors.copy()
    _als.least_squares_cg(matrix, factors, other, reg, num_threads=1, cg_steps=cg_steps)
    return factors


@pytest.mark.parametrize("cg_steps", [1, 3, 8])
def test_one_half_step_equals_implicits_cg(cg_steps):
    m, y, x = _problem()
    want = _implicit_half(m, y, x, 0.1, cg_steps)
    got = y.copy()
    als_cg.solve_rows(m, got, x, 0.1, cg_steps=cg_steps, num_threads=2)
    # Same iteration, only the order of float32 sums differs (more steps drift a little more).
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert np.abs(want - y).max() > 0.02  # a real update of the near-zero start
    np.testing.assert_array_equal(got[[3, 40]], 0.0)  # implicit zeroes empty rows too


def test_rows_longer_than_the_buffer_read_the_table(monkeypatch):
    m, y, x = _problem(density=0.3)
    # A buffer of 90 vectors: rows of more pairs (about half) take the unbuffered path.
    monkeypatch.setattr(als_cg, "_BUFFER_BYTES", 90 * 4 * x.shape[1])
    lengths = np.diff(m.indptr)
    assert (lengths > 90).sum() > 10 and (lengths[lengths > 0] <= 90).sum() > 10
    got = y.copy()
    als_cg.solve_rows(m, got, x, 0.1, num_threads=2)
    np.testing.assert_allclose(got, _implicit_half(m, y, x, 0.1), rtol=1e-3, atol=1e-4)


def test_converged_rows_stay_put_and_threads_do_not_change_the_result():
    m, y, x = _problem(seed=4)
    solved = _implicit_half(m, y, x, 0.5, cg_steps=60)  # converged: residual below 1e-20
    again = solved.copy()
    als_cg.solve_rows(m, again, x, 0.5, cg_steps=3, num_threads=2)
    np.testing.assert_allclose(again, solved, atol=1e-5)
    one, two = y.copy(), y.copy()
    als_cg.solve_rows(m, one, x, 0.1, num_threads=1)
    als_cg.solve_rows(m, two, x, 0.1, num_threads=2)
    np.testing.assert_array_equal(one, two)


def test_bad_arguments_are_refused():
    m, y, x = _problem()
    with pytest.raises(ValueError, match="shapes disagree"):
        als_cg.solve_rows(m, y, x[:-1], 0.1)
    with pytest.raises(ValueError, match="shapes disagree"):
        als_cg.solve_rows(m, y[:, :4].copy(), x, 0.1)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        als_cg.solve_rows(m, y.astype(np.float64), x, 0.1)


@pytest.mark.parametrize("shape", [(240, 40), (40, 240)])
def test_numba_fit_matches_implicits(shape):
    data = checkerboard(n_users=shape[0], n_items=shape[1], density=0.3, seed=2)
    kw = dict(factors=8, iterations=4, l2=0.1, alpha=5.0, n_threads=2, seed=3)
    ref = ALS(solver="implicit", **kw).fit(data)
    got = ALS(solver="numba", **kw).fit(data)
    assert (got.solver_, ref.solver_) == ("numba", "implicit")
    assert len(got.iteration_seconds_) == 4
    # Same initial factors and sweeps. A 3-step CG from a warm start is sensitive to the
    # order of float32 sums, so after several sweeps the models are compared by their
    # scores and top lists, not factor by factor.
    ref_scores = ref.user_factors_ @ ref.item_factors_.T
    scores = got.user_factors_ @ got.item_factors_.T
    assert np.corrcoef(scores.ravel(), ref_scores.ravel())[0, 1] > 0.998
    assert np.abs(scores - ref_scores).mean() < 0.02 * np.abs(ref_scores).max()
    users = np.arange(data.n_users)
    ids, ref_ids = got.recommend_indices(users, 5)[0], ref.recommend_indices(users, 5)[0]
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, ref_ids, strict=True)]) > 0.9


def test_numba_fits_are_bitwise_equal_for_any_thread_count():
    data = checkerboard(n_users=120, n_items=60, density=0.3, seed=5)
    kw = dict(factors=8, iterations=3, solver="numba", seed=1)
    one = ALS(n_threads=1, **kw).fit(data)
    two = ALS(n_threads=2, **kw).fit(data)
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, two.item_factors_)


def test_auto_uses_numba_when_installed(monkeypatch):
    assert ALS()._uses_numba()
    assert not ALS(solver="implicit")._uses_numba()
    monkeypatch.setattr(als_cg, "available", lambda: False)
    assert not ALS()._uses_numba()  # auto falls back to implicit without numba
    with pytest.raises(MissingExtraError, match=r"lmrec\[fast\]"):
        ALS(solver="numba")._uses_numba()


@pytest.mark.realdata
def test_ml100k_numba_fit_ranks_like_implicit(ml100k):
    from lmrec.data.split import random_split
    from lmrec.eval.protocol import evaluate

    split = random_split(ml100k, ratios=(0.8, 0.2), seed=2026)
    ndcg = {}
    for solver in ("implicit", "numba"):
        model = ALS(n_threads=2, solver=solver).fit(split.train)
        ndcg[solver] = evaluate(model, split.test, metrics=["ndcg@10"]).summary["ndcg@10"]
    assert ndcg["implicit"] >= 0.30
    assert ndcg["numba"] == pytest.approx(ndcg["implicit"], abs=0.005)
