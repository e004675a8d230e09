"""Exact and faiss retrieval: exclusion, agreement with exact search, save/load, factor vectors."""

import numpy as np
import pytest
import scipy.sparse as sp

from lmrec.errors import ConfigError, DataError, NotFittedError
from lmrec.retrieval import ExactIndex, FaissIndex, item_user_vectors

faiss = pytest.importorskip("faiss", reason="extra 'ann' (faiss-cpu) not installed")


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(11)
    centers = rng.normal(size=(20, 16))
    items = centers[rng.integers(0, 20, 3_000)] + 0.5 * rng.normal(size=(3_000, 16))
    items *= rng.uniform(0.5, 2.0, (3_000, 1))  # uneven norms: a true MIPS problem
    users = centers[rng.integers(0, 20, 200)] + 0.5 * rng.normal(size=(200, 16))
    seen = sp.random(200, 3_000, density=0.01, format="csr", random_state=3, dtype=np.float32)
    return users.astype(np.float32), items.astype(np.float32), seen


def _recall(approx, exact):
    hits = [
        len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, (e >= 0).sum())
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits))


def test_exact_matches_brute_force_and_excludes(factors):
    users, items, seen = factors
    got, scores = ExactIndex().build(items).search(users, 10, exclude=seen)
    full = users @ items.T
    full[seen.nonzero()] = -np.inf
    best = np.argsort(-full, axis=1, kind="stable")[:, :10]
    assert _recall(got, best) == 1.0
    np.testing.assert_allclose(scores, np.take_along_axis(full, got, 1), rtol=1e-5)


@pytest.mark.parametrize(
    "index",
    [
        FaissIndex("hnsw", m=16, ef_search=64),
        FaissIndex("ivfpq", m=17, nlist=16, nprobe=8, rerank=4),
    ],
    ids=["hnsw", "ivfpq"],
)
def test_ann_excludes_seen_and_agrees_with_exact(factors, index):
    users, items, seen = factors
    exact, _ = ExactIndex().build(items).search(users, 20, exclude=seen)
    got, scores = index.build(items).search(users, 20, exclude=seen)
    assert got.shape == (200, 20) and (got >= 0).all()
    assert seen[np.arange(200)[:, None], got].nnz == 0  # no seen item returned
    assert (np.diff(scores, axis=1) <= 1e-5).all()  # best first
    assert all(len(set(row)) == 20 for row in got)
    assert _recall(got, exact) >= 0.9


def test_ann_save_load_round_trip(tmp_path, factors):
    users, items, seen = factors
    index = FaissIndex("hnsw", m=8).build(items)
    index.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "index.faiss").is_file()
    again = FaissIndex.load(tmp_path / "idx")
    assert again.params == index.params
    a, sa = index.search(users, 10, exclude=seen)
    b, sb = again.search(users, 10, exclude=seen)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    with pytest.raises(DataError, match="no index.json"):
        FaissIndex.load(tmp_path)


def test_exclusion_of_almost_everything_falls_back():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(50, 4)).astype(np.float32)
    seen = sp.csr_matrix(np.ones((1, 50), np.float32))
    seen[0, 7] = 0
    seen.eliminate_zeros()
    got, _ = FaissIndex("hnsw", m=4).build(items).search(rng.normal(size=(1, 4)), 3, exclude=seen)
    assert got.tolist() == [[7, -1, -1]]


def test_validation():
    with pytest.raises(NotFittedError):
        FaissIndex().search(np.zeros((1, 2)), 1)
    with pytest.raises(ConfigError, match="kind"):
        FaissIndex("lsh").build(np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="'k'"):
        ExactIndex().build(np.zeros((4, 2))).search(np.zeros((1, 2)), 0)
    with pytest.raises(DataError, match="dimension"):
        ExactIndex().build(np.zeros((4, 2))).search(np.zeros((1, 3)), 1)


def test_item_user_vectors_duck_typing():
    class Factors:
        user_factors_ = np.ones((3, 2), np.float32)
        item_factors_ = np.arange(8, dtype=np.float32).reshape(4, 2)
        item_bias_ = np.array([1, 2, 3, 4], np.float32)

    u, i = item_user_vectors(Factors())
    np.testing.assert_allclose(
        u @ i.T, Factors.user_factors_ @ Factors.item_factors_.T + Factors.item_bias_
    )

    class Svd:
        item_factors_ = np.eye(3, dtype=np.float32)
        user_items_ = sp.csr_matrix(np.array([[2.0, 0, 1]], np.float32))

    u, i = item_user_vectors(Svd())
    np.testing.assert_allclose(u, [[1, 0, 1]])

    class Unfitted:
        item_factors_ = None

    with pytest.raises(NotFittedError):
        item_user_vectors(Unfitted())
    with pytest.raises(TypeError, match="factor models"):
        item_user_vectors(object())


@pytest.mark.parametrize(
    ("precision", "tol"), [("float32", 0.0), ("float16", 1e-3), ("int8", 1e-2)]
)
def test_lean_factors_round_trip_tolerance(precision, tol):
    from lmrec.retrieval.quantize import LeanFactors

    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 32)).astype(np.float32)
    lean = LeanFactors.from_array(x, precision)
    back = lean.to_float32()
    rel = np.abs(back - x).max(axis=1) / np.abs(x).max(axis=1)
    assert rel.max() <= tol
    assert lean.nbytes == {"float32": 4 * 32, "float16": 2 * 32, "int8": 32 + 4}[precision] * 300
    q = rng.normal(size=(4, 32)).astype(np.float32)
    np.testing.assert_allclose(lean.dot(q), q @ back.T, rtol=1e-5, atol=1e-5)
    assert not lean.values.flags.writeable
