import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmrec.data import Dataset
from lmrec.errors import ConfigError, DataError
from lmrec.models import create_model
from lmrec.models.als import ALS
from lmrec.models.popularity import Popularity
from lmrec.testing import RecommenderContract, checkerboard

SEED = 7


class TestALSContract(RecommenderContract):
    # n_threads=1: the contract's "same seed, same model" check is bitwise, and only a
    # single-threaded implicit fit is promised to be reproducible (see lmrec.models.als).
    def make_model(self):
        return ALS(factors=8, iterations=10, l2=0.1, alpha=5.0, n_threads=1, seed=SEED)


def _implicit_fit(matrix, *, factors, regularization, iterations, seed):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=1.0,
            iterations=iterations,
            use_cg=True,
            calculate_training_loss=False,
            num_threads=1,
            random_state=seed,
        )
        ref.fit(matrix, show_progress=False)
    return ref


def test_scores_equal_implicit_on_the_same_confidence():
    data = checkerboard(n_users=60, n_items=40, seed=3)
    alpha = 4.0
    model = ALS(
        factors=6,
        l2=0.05,
        alpha=alpha,
        iterations=7,
        n_threads=1,
        seed=11,
        solver="implicit",
    )
    model.fit(data)
    # ALS(alpha=a) is implicit(alpha=1) fitted on the confidence 1 + a * R (module docstring).
    conf = data.matrix.copy()
    conf.data = 1.0 + alpha * np.ones_like(conf.data)
    ref = _implicit_fit(conf, factors=6, regularization=0.05, iterations=7, seed=11)
    np.testing.assert_array_equal(model.user_factors_, ref.user_factors)
    np.testing.assert_array_equal(model.item_factors_, ref.item_factors)
    users = np.arange(data.n_users)
    ref_ids, ref_scores = ref.recommend(users, data.matrix, N=5, filter_already_liked_items=True)
    ids, scores = model.recommend_indices(users, 5)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)
    # Ties may be ordered differently; the selected sets agree wherever scores differ.
    assert (ids == ref_ids).mean() > 0.95


def test_alpha_scales_confidence_and_weights_used_when_not_implicit():
    frame = pd.DataFrame(
        {"user": ["a", "a", "b"], "item": ["x", "y", "x"], "weight": [1.0, 3.0, 2.0]}
    )
    data = Dataset.from_frame(frame)
    binary = ALS(alpha=2.0).confidence(data.matrix)
    np.testing.assert_array_equal(binary.data, [3.0, 3.0, 3.0])
    weighted = ALS(alpha=2.0, implicit=False).confidence(data.matrix)
    np.testing.assert_array_equal(weighted.data, [3.0, 7.0, 5.0])
    # The pattern is copied only because implicit needs writable buffers.
    np.testing.assert_array_equal(weighted.indices, data.matrix.indices)
    negative = Dataset.from_frame(frame.assign(weight=[1.0, -1.0, 1.0]))
    with pytest.raises(DataError, match="non-negative"):
        ALS(implicit=False).fit(negative)


def test_multithreaded_fit_matches_single_thread_here():
    # Not promised by implicit (OpenMP scheduling), but each user/item solve only reads
    # the other side's factors, so in practice 0 (all cores) and 1 thread agree exactly.
    # (solver="implicit": this checks implicit's own threads; the numba solver has its own test.)
    data = checkerboard(n_users=200, n_items=60, seed=1)
    one = ALS(factors=8, iterations=5, n_threads=1, solver="implicit").fit(data)
    many = ALS(factors=8, iterations=5, n_threads=0, solver="implicit").fit(data)
    np.testing.assert_allclose(one.user_factors_, many.user_factors_, atol=1e-5)


def test_fold_in_of_a_known_user_matches_fitted_recommendations():
    data = checkerboard(n_users=120, n_items=80, density=0.3, seed=5)
    model = ALS(factors=8, iterations=15, l2=0.1, alpha=5.0, n_threads=1).fit(data)
    users = [f"u{i}" for i in range(30)]
    fitted = model.recommend(users, k=10)
    frame = data.to_frame()
    histories = [frame.loc[frame["user"] == u, "item"].tolist() for u in users]
    folded = model.recommend_for_items(histories, k=10, session_ids=users)
    top = {u: set(g["item"]) for u, g in fitted.groupby("user")}
    top_folded = {u: set(g["item"]) for u, g in folded.groupby("user")}
    overlap = [len(top[u] & top_folded[u]) for u in users]
    assert np.mean(overlap) >= 9.0, overlap
    # The exact solve lands next to the CG factors implicit converged to.
    uidx = model.user_ids_.index(users)
    x = model.fold_in(model.seen_[uidx])
    cos = (x * model.user_factors_[uidx]).sum(1) / (
        np.linalg.norm(x, axis=1) * np.linalg.norm(model.user_factors_[uidx], axis=1)
    )
    assert cos.min() > 0.99


def test_fold_in_empty_history_scores_zero():
    model = ALS(factors=4, iterations=3, n_threads=1).fit(checkerboard())
    empty = sp.csr_matrix((1, model.n_items), dtype=np.float32)
    np.testing.assert_array_equal(model.score_history(empty), 0.0)


def test_registry_and_config_errors():
    assert isinstance(create_model("als", {"factors": "4"}), ALS)
    with pytest.raises(ConfigError, match="Valid parameters: alpha, factors, implicit"):
        ALS(factor=4)
    with pytest.raises(ConfigError, match="l2"):
        ALS(l2=-1)


# ------------------------------------------------ ALS-WR (l2_scaling="count")
class TestALSCountContract(RecommenderContract):
    def make_model(self):
        return ALS(
            factors=8,
            iterations=6,
            l2=0.05,
            alpha=5.0,
            n_threads=1,
            seed=SEED,
            l2_scaling="count",
        )


def _dense_als_wr(conf, *, factors, regularization, iterations, seed):
    """Brute force: every cell's confidence spelled out, one dense solve per row."""
    from lmrec.models.als_wr import init_factors

    C = np.ones(conf.shape)  # unobserved cells: confidence 1, preference 0
    P = np.zeros(conf.shape)
    rows, cols = conf.nonzero()
    C[rows, cols] = np.asarray(conf[rows, cols]).ravel()
    P[rows, cols] = 1.0
    n_u, n_i = P.sum(1), P.sum(0)
    Y = init_factors(conf.shape[1], factors, np.random.default_rng(seed))
    X = np.zeros((conf.shape[0], factors))

    def half(C, P, other, counts):
        out = np.zeros((C.shape[0], factors))
        for u in range(C.shape[0]):
            A = other.T @ np.diag(C[u]) @ other + regularization * counts[u] * np.eye(factors)
            out[u] = np.linalg.solve(A, other.T @ (C[u] * P[u]))
        return out

    for _ in range(iterations):
        X = half(C, P, Y, n_u)
        Y = half(C.T, P.T, X, n_i)
    return X, Y


def test_count_scaling_matches_a_dense_brute_force_fit():
    data = checkerboard(n_users=30, n_items=20, density=0.4, seed=2)
    model = ALS(
        factors=5,
        l2=0.3,
        alpha=3.0,
        iterations=4,
        seed=SEED,
        l2_scaling="count",
        n_threads=1,
    ).fit(data)
    X, Y = _dense_als_wr(
        model.confidence(data.matrix), factors=5, regularization=0.3, iterations=4, seed=SEED
    )
    np.testing.assert_allclose(model.user_factors_, X, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.item_factors_, Y, rtol=1e-4, atol=1e-5)
    # The plain scalar penalty is a different model on the same data.
    plain = ALS(factors=5, l2=0.3, alpha=3.0, iterations=4, seed=SEED, n_threads=1).fit(data)
    assert not np.allclose(plain.item_factors_ @ plain.user_factors_.T, Y @ X.T, atol=1e-2)


def test_count_scaling_objective_never_increases():
    from lmrec.models.als_wr import fit_als_wr, init_factors, objective

    data = checkerboard(n_users=80, n_items=50, density=0.3, seed=4)
    conf = ALS(alpha=2.0).confidence(data.matrix)
    Y0 = init_factors(conf.shape[1], 6, np.random.default_rng(1))
    losses = [objective(conf, np.zeros((conf.shape[0], 6)), Y0, 0.1)]
    fit_als_wr(
        conf,
        factors=6,
        regularization=0.1,
        iterations=8,
        seed=1,
        dtype=np.float64,
        callback=lambda it, X, Y: losses.append(objective(conf, X, Y, 0.1)),
    )
    steps = np.diff(losses)
    assert (steps <= 1e-9 * losses[0]).all(), losses
    assert losses[-1] < 0.5 * losses[0]  # it learns, not just stands still


def test_count_scaling_solves_are_the_same_under_any_memory_budget():
    from lmrec.models.als_wr import solve_rows

    data = checkerboard(n_users=60, n_items=40, density=0.5, seed=6)
    conf = ALS(alpha=4.0).confidence(data.matrix)
    Y = np.random.default_rng(0).standard_normal((conf.shape[1], 7))
    penalty = 0.2 * np.diff(conf.indptr)
    big = solve_rows(conf, Y, penalty)
    # budget 7*3 elements: every row is "too long" and is accumulated in 3-item slices
    tiny = solve_rows(conf, Y, penalty, budget=21)
    np.testing.assert_allclose(tiny, big, rtol=1e-10, atol=1e-12)


def test_count_scaling_batches_short_rows_next_to_a_long_one(monkeypatch):
    """A row too long for the budget is solved alone; the short rows before it still batch."""
    import scipy.sparse as sp

    from lmrec.models import als_wr

    rng = np.random.default_rng(3)
    rows = np.r_[np.arange(200), np.full(50, 200)]  # 200 one-item rows, then a 50-item row
    cols = np.r_[rng.integers(0, 60, 200), np.arange(50)]
    conf = sp.csr_matrix((np.full(250, 3.0), (rows, cols)), shape=(201, 60))
    Y = rng.standard_normal((60, 4))
    penalty = np.full(201, 0.1)
    calls = []
    solve = np.linalg.solve
    monkeypatch.setattr(als_wr.np.linalg, "solve", lambda a, b: calls.append(1) or solve(a, b))
    got = als_wr.solve_rows(conf, Y, penalty, budget=100)  # 25 one-item rows per batch
    assert len(calls) == 200 // 25 + 1
    monkeypatch.setattr(als_wr.np.linalg, "solve", solve)
    np.testing.assert_allclose(got, als_wr.solve_rows(conf, Y, penalty), rtol=1e-10, atol=1e-12)


def test_count_scaling_fold_in_repeats_the_user_solve(tmp_path):
    data = checkerboard(n_users=50, n_items=30, density=0.4, seed=8)
    model = ALS(
        factors=6,
        l2=0.2,
        alpha=2.0,
        iterations=5,
        seed=SEED,
        l2_scaling="count",
        n_threads=1,
    ).fit(data)
    hist = model.seen_[:10]
    x = model.fold_in(hist)
    Y = model.item_factors_.astype(np.float64)
    for u in range(10):
        items = hist[u].indices
        c = np.ones(Y.shape[0])
        c[items] = 3.0
        p = np.zeros(Y.shape[0])
        p[items] = 1.0
        A = Y.T @ (c[:, None] * Y) + 0.2 * len(items) * np.eye(6)
        np.testing.assert_allclose(x[u], np.linalg.solve(A, Y.T @ (c * p)), rtol=1e-4, atol=1e-6)
    # Saved and loaded, the setting (and so the fold-in) survives.
    model.save(tmp_path / "m")
    loaded = ALS.load(tmp_path / "m")
    assert loaded.config.l2_scaling == "count"
    np.testing.assert_array_equal(loaded.fold_in(hist), x)


# ---------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def ml100k():
    from lmrec.data.sources import load_builtin

    return load_builtin("ml-100k")


@pytest.mark.realdata
def test_ml100k_als_beats_popularity(ml100k):
    from lmrec.data.split import random_split
    from lmrec.eval.protocol import evaluate

    split = random_split(ml100k, ratios=(0.8, 0.2), seed=2026)
    als = ALS(n_threads=1).fit(split.train)  # the shipped defaults: 64 factors, alpha=1
    pop = Popularity().fit(split.train)
    ndcg_als = evaluate(als, split.test, metrics=["ndcg@10"]).summary["ndcg@10"]
    ndcg_pop = evaluate(pop, split.test, metrics=["ndcg@10"]).summary["ndcg@10"]
    # Measured (implicit 0.7.3, seed 0): ALS 0.3445, popularity 0.2182. Floors leave headroom.
    assert ndcg_pop == pytest.approx(0.218, abs=0.02)
    assert ndcg_als >= 0.30
    assert ndcg_als - ndcg_pop >= 0.08


@pytest.mark.realdata
def test_ml100k_star_wars_fold_in(ml100k):
    titles = ml100k.items["title"]
    liked = ["Star Wars", "Empire Strikes Back, The", "Return of the Jedi"]
    history = [titles.index[titles == t][0] for t in liked]
    model = ALS(n_threads=1).fit(ml100k)
    recs = model.recommend_for_items(history, k=10)
    assert not set(recs["item"]) & set(history)
    genres = ml100k.items.loc[recs["item"], "genres"]
    hits = genres.str.contains("Sci-Fi|Adventure").sum()
    assert hits >= 3, list(titles[recs["item"]])


def test_old_parameter_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="'regularization' is now called 'l2'"):
        old = ALS(regularization=0.3, num_threads=1)
    assert old.config == ALS(l2=0.3, n_threads=1).config
    with pytest.raises(ConfigError, match="old name of 'l2'"):
        ALS(regularization=0.3, l2=0.3)
