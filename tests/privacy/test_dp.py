"""Differential privacy (issue 21.2): the Gaussian mechanism's calibration and accounting,
private item-item models, DP-SGD accounting, and clear errors for bad parameters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from lmrec.errors import ConfigError
from lmrec.models.capabilities import PrivateModel, supports
from lmrec.models.dp import (
    analytic_gaussian_delta,
    analytic_gaussian_sigma,
    clip_rows,
    denoise_gram,
    noisy_gram,
)
from lmrec.models.registry import create_model, models_supporting
from lmrec.testing import checkerboard


def test_analytic_gaussian_calibration():
    # Balle & Wang (2018): sigma = 3.73 at epsilon 1, delta 1e-5 (classic bound: 4.84)
    s = analytic_gaussian_sigma(1.0, 1e-5)
    assert 3.72 < s < 3.74
    assert analytic_gaussian_delta(1.0, s) == pytest.approx(1e-5, rel=1e-6)
    assert s < math.sqrt(2 * math.log(1.25 / 1e-5)) / 1.0
    # scales with the sensitivity, falls as epsilon grows
    assert analytic_gaussian_sigma(1.0, 1e-5, 7.0) == pytest.approx(7 * s, rel=1e-8)
    sig = [analytic_gaussian_sigma(e, 1e-5) for e in (1, 2, 4, 8)]
    assert sig == sorted(sig, reverse=True)


def test_clipping_bounds_each_users_contribution():
    rng = np.random.default_rng(0)
    x = sp.random(50, 40, density=0.3, random_state=1, format="csr")
    x.data = rng.uniform(0.5, 3.0, x.nnz)
    clipped, n = clip_rows(x, 4.0)
    assert n > 0
    for r in range(50):
        row = clipped[r].toarray().ravel()
        contrib = np.outer(row, row)
        assert np.linalg.norm(contrib[np.triu_indices(40)]) <= 4.0 + 1e-9


def test_noisy_gram_is_symmetric_and_reports():
    x = sp.csr_matrix(checkerboard().matrix)
    g, report = noisy_gram(x, epsilon=2.0, delta=1e-6, clip=3.0, seed=0)
    assert np.allclose(g, g.T)
    assert report["sigma"] == pytest.approx(analytic_gaussian_sigma(2.0, 1e-6, 3.0))
    assert report["unit"] == "user" and report["epsilon"] == 2.0


def test_denoising_keeps_the_signal_and_drops_the_noise():
    # A rank-2 co-occurrence signal (two disjoint item blocks) under symmetric noise of
    # scale 3 on 300 items: the spectral edge is 2 * 3 * sqrt(300) = 104; the blocks'
    # eigenvalues are 150 * 40 = 6000 and 100 * 60 = 6000, far above it.
    n, sigma = 300, 3.0
    signal = np.zeros((n, n))
    signal[:150, :150] = 40.0
    signal[150:, 150:] = 60.0
    rng = np.random.default_rng(1)
    noise = np.triu(rng.normal(0.0, sigma, (n, n)))
    noise = noise + np.triu(noise, 1).T
    cleaned, kept = denoise_gram(signal + noise, sigma)
    assert kept == 2
    assert np.allclose(cleaned, cleaned.T)
    raw_err = np.linalg.norm(noise)
    assert np.linalg.norm(cleaned - signal) < 0.2 * raw_err  # measured: 0.12
    # pure noise: nothing is kept
    assert denoise_gram(noise, sigma)[1] == 0


def test_denoising_popular_tiers_recovers_a_direction_the_whole_matrix_hides():
    # 800 items, noise scale 1: the whole matrix's edge is 2 sqrt(800) = 56.6, and a spike
    # needs strength above sqrt(800) = 28.3 to stand out of it. The 100 popular items
    # (diagonal 9, against about 0.09 + noise for the others) carry a second direction of
    # strength 20 (alternating signs): hidden in the whole matrix, above sqrt(100) = 10
    # in the block of the 100 most popular items.
    n = 800
    u1 = np.full(n, 0.3)
    u1[:100] = 3.0
    u2 = np.zeros(n)
    u2[:100] = np.where(np.arange(100) % 2 == 0, 1.0, -1.0) * np.sqrt(0.2)
    signal = np.outer(u1, u1) + np.outer(u2, u2)
    rng = np.random.default_rng(0)
    noise = np.triu(rng.normal(0.0, 1.0, (n, n)))
    noise = noise + np.triu(noise, 1).T
    flat, kept_flat = denoise_gram(signal + noise, 1.0, min_tier=None)
    tiered, kept = denoise_gram(signal + noise, 1.0, min_tier=100)
    assert kept == kept_flat == 1  # the count is the whole matrix's
    assert np.allclose(tiered, tiered.T)
    w = u2[:100] / np.linalg.norm(u2[:100])
    block = slice(0, 100)
    assert w @ flat[block, block] @ w < 1.0  # measured 0.0: the flat projection loses it
    assert 15.0 < w @ tiered[block, block] @ w < 25.0  # measured 18.5 (true: 20)
    err = [np.linalg.norm(m[block, block] - signal[block, block]) for m in (flat, tiered)]
    assert err[1] < 0.9 * err[0]  # measured 21.4 against 24.6
    # below min_tier nothing changes: the whole-matrix projection alone
    assert np.array_equal(denoise_gram(signal + noise, 1.0, min_tier=n)[0], flat)


def test_popular_block_denoising_is_an_option_of_the_gram_models():
    # 500 items: blocks of 250 (>= MIN_TIER 200) are denoised on their own only on request
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((300, 500)) < 0.05 + 0.3 * (np.arange(500) < 60)) * 1.0)
    flat, rep = noisy_gram(x, epsilon=8.0, delta=1e-6, clip=3.0, seed=0)
    tiered, rep_t = noisy_gram(x, epsilon=8.0, delta=1e-6, clip=3.0, seed=0, denoise_popular=True)
    assert rep == rep_t and rep["eigen_directions_kept"] > 0
    assert not np.allclose(flat, tiered) and np.allclose(tiered, tiered.T)
    for name in ("ease", "itemknn"):
        model = create_model(
            name, {"dp_epsilon": 8.0, "dp_delta": 1e-6, "dp_denoise_popular": True}
        )
        assert model.config.dp_denoise_popular is True
        assert create_model(name, {}).config.dp_denoise_popular is False
        with pytest.raises(ConfigError, match="dp_denoise=True"):
            create_model(name, {"dp_denoise": False, "dp_denoise_popular": True})


def test_noisy_gram_denoising_is_reported_and_optional():
    x = sp.csr_matrix(checkerboard().matrix)
    g_raw, raw = noisy_gram(x, epsilon=8.0, delta=1e-6, clip=3.0, seed=0, denoise=False)
    g, rep = noisy_gram(x, epsilon=8.0, delta=1e-6, clip=3.0, seed=0)
    assert raw["denoised"] is False and raw["eigen_directions_kept"] is None
    assert rep["denoised"] is True and 0 < rep["eigen_directions_kept"] < x.shape[1]
    assert np.linalg.matrix_rank(g, tol=1e-6) == rep["eigen_directions_kept"]
    assert not np.allclose(g, g_raw)
    model = create_model("ease", {"dp_epsilon": 8.0, "dp_delta": 1e-6, "dp_denoise": False})
    assert model.config.dp_denoise is False
    with pytest.raises(ConfigError, match="dp_denoise"):
        create_model("bpr", {"dp_epsilon": 8.0, "dp_denoise": True})


def test_private_models_are_declared():
    assert {"bpr", "ease", "itemknn"} <= set(models_supporting(PrivateModel))
    assert not supports(create_model("als"), PrivateModel)


@pytest.mark.parametrize("name", ["ease", "itemknn"])
def test_private_fit_saves_its_budget(name, tmp_path):
    from lmrec.models import load_model

    data = checkerboard(n_users=200)
    model = create_model(name, {"dp_epsilon": 4.0, "dp_delta": 1e-4, "dp_seed": 0}).fit(data)
    assert model.privacy_["epsilon"] == 4.0 and model.privacy_["delta"] == 1e-4
    meta = json.loads((model.save(tmp_path / "m") / "config.json").read_text())["meta"]
    assert meta["privacy"]["sigma"] == pytest.approx(model.privacy_["sigma"])
    assert load_model(tmp_path / "m").privacy_ == model.privacy_
    # a private fit cannot be unlearned by recomputation (a second release)
    assert "differentially private" in model.unlearning_blocker()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dp_epsilon": 0}, "dp_epsilon must be a finite number > 0"),
        ({"dp_epsilon": -1}, "dp_epsilon must be a finite number > 0"),
        ({"dp_epsilon": 1, "dp_delta": 1.0}, r"dp_delta must be in \(0, 1\)"),
        ({"dp_epsilon": 1, "dp_delta": 0}, r"dp_delta must be in \(0, 1\)"),
        ({"dp_epsilon": 1, "dp_clip": 0}, "dp_clip must be a finite number > 0"),
    ],
)
def test_bad_dp_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        create_model("ease", params)


def test_dp_errors_in_context():
    with pytest.raises(ConfigError, match="does not support differential privacy"):
        create_model("als", {"dp_epsilon": 1.0})
    with pytest.raises(ConfigError, match="similarity='cosine' only"):
        create_model("itemknn", {"dp_epsilon": 1.0, "similarity": "bm25"})
    data = checkerboard()  # 40 users: delta must be below 1/40
    with pytest.raises(ConfigError, match="must be below 1 / n_users"):
        create_model("ease", {"dp_epsilon": 1.0, "dp_delta": 0.1}).fit(data)


def test_dpsgd_accounting():
    pytest.importorskip("opacus")
    from lmrec.train.dpsgd import epsilon_for

    eps = [epsilon_for(1.0, 0.1, steps, 1e-5) for steps in (10, 100, 1000)]
    assert eps == sorted(eps) and eps[0] > 0
    assert epsilon_for(2.0, 0.1, 100, 1e-5) < epsilon_for(1.0, 0.1, 100, 1e-5)
