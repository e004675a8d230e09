"""Fairness, popularity-bias and calibration metrics against the hand-computed worked example
of docs/metrics.md ("Fairness, popularity bias and calibration")."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmrec.errors import ConfigError, DataError, DataWarning
from lmrec.eval import (
    ItemGroups,
    compute_ranking_metrics,
    exposure_table,
    group_breakdown,
    group_exposure,
    group_gap,
    group_relevance,
    parse_metric,
)
from lmrec.eval.bias import Miscalibration, PopularityLift, calibration_kl
from lmrec.eval.groups import activity_bands, age_bands

# The worked example of docs/metrics.md: six items, five users, lists of K = 3.
RECS = np.array([[2, 1, 0], [4, 1, -1], [0, 1, 2], [3, 3, 4], [-1, -1, -1]])
TRUTH = sp.csr_matrix(([1] * 8, ([0, 0, 1, 1, 1, 1, 3, 4], [0, 2, 0, 1, 2, 3, 3, 4])), shape=(5, 6))
TRAIN = sp.csr_matrix(([1] * 5, ([0, 1, 1, 2, 3], [1, 1, 2, 3, 1])), shape=(5, 6))
FEATURES = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]])
GENRES = ItemGroups.from_labels(["a", "a", "b", "b|c", "c", None], separator="|", attribute="genre")


def test_item_groups_from_labels_split_multi_valued_items():
    assert GENRES.names == ("a", "b", "c", "unknown")
    np.testing.assert_allclose(GENRES.membership.toarray()[3], [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(GENRES.catalog_share(), [2 / 6, 1.5 / 6, 1.5 / 6, 1 / 6])


def test_exposure_share_uniform_and_log_discount():
    np.testing.assert_allclose(group_exposure(RECS, GENRES, k=3), [0.5, 0.25, 0.25, 0])
    r2 = 1 / math.log2(3)
    total = 1.5 + 3 * r2 + 1.5 + 1 + 1.5
    expected = [(1.5 + 3 * r2) / total, 2 / total, 2 / total, 0]
    np.testing.assert_allclose(group_exposure(RECS, GENRES, k=3, discount="log"), expected)


def test_relevance_share_and_exposure_ratio():
    np.testing.assert_allclose(group_relevance(TRUTH, GENRES), [0.375, 0.375, 0.25, 0])
    table = exposure_table(RECS, TRUTH, GENRES, k=3)
    assert list(table.index) == ["a", "b", "c", "unknown"]
    np.testing.assert_allclose(table["exposure_ratio"].to_numpy()[:3], [4 / 3, 2 / 3, 1.0])
    assert np.isnan(table.loc["unknown", "exposure_ratio"])


def test_popularity_tiers_and_their_exposure():
    tiers = ItemGroups.popularity_tiers(TRAIN)
    assert tiers.labels().tolist() == ["tail", "head", "mid", "tail", "tail", "tail"]
    np.testing.assert_allclose(group_exposure(RECS, tiers, k=3), [0.3, 0.2, 0.5])


def test_average_recommendation_popularity_per_user():
    summary, per_user = compute_ranking_metrics(RECS, TRUTH, ["arp@3"], train=TRAIN)
    np.testing.assert_allclose(per_user["arp@3"], [1 / 3, 0.375, 1 / 3, 0.125, np.nan])
    assert summary["arp@3"] == pytest.approx((1 / 3 + 0.375 + 1 / 3 + 0.125) / 4)


def test_popularity_lift_is_a_ratio_of_means():
    summary, per_user = compute_ranking_metrics(
        RECS, TRUTH, ["pop_lift@3"], train=TRAIN, history=TRAIN
    )
    arp, hp = (1 / 3 + 0.375 + 1 / 3 + 0.125) / 4, (0.75 + 0.5 + 0.25 + 0.75) / 4
    assert summary["pop_lift@3"] == pytest.approx((arp - hp) / hp)
    assert "pop_lift@3" not in per_user


def test_miscalibration_per_user_kl():
    summary, per_user = compute_ranking_metrics(
        RECS, TRUTH, ["miscalibration@3"], history=TRAIN, item_features=FEATURES
    )
    expected = [
        math.log(1 / 0.67),
        0.5 * math.log(100),
        0.5 * math.log(0.5 / 0.335) + 0.5 * math.log(100),
        math.log(100),
        np.nan,
    ]
    np.testing.assert_allclose(per_user["miscalibration@3"], expected, rtol=1e-9)
    assert summary["miscalibration@3"] == pytest.approx(np.nanmean(expected))


def test_calibrated_list_has_zero_kl():
    p = np.array([[2.0, 1.0, 1.0]])
    assert calibration_kl(p, p / 4)[0] == pytest.approx(0.0, abs=1e-12)
    assert calibration_kl(np.zeros((1, 3)), p)[0] != calibration_kl(np.zeros((1, 3)), p)[0]  # NaN


def test_metric_specs_and_required_arguments():
    assert parse_metric("Miscalibration@10") == Miscalibration(10)
    assert parse_metric("pop_lift@5") == PopularityLift(5)
    with pytest.raises(ConfigError, match="history"):
        compute_ranking_metrics(RECS, TRUTH, ["miscalibration@3"], item_features=FEATURES)
    with pytest.raises(DataError, match="history has shape"):
        compute_ranking_metrics(
            RECS, TRUTH, ["miscalibration@3"], history=TRAIN[:2], item_features=FEATURES
        )
    with pytest.raises(DataError, match="non-negative"):
        Miscalibration(3)(RECS, history=TRAIN, item_features=-FEATURES)


def test_user_group_breakdown_and_gap():
    ndcg = pd.Series([0.9197, 0.2961, np.nan, 1.0, 0.0], index=[f"u{i}" for i in range(5)])
    sex = pd.Series(["F", "M", "F", "F", "M"], index=ndcg.index, name="gender")
    table = group_breakdown(ndcg.to_frame("ndcg@3"), sex, n_resamples=200)
    assert table.loc[("ndcg@3", "F"), "users"] == 2
    assert table.loc[("ndcg@3", "F"), "mean"] == pytest.approx((0.9197 + 1.0) / 2)
    assert table.loc[("ndcg@3", "M"), "mean"] == pytest.approx(0.2961 / 2)
    gap = group_gap(ndcg, sex, n_resamples=500, seed=1)
    assert (gap["best"], gap["worst"]) == ("F", "M")
    assert gap["gap"] == pytest.approx((0.9197 + 1.0) / 2 - 0.2961 / 2)
    assert gap["low"] <= gap["gap"] <= gap["high"]
    assert group_gap(ndcg, sex, n_resamples=500, seed=1) == gap  # seeded
    with pytest.warns(DataWarning):
        one = group_gap(ndcg, pd.Series("F", index=ndcg.index), n_resamples=10)
    assert math.isnan(one["gap"])


def test_bands():
    assert age_bands(pd.Series([17, 18, 24, 25, 56, "x"])).tolist() == [
        "<18",
        "18-24",
        "18-24",
        "25-34",
        "56+",
        "unknown",
    ]
    assert activity_bands([5, 5, 5, 1, 9, 9]).tolist() == [
        "low",
        "low",
        "low",
        "low",
        "high",
        "high",
    ]


def test_bad_groups_input():
    with pytest.raises(ConfigError, match="ItemGroups"):
        group_exposure(RECS, "genres", k=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cuts"):
        ItemGroups.popularity_tiers(TRAIN, cuts=(0.8, 0.2))
    with pytest.raises(DataError, match="recs holds item index"):
        group_exposure(np.array([[7]]), GENRES, k=1)


def test_grouped_means_agree_with_fairlearn():
    import fairlearn.metrics as fairlearn

    rng = np.random.default_rng(0)
    values = pd.Series(rng.random(200), index=[f"u{i}" for i in range(200)])
    groups = pd.Series(rng.choice(["x", "y", "z"], size=200), index=values.index)
    frame = fairlearn.MetricFrame(
        metrics=lambda y_true, y_pred: float(np.mean(y_true)),
        y_true=values.to_numpy(),
        y_pred=values.to_numpy(),
        sensitive_features=groups.to_numpy(),
    )
    ours = group_breakdown(values.to_frame("m"), groups, n_resamples=10).loc["m", "mean"]
    pd.testing.assert_series_equal(
        ours, frame.by_group.astype(float), check_names=False, check_index_type=False
    )
    assert frame.difference() == pytest.approx(group_gap(values, groups, n_resamples=10)["gap"])
