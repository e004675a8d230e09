"""Exact and faiss retrieval: exclusion, agreement with exact search, save/load, factor vectors."""

import os

import numpy as np
import pytest
import scipy.sparse as sp

from lmrec.errors import ConfigError, DataError, NotFittedError
from lmrec.retrieval import ExactIndex, FaissIndex, item_user_vectors


def _has_faiss() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


#: Tests that build faiss indexes; the others (exact search, factor vectors, lean factors)
#: run without the 'ann' extra. In CI the extra is installed, so these never skip there.
needs_faiss = pytest.mark.skipif(
    not _has_faiss() and os.environ.get("CI") != "true",
    reason="extra 'ann' (faiss-cpu) not installed",
)


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(11)
    centers = rng.normal(size=(20, 16))
    items = centers[rng.integers(0, 20, 3_000)] + 0.5 * rng.normal(size=(3_000, 16))
    items *= rng.uniform(0.5, 2.0, (3_000, 1))  # uneven norms: a true MIPS problem
    users = centers[rng.integers(0, 20, 200)] + 0.5 * rng.normal(size=(200, 16))
    seen = sp.random(200, 3_000, density=0.01, format="csr", random_state=3, dtype=np.float32)
    return users.astype(np.float32), items.astype(np.float32), seen


@pytest.fixture(scope="module")
def small_dataset():
    from lmrec.data.synthetic import synthetic_interactions

    return synthetic_interactions(300, 400, 6_000, seed=1, with_text=False)


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


@needs_faiss
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


@needs_faiss
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


@needs_faiss
def test_exclusion_of_almost_everything_falls_back():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(50, 4)).astype(np.float32)
    seen = sp.csr_matrix(np.ones((1, 50), np.float32))
    seen[0, 7] = 0
    seen.eliminate_zeros()
    got, _ = FaissIndex("hnsw", m=4).build(items).search(rng.normal(size=(1, 4)), 3, exclude=seen)
    assert got.tolist() == [[7, -1, -1]]


@needs_faiss
def test_validation():
    with pytest.raises(NotFittedError):
        FaissIndex().search(np.zeros((1, 2)), 1)
    with pytest.raises(ConfigError, match="kind"):
        FaissIndex("lsh").build(np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="'k'"):
        ExactIndex().build(np.zeros((4, 2))).search(np.zeros((1, 2)), 0)
    with pytest.raises(DataError, match="dimension"):
        ExactIndex().build(np.zeros((4, 2))).search(np.zeros((1, 3)), 1)


@pytest.mark.parametrize(
    ("name", "params"),
    [("als", {"factors": 8, "iterations": 2}), ("svd", {"factors": 8})],
)
def test_item_user_vectors_reproduce_model_scores(small_dataset, name, params):
    from lmrec.models import create_model

    model = create_model(name, params).fit(small_dataset)
    u, i = item_user_vectors(model)
    np.testing.assert_allclose(u @ i.T, model.score(model.user_ids_.ids), rtol=1e-4, atol=1e-4)


def test_item_user_vectors_refuses_other_models(small_dataset):
    from lmrec.models import create_model

    with pytest.raises(NotFittedError):
        item_user_vectors(create_model("als", {"factors": 4}))
    with pytest.raises(TypeError, match="factor and embedding"):
        item_user_vectors(create_model("ease", {}).fit(small_dataset))
    with pytest.raises(TypeError, match="factor and embedding"):
        item_user_vectors(object())
    als = create_model("als", {"factors": 4, "iterations": 1}).fit(small_dataset)
    als.item_bias_ = np.ones(als.n_items, np.float32)  # a stray attribute changes nothing:
    users, items = item_user_vectors(als)  # the vectors are what the model declares
    np.testing.assert_allclose(users @ items.T, als.score(als.user_ids_.ids), rtol=1e-5)


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


@pytest.mark.parametrize("n_items", [50, 5_000, 5_031])  # fallback, chunks only, chunks + tail
@pytest.mark.parametrize("n_threads", [1, 2])
def test_dot_topk_equals_full_sort(n_items, n_threads):
    from lmrec.ops.topk import dot_topk

    rng = np.random.default_rng(n_items)
    q = rng.normal(size=(70, 12)).astype(np.float32)
    y = rng.normal(size=(n_items, 12)).astype(np.float32)
    ex = sp.random(70, n_items, density=0.05, format="csr", random_state=1, dtype=np.float32)
    ex = sp.csr_matrix(
        ex
        + sp.csr_matrix(
            (np.ones(n_items - 3), (np.full(n_items - 3, 5), np.arange(n_items - 3))),
            shape=(70, n_items),
        )
    )
    items, scores = dot_topk(q, y, 10, exclude=ex, n_threads=n_threads, block_rows=16)
    full = q @ y.T
    full[ex.nonzero()] = -np.inf
    best = np.argsort(-full, axis=1, kind="stable")[:, :10]
    for r in range(70):
        if r == 5:  # only 3 items left: they come first, then -1 padding
            assert set(items[r, :3]) == set(range(n_items - 3, n_items))
            assert (items[r, 3:] == -1).all() and np.isneginf(scores[r, 3:]).all()
            continue
        np.testing.assert_array_equal(items[r], best[r])
    np.testing.assert_allclose(
        scores[items >= 0], np.take_along_axis(full, np.maximum(items, 0), 1)[items >= 0], rtol=1e-5
    )


def test_recommend_indices_fast_path_matches_generic(small_dataset):
    from lmrec.models import create_model
    from lmrec.ops.topk import mask_rows, topk

    model = create_model("als", {"factors": 8, "iterations": 2}).fit(small_dataset)
    users = np.arange(model.seen_.shape[0])
    items, scores = model.recommend_indices(users, 15)
    full = model.score(model.user_ids_.ids)
    mask_rows(full, model.seen_)
    want, _ = topk(full, 15)
    assert (items == want).mean() > 0.999  # float rounding may swap exact near-ties
    assert model.seen_[users[:, None], items].nnz == 0


@needs_faiss
def test_cli_index_build_and_recommend_with_ann(small_dataset, tmp_path, capsys):
    import pandas as pd

    from lmrec.cli import main
    from lmrec.models import create_model

    model_dir = tmp_path / "als"
    model = create_model("als", {"factors": 8, "iterations": 2}).fit(small_dataset)
    model.save(model_dir)
    rec = ["recommend", "--model", str(model_dir), "--all", "-k", "10", "--force"]
    assert main([*rec, "--ann", "--output", str(tmp_path / "x.csv")]) == 2
    assert "lmrec index build" in capsys.readouterr().err
    assert main(["index", "build", "--model", str(model_dir), "--m", "8", "--ef-search", "64"]) == 0
    assert (model_dir / "index" / "binding.json").is_file()
    assert main(["index", "build", "--model", str(model_dir)]) == 2  # exists: needs --force
    capsys.readouterr()
    assert main([*rec, "--ann-min-items", "0", "--output", str(tmp_path / "auto.csv")]) == 0
    assert "using the hnsw index" in capsys.readouterr().err
    assert main([*rec, "--output", str(tmp_path / "small.csv")]) == 0  # 400 items < 100k
    assert "using the" not in capsys.readouterr().err
    assert (
        main([*rec, "--exact", "--ann-min-items", "0", "--output", str(tmp_path / "ex.csv")]) == 0
    )
    got, want = pd.read_csv(tmp_path / "auto.csv"), pd.read_csv(tmp_path / "ex.csv")
    inter = small_dataset.interactions
    seen = set(
        zip(
            small_dataset.user_ids.lookup(inter["user_idx"].to_numpy()).astype(str),
            small_dataset.item_ids.lookup(inter["item_idx"].to_numpy()).astype(str),
            strict=True,
        )
    )
    assert not any((u, i) in seen for u, i in zip(got["user"], got["item"], strict=True))
    both = got.merge(want, on=["user", "item"])
    assert len(both) / len(want) >= 0.95  # recall@10 of the ANN lists vs exact
    # an index that no longer matches the model (retrained in place) is refused
    import shutil

    other = tmp_path / "als2"
    create_model("als", {"factors": 8, "iterations": 3}).fit(small_dataset).save(other)
    shutil.copytree(model_dir / "index", other / "index")
    rec[2] = str(other)
    assert main([*rec, "--ann", "--output", str(tmp_path / "y.csv")]) == 2
    assert "another version of the model" in capsys.readouterr().err


def test_fast_path_exclusion_and_non_finite_users_match_the_generic_path(small_dataset):
    from lmrec.models import create_model
    from lmrec.ops.topk import mask_rows, topk

    model = create_model("als", {"factors": 8, "iterations": 2}).fit(small_dataset)
    users = np.arange(6)
    # A stored zero excludes like any stored entry, also when unioned with the seen items.
    extra = sp.csr_matrix(
        (np.zeros(2, np.float32), ([0, 1], [3, 4])), shape=(model.seen_.shape[0], model.n_items)
    )
    ex = model.exclusion(users, True, extra)
    assert ex[0, 3] and ex[1, 4] and (ex != 0).sum() == model.seen_[users].nnz + 2
    items, _ = model.recommend_indices(users, 20, exclude=extra)
    assert 3 not in items[0] and 4 not in items[1]
    # A diverged (NaN) user vector: the generic path's answer (no items), not garbage.
    model.user_factors_[2] = np.nan
    items, scores = model.recommend_indices(users, 5)
    assert (items[2] == -1).all() and np.isneginf(scores[2]).all()
    full = model.score(model.user_ids_.ids[users])
    mask_rows(full, model.seen_[users])
    full[~np.isfinite(full)] = -np.inf
    np.testing.assert_array_equal(items, topk(full, 5)[0])
