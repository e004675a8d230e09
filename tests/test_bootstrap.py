"""Bootstrap confidence intervals and paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmrec.errors import ConfigError, DataError, DataWarning
from lmrec.eval import bootstrap as B
from lmrec.eval.bootstrap import bootstrap_ci, paired_bootstrap_diff

SEED = 20240601


@pytest.fixture
def values() -> np.ndarray:
    return np.random.default_rng(SEED).beta(2.0, 5.0, size=300)


def test_same_seed_same_interval_and_generator_is_accepted(values):
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    # A Generator is used as given: same state, same answer.
    a = bootstrap_ci(values, seed=np.random.default_rng(3))
    assert a == bootstrap_ci(values, seed=3)
    rng = np.random.default_rng(3)
    first = bootstrap_ci(values, seed=rng)
    assert bootstrap_ci(values, seed=rng) != first  # the generator advanced


def test_interval_contains_the_mean_and_narrows_with_confidence(values):
    mean, low, high = bootstrap_ci(values, n_resamples=2000, seed=SEED)
    assert mean == pytest.approx(values.mean())
    assert low < mean < high
    _, low80, high80 = bootstrap_ci(values, n_resamples=2000, confidence=0.8, seed=SEED)
    assert low < low80 < high80 < high
    # Standard error of the mean of 300 draws: the 95% interval is about 4 SE wide.
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert 3.0 * se < high - low < 5.0 * se


def test_matches_a_plain_reference_loop(values):
    # With one chunk, the resamples are exactly rng.integers(0, n, (n_resamples, n)).
    rng = np.random.default_rng(11)
    idx = rng.integers(0, values.size, size=(500, values.size))
    means = values[idx].mean(axis=1)
    expected = np.quantile(means, [0.025, 0.975])
    _, low, high = bootstrap_ci(values, n_resamples=500, seed=11)
    assert (low, high) == pytest.approx(tuple(expected), rel=0, abs=1e-15)


def test_chunked_resampling_gives_a_valid_interval(monkeypatch, values):
    monkeypatch.setattr(B, "_CHUNK_ELEMENTS", 1000)  # 3 resamples per chunk
    mean, low, high = bootstrap_ci(values, n_resamples=1001, seed=SEED)
    assert low < mean < high
    assert bootstrap_ci(values, n_resamples=1001, seed=SEED) == (mean, low, high)


def test_constant_values_and_single_value_give_a_point_interval():
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25, 0.25)
    assert bootstrap_ci([0.7]) == (0.7, 0.7, 0.7)


def test_nans_are_dropped_with_a_warning():
    with pytest.warns(DataWarning, match="dropping 2 NaN"):
        mean, low, high = bootstrap_ci([1.0, np.nan, 0.0, np.nan, 0.5], seed=0)
    assert mean == 0.5
    assert 0.0 <= low <= mean <= high <= 1.0
    with pytest.warns(DataWarning, match="no value"):
        out = bootstrap_ci([], seed=0)
    assert all(math.isnan(v) for v in out)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_resamples": 0}, "n_resamples"),
        ({"n_resamples": 10.0}, "n_resamples"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"seed": "zero"}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        bootstrap_ci([1.0, 2.0], **kwargs)
    with pytest.raises(ConfigError, match=match):
        paired_bootstrap_diff([1.0, 2.0], [1.0, 2.0], **kwargs)


def test_bad_shapes_and_infinities():
    with pytest.raises(DataError, match="1-D"):
        bootstrap_ci(np.ones((2, 2)))
    with pytest.raises(DataError, match="infinite"):
        bootstrap_ci([1.0, np.inf])


def test_paired_diff_of_identical_arrays_is_exactly_zero(values):
    out = paired_bootstrap_diff(values, values.copy(), seed=SEED)
    assert out == {"mean_diff": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}


def test_paired_diff_length_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match="got 3 and 2 values"):
        paired_bootstrap_diff([1.0, 2.0, 3.0], [1.0, 2.0])


def test_paired_diff_of_a_constant_shift():
    a = np.array([0.5, 0.2, 0.9, 0.4])
    out = paired_bootstrap_diff(a, a - 0.1, seed=0)
    # Every resampled difference is 0.1 (up to rounding): the interval is a point, and no
    # resample is on the other side of 0, so p = 2 * 0 / n = 0.
    assert out["mean_diff"] == pytest.approx(0.1)
    assert out["low"] == pytest.approx(0.1) and out["high"] == pytest.approx(0.1)
    assert out["p_value"] == 0.0
    flipped = paired_bootstrap_diff(a - 0.1, a, seed=0)
    assert flipped["mean_diff"] == pytest.approx(-0.1) and flipped["p_value"] == 0.0


def test_paired_diff_uses_the_same_users_for_both_models(values):
    rng = np.random.default_rng(SEED)
    noise = rng.normal(0.0, 0.001, size=values.size)
    # Users differ a lot, but the paired difference is tiny and consistent: only a paired
    # resample sees that. An unpaired one would give an interval about 40x wider.
    out = paired_bootstrap_diff(values + 0.01 + noise, values, n_resamples=2000, seed=SEED)
    assert out["low"] > 0 and out["p_value"] == 0.0
    assert out["high"] - out["low"] < 0.001


def test_paired_p_value_is_two_sided_share_across_zero():
    # Differences with mean 0.1 and a large spread: the bootstrap distribution straddles 0.
    d = np.array([1.0, -0.8, 0.5, -0.6, 0.4])
    out = paired_bootstrap_diff(d, np.zeros_like(d), n_resamples=4000, seed=1)
    rng = np.random.default_rng(1)
    boot = d[rng.integers(0, d.size, size=(4000, d.size))].mean(axis=1)
    assert out["p_value"] == pytest.approx(min(1.0, 2 * np.mean(boot <= 0)))
    assert 0.2 < out["p_value"] <= 1.0
    assert out["low"] < 0 < out["high"]


def test_paired_nan_users_are_dropped_pairwise():
    with pytest.warns(DataWarning, match="dropping 2 of 4"):
        out = paired_bootstrap_diff([1.0, np.nan, 0.5, 0.2], [0.5, 0.1, np.nan, 0.2], seed=0)
    assert out["mean_diff"] == pytest.approx((0.5 + 0.0) / 2)
    with pytest.warns(DataWarning) as record:
        out = paired_bootstrap_diff([np.nan], [1.0])
    assert [str(w.message).split(";")[0] for w in record] == [
        "paired_bootstrap_diff: dropping 1 of 1 user(s) with a NaN value in a or b.",
        "paired_bootstrap_diff: no user to resample",
    ]
    assert all(math.isnan(v) for v in out.values())
