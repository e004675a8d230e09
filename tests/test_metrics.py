"""Metric values checked against hand arithmetic, a slow reference, and properties.

The worked example (``WORKED_*``) is the one in ``docs/metrics.md``; keep them in sync.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lmrec.errors import ConfigError, DataError, DataWarning
from lmrec.eval import metrics as M
from lmrec.eval.metrics import (
    AUC,
    F1,
    MAP,
    METRICS,
    MRR,
    NDCG,
    RMSE,
    Coverage,
    GiniIndex,
    HitRate,
    IntraListDiversity,
    LogLoss,
    Novelty,
    Precision,
    Recall,
    auc,
    compute_ranking_metrics,
    f1,
    hit_matrix,
    item_exposure,
    log_loss,
    mae,
    parse_metric,
    relevant_counts,
    rmse,
)

RANKING = (Precision, Recall, NDCG, MAP, MRR, HitRate)
L3 = math.log2(3)  # discount of rank 2
L4 = 2.0  # log2(4), discount of rank 3


def csr(rows: list[set[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items))
    for u, items in enumerate(rows):
        dense[u, list(items)] = 1
    return sp.csr_matrix(dense)


# --------------------------------------------------------------- the worked example
# 6 catalog items, 5 users, lists of K = 3.
#   u0: relevant {0, 2}         recs [2, 1, 0]    hits at ranks 1 and 3
#   u1: relevant {0, 1, 2, 3}   recs [4, 1, -1]   more relevant than K; short list
#   u2: relevant {}             recs [0, 1, 2]    no test items: excluded
#   u3: relevant {3}            recs [3, 3, 4]    duplicate: the second 3 is no hit
#   u4: relevant {4}            recs [-1, -1, -1] empty list
WORKED_RECS = np.array([[2, 1, 0], [4, 1, -1], [0, 1, 2], [3, 3, 4], [-1, -1, -1]])
WORKED_TRUTH = csr([{0, 2}, {0, 1, 2, 3}, set(), {3}, {4}], 6)
WORKED_HITS = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
# Training interactions: item popularity 0, 3, 1, 1, 0, 0 among 4 training users (u4 has none).
WORKED_TRAIN = csr([{1}, {1, 2}, {3}, {1}, set()], 6)
WORKED_FEATURES = np.array(
    [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=float
)

NAN = math.nan
WORKED_PER_USER = {
    # u0, u1, u2 (excluded), u3, u4
    "precision@3": [2 / 3, 1 / 3, NAN, 1 / 3, 0.0],
    "recall@3": [2 / 2, 1 / 4, NAN, 1 / 1, 0.0],
    # u0: (1/log2(2) + 1/log2(4)) / (1 + 1/log2(3)); u1: (1/log2(3)) / (1 + 1/log2(3) + 1/2)
    "ndcg@3": [(1 + 1 / L4) / (1 + 1 / L3), (1 / L3) / (1 + 1 / L3 + 1 / L4), NAN, 1.0, 0.0],
    # u0: (P@1 + P@3) / min(3, 2) = (1 + 2/3) / 2; u1: P@2 / min(3, 4) = (1/2) / 3
    "map@3": [(1 + 2 / 3) / 2, (1 / 2) / 3, NAN, 1.0, 0.0],
    "mrr@3": [1.0, 1 / 2, NAN, 1.0, 0.0],
    "hit_rate@3": [1.0, 1.0, NAN, 1.0, 0.0],
    "precision@1": [1.0, 0.0, NAN, 1.0, 0.0],
    "recall@1": [1 / 2, 0.0, NAN, 1.0, 0.0],
    "ndcg@1": [1.0, 0.0, NAN, 1.0, 0.0],
    # ILD: u0 and u2 {0, 1, 2}: pairs (0,1) -> 0, (0,2) -> 1, (1,2) -> 1 => 2/3
    #      u1 {4, 1}: orthogonal -> 1; u3 {3, 4}: 1 - 1/sqrt(2); u4: empty -> NaN
    "ild@3": [2 / 3, 1.0, 2 / 3, 1 - 1 / math.sqrt(2), NAN],
}
WORKED_SUMMARY = {
    "precision@3": (2 / 3 + 1 / 3 + 1 / 3 + 0) / 4,  # = 1/3
    "recall@3": (1 + 1 / 4 + 1 + 0) / 4,  # = 0.5625
    "ndcg@3": 0.5539507,  # (0.9197208 + 0.2960819 + 1 + 0) / 4
    "map@3": (5 / 6 + 1 / 6 + 1 + 0) / 4,  # = 0.5
    "mrr@3": (1 + 1 / 2 + 1 + 0) / 4,  # = 0.625
    "hit_rate@3": 3 / 4,
    # Items in lists: {0, 1, 2, 3, 4} of 6
    "coverage@3": 5 / 6,
    # Exposure (lists containing each item) 2, 3, 2, 1, 2, 0 -> sorted 0, 1, 2, 2, 2, 3;
    # weights 2i - n - 1 = -5, -3, -1, 1, 3, 5: (0 - 3 - 2 + 2 + 6 + 15) / (6 * 10) = 18 / 60
    "gini@3": 0.3,
    # p = [1/5 (unseen), 3/4, 1/4, 1/4, 1/5 (unseen), 1/5]; bits = -log2 p.
    # 10 slots: u0 {2, 1, 0}, u1 {4, 1}, u2 {0, 1, 2}, u3 {3, 4} (duplicate 3 once)
    # u0 and u2: 2 + log2(4/3) + log2(5); u1: log2(5) + log2(4/3); u3: 2 + log2(5)
    "novelty@3": (6 + 3 * math.log2(4 / 3) + 4 * math.log2(5)) / 10,  # = 1.6532823
    "ild@3": (2 / 3 + 1 + 2 / 3 + 1 - 1 / math.sqrt(2)) / 4,  # = 0.6565567
}


DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def _doc_number(text: str) -> float:
    """A number as docs/metrics.md writes it: 0.5540, 1/3 or 2/2."""
    text = text.strip().strip("`")
    if "/" in text:
        num, den = text.split("/")
        return float(num) / float(den)
    return float(text)


def test_docs_worked_example_states_what_the_code_computes():
    """The means and beyond-accuracy values printed in docs/metrics.md's worked example
    are the library's results on the same lists (the docs cannot drift from the code)."""
    text = DOCS.read_text().split("## Worked example\n", 1)[1]
    means = {
        m.group(1): _doc_number(m.group(2))
        for m in re.finditer(r"^\| (\w+@3) \|.*\| ([^|]+) \|$", text, re.M)
    }
    assert set(means) == {"precision@3", "recall@3", "ndcg@3", "map@3", "mrr@3", "hit_rate@3"}
    bullets = dict(re.findall(r"^- \*\*(\w+@3)\*\*(.*?)(?=^- |\Z|^\S)", text, re.M | re.S))
    for name in ("coverage@3", "gini@3", "novelty@3", "ild@3"):
        means[name] = float(re.findall(r"= ([\d.]+)", bullets[name])[-1].rstrip("."))
    summary, _ = compute_ranking_metrics(
        WORKED_RECS,
        WORKED_TRUTH,
        list(means),
        n_items=6,
        train=WORKED_TRAIN,
        item_features=WORKED_FEATURES,
    )
    for name, documented in means.items():
        assert summary[name] == pytest.approx(documented, abs=5e-5), name


def test_worked_example_hit_matrix():
    np.testing.assert_array_equal(hit_matrix(WORKED_RECS, WORKED_TRUTH), WORKED_HITS)
    np.testing.assert_array_equal(relevant_counts(WORKED_TRUTH), [2, 4, 0, 1, 1])


@pytest.mark.parametrize("spec", [s for s in WORKED_PER_USER if not s.startswith("ild")])
def test_worked_example_ranking_metrics(spec):
    metric = parse_metric(spec)
    np.testing.assert_allclose(metric.per_user(WORKED_RECS, WORKED_TRUTH), WORKED_PER_USER[spec])
    expected = np.nanmean(WORKED_PER_USER[spec])
    assert metric(WORKED_RECS, WORKED_TRUTH) == pytest.approx(expected)
    if spec in WORKED_SUMMARY:
        assert metric(WORKED_RECS, WORKED_TRUTH) == pytest.approx(WORKED_SUMMARY[spec])


def test_worked_example_beyond_metrics():
    assert Coverage(3)(WORKED_RECS, n_items=6) == pytest.approx(WORKED_SUMMARY["coverage@3"])
    assert GiniIndex(3)(WORKED_RECS, n_items=6) == pytest.approx(WORKED_SUMMARY["gini@3"])
    assert Novelty(3)(WORKED_RECS, train=WORKED_TRAIN) == pytest.approx(WORKED_SUMMARY["novelty@3"])
    ild = IntraListDiversity(3)
    np.testing.assert_allclose(
        ild.per_user(WORKED_RECS, item_features=WORKED_FEATURES), WORKED_PER_USER["ild@3"]
    )
    assert ild(WORKED_RECS, item_features=WORKED_FEATURES) == pytest.approx(WORKED_SUMMARY["ild@3"])
    np.testing.assert_array_equal(item_exposure(WORKED_RECS, 6), [2, 3, 2, 1, 2, 0])


def test_worked_example_through_compute_ranking_metrics():
    specs = list(WORKED_SUMMARY)
    summary, per_user = compute_ranking_metrics(
        WORKED_RECS, WORKED_TRUTH, specs, train=WORKED_TRAIN, item_features=WORKED_FEATURES
    )
    assert list(summary) == specs
    for spec, value in WORKED_SUMMARY.items():
        assert summary[spec] == pytest.approx(value), spec
    # Coverage, Gini and novelty describe the whole matrix: no per-user values.
    assert set(per_user) == {
        s for s in specs if s.split("@")[0] not in {"coverage", "gini", "novelty"}
    }
    np.testing.assert_allclose(per_user["ndcg@3"], WORKED_PER_USER["ndcg@3"])
    np.testing.assert_allclose(per_user["ild@3"], WORKED_PER_USER["ild@3"])


# ------------------------------------------------------------------ hit matrix


def test_hit_matrix_duplicates_only_first_occurrence_hits():
    truth = csr([{1}], 3)
    np.testing.assert_array_equal(hit_matrix([[1, 1, 0, 1]], truth), [[True, False, False, False]])
    # The duplicate cannot push precision or recall past their bounds.
    assert Recall(4)(np.array([[1, 1, 1, 1]]), truth) == 1.0
    assert Precision(4)(np.array([[1, 1, 1, 1]]), truth) == 0.25


def test_hit_matrix_padding_never_hits_even_next_to_item_zero():
    truth = csr([{0}, {0}], 3)
    # -1 must not be read as item n_items - 1 of the previous user's key range.
    np.testing.assert_array_equal(hit_matrix([[-1, 0], [0, -1]], truth), [[0, 1], [1, 0]])
    truth_last = csr([{2}, {0}], 3)
    np.testing.assert_array_equal(hit_matrix([[0, 1], [-1, 2]], truth_last), [[0, 0], [0, 0]])


def test_hit_matrix_ignores_explicit_zeros_and_accepts_non_canonical_input():
    # Duplicated, unsorted COO entries; one explicit zero (item 2 of user 0).
    coo = sp.coo_matrix(([1.0, 0.0, 1.0, 1.0], ([0, 0, 1, 0], [3, 2, 0, 3])), shape=(2, 4))
    before = (coo.row.copy(), coo.col.copy(), coo.data.copy())
    hits = hit_matrix(np.array([[2, 3], [0, 1]]), coo)
    np.testing.assert_array_equal(hits, [[False, True], [True, False]])
    np.testing.assert_array_equal(relevant_counts(coo), [1, 1])
    for a, b in zip(before, (coo.row, coo.col, coo.data), strict=True):
        np.testing.assert_array_equal(a, b)  # caller input untouched

    unsorted = sp.csr_matrix((np.ones(3), np.array([3, 1, 0]), np.array([0, 2, 3])), shape=(2, 4))
    assert not unsorted.has_sorted_indices
    np.testing.assert_array_equal(hit_matrix([[1, 3], [0, 2]], unsorted), [[1, 1], [1, 0]])
    assert not unsorted.has_sorted_indices


def test_hit_matrix_empty_shapes():
    assert hit_matrix(np.zeros((0, 3), int), sp.csr_matrix((0, 4))).shape == (0, 3)
    assert hit_matrix(np.zeros((2, 0), int), csr([{1}, {2}], 4)).shape == (2, 0)
    assert not hit_matrix([[0, 1]], csr([set()], 4)).any()


@pytest.mark.parametrize(
    ("recs", "match"),
    [
        (np.array([0, 1]), "2-D"),
        (np.array([[0.0, 1.0]]), "integer"),
        (np.array([[0, -2]]), "-1 as padding"),
        (np.array([[0, 4]]), "n_items=4"),
        (np.array([[0, 1], [1, 2]]), "rows"),
    ],
)
def test_hit_matrix_rejects_bad_recs(recs, match):
    with pytest.raises(DataError, match=match):
        hit_matrix(recs, csr([{1}], 4))


def test_truth_must_be_sparse():
    with pytest.raises(DataError, match=r"scipy\.sparse"):
        hit_matrix([[0]], np.array([[1]]))


# ------------------------------------------------------------------ ranking metrics


@pytest.mark.parametrize("cls", RANKING)
@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "10", None])
def test_k_is_validated(cls, bad):
    with pytest.raises(ConfigError, match=r"'k' parameter of .* must be an int >= 1"):
        cls(bad)


@pytest.mark.parametrize("cls", RANKING)
def test_metric_objects_are_frozen_and_named(cls):
    metric = cls(np.int64(5))
    assert metric.k == 5 and type(metric.k) is int
    assert metric.name == f"{metric.label}@5"
    assert parse_metric(metric.name) == metric
    with pytest.raises(dataclasses.FrozenInstanceError):
        metric.k = 3  # type: ignore[misc]


@pytest.mark.parametrize("cls", RANKING)
def test_all_users_without_relevant_items_warns_and_returns_nan(cls):
    truth = csr([set(), set()], 4)
    with pytest.warns(DataWarning, match="no user has a relevant item"):
        value = cls(3)(np.array([[0, 1, 2], [3, -1, -1]]), truth)
    assert math.isnan(value)
    with pytest.warns(DataWarning):
        assert math.isnan(cls(3)(np.zeros((0, 3), int), sp.csr_matrix((0, 4))))


@pytest.mark.parametrize("cls", RANKING)
def test_empty_lists_score_zero_for_users_with_relevant_items(cls):
    recs = np.full((2, 3), -1)
    np.testing.assert_array_equal(cls(3).per_user(recs, csr([{0}, set()], 4)), [0.0, np.nan])
    # Zero-width lists behave the same as all-padding lists.
    np.testing.assert_array_equal(cls(3).per_user(recs[:, :0], csr([{0}, set()], 4)), [0, np.nan])


def test_only_first_k_columns_count_and_short_hits_are_padding():
    truth = csr([{3}], 5)
    recs = np.array([[0, 1, 3]])
    assert HitRate(2)(recs, truth) == 0.0  # the hit is at rank 3
    assert HitRate(3)(recs, truth) == 1.0
    # A 2-column hit matrix given to a k=5 metric: denominators still use k.
    hits = np.array([[True, False]])
    assert Precision(5).per_user_from_hits(hits, [1])[0] == 1 / 5
    # IDCG over min(5, 3) = 3 ideal positions even though the list has 2 slots.
    assert NDCG(5).per_user_from_hits(hits, [3])[0] == pytest.approx(1 / (1 + 1 / L3 + 1 / L4))


def test_per_user_from_hits_validates_shapes():
    with pytest.raises(DataError, match="2-D bool"):
        Precision(2).per_user_from_hits(np.zeros(3, bool), [1, 1, 1])
    with pytest.raises(DataError, match="n_relevant"):
        Precision(2).per_user_from_hits(np.zeros((3, 2), bool), [1, 1])


def test_fewer_relevant_than_k_still_allows_perfect_scores():
    truth = csr([{0, 1}], 10)
    recs = np.array([[1, 0, 5, 6, 7]])
    assert NDCG(5)(recs, truth) == 1.0
    assert MAP(5)(recs, truth) == 1.0  # (1/1 + 2/2) / min(5, 2)
    assert Recall(5)(recs, truth) == 1.0
    assert Precision(5)(recs, truth) == 2 / 5  # precision cannot reach 1 here, by design


# ------------------------------------------------------------------ beyond-accuracy


def test_gini_uniform_exposure_is_zero_and_single_item_is_n_minus_1_over_n():
    assert GiniIndex(2)(np.array([[0, 1], [2, 3], [4, 5]]), n_items=6) == pytest.approx(0.0)
    # Exposure [3, 0, 0, 0, 0]: weights for sorted counts [0, 0, 0, 0, 3] are (-4..4 step 2);
    # 4 * 3 / (5 * 3) = 4/5
    assert GiniIndex(1)(np.array([[0], [0], [0]]), n_items=5) == pytest.approx(4 / 5)
    # Items never recommended count: uniform over 2 of 4 items is not equal exposure.
    # sorted [0, 0, 1, 1], weights [-3, -1, 1, 3]: (1 + 3) / (4 * 2) = 0.5
    assert GiniIndex(1)(np.array([[0], [1]]), n_items=4) == pytest.approx(0.5)
    assert GiniIndex(1)(np.array([[0]]), n_items=1) == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda r: Coverage(2)(r, n_items=3),
        lambda r: GiniIndex(2)(r, n_items=3),
        lambda r: Novelty(2)(r, train=csr([{0}], 3)),
        lambda r: IntraListDiversity(2)(r, item_features=np.eye(3)),
    ],
)
def test_beyond_metrics_on_empty_recommendations_warn_and_return_nan(call):
    for recs in (np.full((2, 2), -1), np.zeros((0, 2), int)):
        with pytest.warns(DataWarning):
            assert math.isnan(call(recs))


def test_coverage_counts_only_top_k_and_validates_n_items():
    recs = np.array([[0, 1, 2], [0, 3, -1]])
    assert Coverage(1)(recs, n_items=4) == 1 / 4
    assert Coverage(2)(recs, n_items=4) == 3 / 4
    with pytest.raises(DataError, match="n_items must be an int >= 1"):
        Coverage(2)(recs, n_items=0)
    with pytest.raises(DataError, match="n_items=3"):
        Coverage(3)(recs, n_items=3)


def test_novelty_explicit_zero_in_train_is_no_interaction():
    train = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0]]))
    train_with_zero = sp.csr_matrix((np.array([1.0, 0.0, 1.0]), ([0, 0, 1], [0, 1, 0])), (2, 2))
    recs = np.array([[1]])
    # Item 1 unseen: p = 1 / (2 + 1), log2(3) bits either way.
    assert Novelty(1)(recs, train=train) == pytest.approx(math.log2(3))
    assert Novelty(1)(recs, train=train_with_zero) == pytest.approx(math.log2(3))
    assert Novelty(1)(np.array([[0]]), train=train) == 0.0  # everyone has item 0


def _ild_reference(items: list[int], features: np.ndarray) -> float:
    items = list(dict.fromkeys(i for i in items if i >= 0))
    if len(items) < 2:
        return math.nan
    dists = []
    for i, j in itertools.combinations(items, 2):
        a, b = features[i], features[j]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        cos = 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))
        dists.append(1.0 - cos)
    return float(np.mean(dists))


def test_ild_matches_pairwise_reference_for_embeddings_and_sparse_features():
    rng = np.random.default_rng(7)
    features = rng.normal(size=(12, 5))
    features[4] = 0.0  # a zero row has cosine 0 with everything
    recs = rng.integers(-1, 12, size=(40, 6))
    expected = [_ild_reference(list(row), features) for row in recs]
    ild = IntraListDiversity(6)
    np.testing.assert_allclose(ild.per_user(recs, item_features=features), expected, atol=1e-12)
    got_sparse = ild.per_user(recs, item_features=sp.csr_matrix(features))
    np.testing.assert_allclose(got_sparse, expected, atol=1e-12)


def test_ild_chunks_users(monkeypatch):
    from lmrec.eval import beyond

    monkeypatch.setattr(beyond, "_ILD_CHUNK", 3)
    recs = WORKED_RECS
    np.testing.assert_allclose(
        IntraListDiversity(3).per_user(recs, item_features=WORKED_FEATURES),
        WORKED_PER_USER["ild@3"],
    )


def test_ild_rejects_bad_features():
    with pytest.raises(DataError, match="2-D"):
        IntraListDiversity(2)([[0, 1]], item_features=np.ones(3))
    with pytest.raises(DataError, match="NaN"):
        IntraListDiversity(2)([[0, 1]], item_features=np.full((2, 2), np.nan))
    with pytest.raises(DataError, match="n_items=2"):
        IntraListDiversity(2)([[0, 2]], item_features=np.ones((2, 2)))


# ------------------------------------------------------------------ pointwise


def _auc_brute_force(y, s):
    pos = [b for a, b in zip(y, s, strict=True) if a == 1]
    neg = [b for a, b in zip(y, s, strict=True) if a == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_with_ties_matches_pairwise_count():
    # pos scores [0.8, 0.4, 0.4], neg scores [0.4, 0.1]:
    # (0.8, 0.4) 1, (0.8, 0.1) 1, (0.4, 0.4) 1/2 twice, (0.4, 0.1) 1 twice -> 5 / 6
    y, s = [1, 1, 1, 0, 0], [0.8, 0.4, 0.4, 0.4, 0.1]
    assert auc(y, s) == pytest.approx(5 / 6)
    assert auc(y, s) == pytest.approx(_auc_brute_force(y, s))
    assert auc([True, False], [0.3, 0.3]) == 0.5
    assert AUC()(np.array([0, 1]), np.array([0.1, 0.2])) == 1.0


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4)), min_size=2, max_size=30))
def test_auc_property_matches_brute_force(pairs):
    y = [int(a) for a, _ in pairs]
    s = [float(b) for _, b in pairs]  # few distinct values: many ties
    if len(set(y)) < 2:
        with pytest.warns(DataWarning, match="one class"):
            assert math.isnan(auc(y, s))
    else:
        assert auc(y, s) == pytest.approx(_auc_brute_force(y, s))


def test_pointwise_hand_values():
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))  # errors 0, 0, 2
    assert RMSE()([2.0], [2.0]) == 0.0
    assert mae([1, 2, 3], [2, 2, 0]) == pytest.approx(4 / 3)  # |1| + 0 + |3|
    # -(ln 0.9 + ln(1 - 0.2) + ln 0.5) / 3
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.5)) / 3
    assert log_loss([1, 0, 1], [0.9, 0.2, 0.5]) == pytest.approx(expected)
    # p = 0 for a positive is clipped to eps: -ln(1e-7) = 16.118
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-7))
    assert LogLoss(eps=1e-3)([1], [0.0]) == pytest.approx(-math.log(1e-3))
    # threshold 0.5: predictions [1, 1, 0, 1]; TP 2, FP 1, FN 1 -> 4 / 6
    assert f1([1, 0, 1, 1], [0.5, 0.7, 0.49, 0.9]) == pytest.approx(2 / 3)
    assert F1(threshold=0.8)([1, 0, 1, 1], [0.5, 0.7, 0.49, 0.9]) == pytest.approx(2 / 4)


@pytest.mark.parametrize("fn", [rmse, mae, auc, log_loss, f1])
def test_pointwise_empty_input_warns_and_returns_nan(fn):
    with pytest.warns(DataWarning, match="empty input"):
        assert math.isnan(fn([], []))


@pytest.mark.parametrize("fn", [rmse, mae, auc, log_loss, f1])
def test_pointwise_length_mismatch_and_nan_are_errors(fn):
    with pytest.raises(DataError, match="values but the prediction has"):
        fn([1, 0], [0.5])
    with pytest.raises(DataError, match="NaN"):
        fn([1, 0], [0.5, np.nan])


def test_pointwise_label_and_probability_checks():
    with pytest.raises(DataError, match="only 0 and 1"):
        auc([1, 2], [0.1, 0.2])
    with pytest.raises(DataError, match=r"probabilities in \[0, 1\]"):
        log_loss([1, 0], [1.5, 0.2])
    with pytest.raises(ConfigError, match="eps"):
        log_loss([1], [0.5], eps=0.0)
    with pytest.raises(ConfigError, match="eps"):
        LogLoss(eps=0.7)
    with pytest.warns(DataWarning, match="undefined"):
        assert math.isnan(f1([0, 0], [0.1, 0.2]))
    with pytest.warns(DataWarning, match="one class"):
        assert math.isnan(auc([1, 1], [0.1, 0.2]))


# ------------------------------------------------------------------ registry


def test_parse_metric_specs():
    assert parse_metric("ndcg@10") == NDCG(10)
    assert parse_metric(" Recall@20 ") == Recall(20)
    assert parse_metric("COVERAGE@10") == Coverage(10)
    assert parse_metric("ild@5") == IntraListDiversity(5)
    assert parse_metric("rmse") == RMSE()
    assert parse_metric("log_loss") == LogLoss()


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_registered_name_round_trips(name):
    metric = parse_metric(f"{name}@7" if hasattr(METRICS[name], "label") else name)
    assert metric.name == (f"{name}@7" if hasattr(METRICS[name], "label") else name)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("ndgc@10", r"Unknown metric 'ndgc@10'\. Valid metric names are: precision, recall, ndcg"),
        ("ndcg", "needs a list cut-off"),
        ("ndcg@", "must be an int >= 1"),
        ("ndcg@ten", "must be an int >= 1"),
        ("ndcg@0", r"'k' parameter of NDCG must be an int >= 1\. Got 0"),
        ("rmse@10", "pointwise and takes no '@k'"),
        (10, "must be a string"),
    ],
)
def test_parse_metric_errors(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_metric(spec)


def test_compute_ranking_metrics_missing_arguments_and_pointwise_specs():
    with pytest.raises(ConfigError, match=r"'novelty@5' needs the 'train' argument"):
        compute_ranking_metrics(WORKED_RECS, WORKED_TRUTH, ["ndcg@5", "novelty@5"])
    with pytest.raises(ConfigError, match=r"'ild@5' needs the 'item_features' argument"):
        compute_ranking_metrics(WORKED_RECS, WORKED_TRUTH, ["ild@5"])
    with pytest.raises(ConfigError, match="pointwise"):
        compute_ranking_metrics(WORKED_RECS, WORKED_TRUTH, ["ndcg@5", "rmse"])


def test_compute_ranking_metrics_shape_checks():
    with pytest.raises(DataError, match="n_items=7"):
        compute_ranking_metrics(WORKED_RECS, WORKED_TRUTH, ["ndcg@3"], n_items=7)
    with pytest.raises(DataError, match="train has 5 item columns"):
        compute_ranking_metrics(
            WORKED_RECS, WORKED_TRUTH, ["novelty@3"], train=sp.csr_matrix((5, 5))
        )
    with pytest.raises(DataError, match="item_features has 2 rows"):
        compute_ranking_metrics(WORKED_RECS, WORKED_TRUTH, ["ild@3"], item_features=np.ones((2, 2)))
    with pytest.raises(DataError, match="rows"):
        compute_ranking_metrics(WORKED_RECS[:2], WORKED_TRUTH, ["ndcg@3"])


def test_truth_may_hold_items_outside_the_catalog():
    # Catalog of 5 items; truth has a 6th column: relevant but unrecommendable.
    truth = csr([{0, 5}], 6)
    summary, _ = compute_ranking_metrics(
        np.array([[0, 1]]), truth, ["recall@2", "coverage@2"], n_items=5
    )
    assert summary == {"recall@2": 0.5, "coverage@2": 2 / 5}
    with pytest.raises(DataError, match="n_items=5"):
        compute_ranking_metrics(np.array([[5, 1]]), truth, ["recall@2"], n_items=5)


def test_compute_ranking_metrics_joins_once_at_max_k(monkeypatch):
    calls = []
    real = M.hit_matrix

    def counting(recs, truth):
        calls.append(np.asarray(recs).shape)
        return real(recs, truth)

    monkeypatch.setattr(M, "hit_matrix", counting)
    specs = ["ndcg@1", "recall@2", NDCG(2), "map@2", "coverage@3"]
    summary, per_user = compute_ranking_metrics(WORKED_RECS, WORKED_TRUTH, specs)
    assert calls == [(5, 3)]
    assert list(summary) == ["ndcg@1", "recall@2", "ndcg@2", "map@2", "coverage@3"]
    for name in ("ndcg@1", "recall@2", "ndcg@2", "map@2"):
        expected = parse_metric(name).per_user(WORKED_RECS, WORKED_TRUTH)
        np.testing.assert_allclose(per_user[name], expected)


def test_compute_ranking_metrics_warns_once_per_metric_when_nothing_to_score():
    truth = csr([set(), set()], 3)
    with pytest.warns(DataWarning) as record:
        summary, _ = compute_ranking_metrics(np.array([[0], [1]]), truth, ["ndcg@1", "mrr@1"])
    assert all(math.isnan(v) for v in summary.values())
    assert len(record) == 2


# ------------------------------------------------------------------ properties


def _reference(metric: str, row: list[int], relevant: set[int], k: int) -> float:
    """Slow, literal per-user definitions (docs/metrics.md)."""
    if not relevant:
        return math.nan
    seen: set[int] = set()
    rel = []
    for item in row[:k]:
        rel.append(1 if item >= 0 and item in relevant and item not in seen else 0)
        if item >= 0:
            seen.add(item)
    n_rel = len(relevant)
    if metric == "precision":
        return sum(rel) / k
    if metric == "recall":
        return sum(rel) / n_rel
    if metric == "ndcg":
        dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, n_rel)))
        return dcg / idcg
    if metric == "map":
        total, found = 0.0, 0
        for i, r in enumerate(rel):
            if r:
                found += 1
                total += found / (i + 1)
        return total / min(k, n_rel)
    if metric == "mrr":
        return next((1 / (i + 1) for i, r in enumerate(rel) if r), 0.0)
    if metric == "hit_rate":
        return float(any(rel))
    raise AssertionError(metric)


@st.composite
def ranking_case(draw):
    n_items = draw(st.integers(1, 8))
    n_users = draw(st.integers(0, 6))
    width = draw(st.integers(0, 6))
    recs = np.array(
        draw(
            st.lists(
                st.lists(st.integers(-1, n_items - 1), min_size=width, max_size=width),
                min_size=n_users,
                max_size=n_users,
            )
        ),
        dtype=np.int64,
    ).reshape(n_users, width)
    relevant = [
        draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)) for _ in range(n_users)
    ]
    k = draw(st.integers(1, 7))
    return recs, relevant, csr(relevant, n_items), k


@settings(max_examples=300, derandomize=True, deadline=None)
@given(ranking_case())
def test_vectorized_metrics_equal_reference_and_stay_in_unit_interval(case):
    recs, relevant, truth, k = case
    for cls in RANKING:
        metric = cls(k)
        got = metric.per_user(recs, truth)
        expected = [
            _reference(metric.label, list(row), rel, k)
            for row, rel in zip(recs, relevant, strict=True)
        ]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        finite = got[~np.isnan(got)]
        assert ((finite >= 0) & (finite <= 1 + 1e-12)).all()
        assert np.isnan(got).tolist() == [not rel for rel in relevant]


@settings(max_examples=200, derandomize=True, deadline=None)
@given(ranking_case(), st.randoms(use_true_random=False))
def test_ndcg_is_one_when_top_positions_are_all_relevant(case, rnd):
    _, relevant, truth, k = case
    n_items = truth.shape[1]
    recs = np.full((len(relevant), k), -1, dtype=np.int64)
    for u, rel in enumerate(relevant):
        good = sorted(rel)
        rnd.shuffle(good)
        m = min(k, len(good))
        rest = [i for i in range(n_items) if i not in rel]
        rnd.shuffle(rest)
        row = good[:m] + rest[: k - m]
        recs[u, : len(row)] = row
    got = NDCG(k).per_user(recs, truth)
    has = np.array([bool(r) for r in relevant], dtype=bool)
    np.testing.assert_allclose(got[has], 1.0)
    if has.any():
        assert NDCG(k)(recs, truth) == pytest.approx(1.0)
        assert MAP(k)(recs, truth) == pytest.approx(1.0)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(ranking_case())
def test_beyond_metrics_bounds(case):
    recs, _, truth, k = case
    n_items = truth.shape[1]
    if (recs[:, :k] >= 0).any():
        assert 0 < Coverage(k)(recs, n_items=n_items) <= 1
        assert 0 <= GiniIndex(k)(recs, n_items=n_items) <= (n_items - 1) / n_items + 1e-12
        assert Novelty(k)(recs, train=truth) >= 0
