"""BPR matrix factorization: contract, training, validation and real MovieLens-100K quality."""

import importlib.util
import sys

import numpy as np
import pytest

from lmrec.errors import ConfigError
from lmrec.models import create_model
from lmrec.models.bpr import BPR, NegativeSampler
from lmrec.testing import RecommenderContract, checkerboard

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="BPR needs the torch extra"
)

SEED = 7
# Tiny and fast; n_threads=1 keeps the contract's same-seed check independent of the
# machine's thread count (the fit is bitwise reproducible on CPU at a fixed thread count).
TINY = dict(factors=8, epochs=20, batch_size=128, lr=0.05, l2=1e-3, seed=SEED, n_threads=1)


class TestBPRContract(RecommenderContract):
    # BPR folds a new user in with one ridge solve plus the item bias; on this 30-item toy a
    # 3-item history is partly outweighed by the bias (0.79-0.96 of 24 across seeds, chance
    # 0.5). Fold-in quality on real data: test_ml100k_beats_popularity (NDCG@10 ~0.36).
    fold_in_floor = 0.75

    def make_model(self):
        return BPR(**TINY)


def test_fit_is_bitwise_reproducible_and_seed_matters():
    data = checkerboard()
    a, b = BPR(**TINY).fit(data), BPR(**TINY).fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    c = BPR(**{**TINY, "seed": SEED + 1}).fit(data)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_training_reduces_the_loss():
    model = BPR(**{**TINY, "epochs": 8}).fit(checkerboard())
    losses = [h["loss"] for h in model.history_]
    assert len(losses) == 8
    assert losses[0] > 0.6  # log(2) ~ 0.693 at the random start
    assert losses[-1] < 0.8 * losses[0]


def test_fitted_state_is_float32_numpy_and_torch_stays_lazy():
    model = BPR(**TINY).fit(checkerboard())
    for arr in (model.user_factors_, model.item_factors_, model.item_bias_):
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    assert model.user_factors_.shape == (40, 8) and model.item_bias_.shape == (30,)
    assert not hasattr(model, "_params") and not hasattr(model, "_trainer")
    assert "lmrec.models.bpr" in sys.modules  # imported above without pulling torch in itself


def test_torch_threads_are_restored():
    import torch

    before = torch.get_num_threads()
    BPR(**{**TINY, "epochs": 1, "n_threads": 1}).fit(checkerboard())
    assert torch.get_num_threads() == before


def test_bf16_autocast_trains_on_cpu():
    model = BPR(**{**TINY, "bf16": True}).fit(checkerboard())
    assert model.item_factors_.dtype == np.float32
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]


def test_negative_sampler_avoids_positives():
    users = np.array([0, 0, 0, 1])
    items = np.array([0, 1, 2, 3])
    sampler = NegativeSampler(users, items, 5, np.random.default_rng(0))
    neg = sampler.sample(np.array([0] * 200), 3)
    assert neg.shape == (200, 3)
    assert (neg >= 0).all() and (neg < 5).all()
    # User 0 has 3 of 5 items: a plain uniform draw hits a positive 60% of the time;
    # five rounds of re-drawing leave 0.6**5 ~ 8% (at ML-100K density, ~1e-6).
    assert np.isin(neg, [0, 1, 2]).mean() < 0.2
    assert set(np.unique(sampler.sample(np.array([1] * 50), 2))) <= {0, 1, 2, 4}


@pytest.mark.parametrize(
    "params",
    [
        {"factors": 0},
        {"epochs": 0},
        {"lr": 0},
        {"l2": -1.0},
        {"n_negatives": 0},
        {"batch_size": 0},
        {"device": "tpu"},
        {"optimizer": "adagrad"},
        {"factor": 8},
    ],
)
def test_bad_hyperparameters_raise_config_error(params):
    with pytest.raises(ConfigError):
        create_model("bpr", params)


def test_cuda_without_a_gpu_fails_at_fit_not_construction():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    model = BPR(device="cuda")  # constructors only store
    with pytest.raises(ConfigError, match="cuda"):
        model.fit(checkerboard())


@pytest.mark.realdata
def test_ml100k_beats_popularity(ml100k_80_20, fit_and_evaluate, popularity_summary):
    # Default config (factors=64, epochs=20, batch 4096, Adam lr=0.01, l2=0.01), 1 thread.
    # Measured on the seed-2026 80/20 split: NDCG@10 0.388 / Recall@20 0.33 vs popularity
    # 0.218 / 0.175; fit ~10-15 s on a busy 2-core machine.
    from lmrec.eval.metrics import compute_ranking_metrics
    from lmrec.ops.topk import mask_rows, topk

    model = BPR(n_threads=1)
    summary = fit_and_evaluate(model)
    assert summary["ndcg@10"] > popularity_summary["ndcg@10"] + 0.10
    assert summary["recall@20"] > popularity_summary["recall@20"] + 0.08
    # Fold-in: every other test user, described only by their training history, ranked
    # by the ridge solve against the item factors. Measured NDCG@10 0.36.
    train, test = ml100k_80_20.train.matrix.copy(), ml100k_80_20.test.matrix
    train.data[:] = 1.0
    rows = np.flatnonzero(np.diff(test.indptr) > 0)[::2]
    scores = model.score_history(train[rows])
    mask_rows(scores, train[rows])
    recs, _ = topk(scores, 10)
    folded, _ = compute_ranking_metrics(recs, test[rows], ["ndcg@10"], n_items=model.n_items)
    assert folded["ndcg@10"] > popularity_summary["ndcg@10"] + 0.08


def test_device_auto_on_a_cpu_machine_equals_cpu():
    """``auto`` resolves to the CPU without CUDA and trains the very same model."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: auto means cuda here (see the gpu test)")
    a = BPR(**{**TINY, "device": "auto"}).fit(checkerboard())
    b = BPR(**{**TINY, "device": "cpu"}).fit(checkerboard())
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


@pytest.mark.gpu
def test_cuda_training_matches_cpu_training():
    """On a GPU the same steps run (negatives are sampled on the CPU from the same seeds);
    CUDA embedding gradients use atomics, so factors agree to float error, not bitwise."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    cpu = BPR(**TINY).fit(checkerboard())
    for device in ("cuda", "auto"):
        gpu = BPR(**{**TINY, "device": device}).fit(checkerboard())
        assert gpu.item_factors_.dtype == np.float32  # back on the CPU as NumPy
        np.testing.assert_allclose(gpu.item_factors_, cpu.item_factors_, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(
            [h["loss"] for h in gpu.history_], [h["loss"] for h in cpu.history_], rtol=1e-4
        )
