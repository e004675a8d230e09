"""Tests of lmrec.data.split: partition properties (Hypothesis), reference checks, examples."""

from __future__ import annotations

import dataclasses
import math
import os
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap
from lmrec.data.split import (
    PROTOCOLS,
    Split,
    cold_start_items_split,
    cold_start_users_split,
    global_temporal_split,
    leave_one_out_split,
    random_split,
    split_dataset,
    user_temporal_split,
)
from lmrec.errors import ConfigError, DataError

#: Seed of the seeded tests; override with LMREC_TEST_SEED to try others.
SEED = int(os.environ.get("LMREC_TEST_SEED", "20240601"))
PROPERTY = settings(derandomize=True, max_examples=60, deadline=None)
RATIOS = [
    (0.8, 0.1, 0.1),
    (0.5, 0.25, 0.25),
    (0.6, 0.4),
    (0.7, 0.3),
    (0.34, 0.33, 0.33),
    (0.5, 0.2, 0.3),
    (0.9, 0.0, 0.1),
]


# ---------------------------------------------------------------------------- helpers
@st.composite
def frames(draw: st.DrawFn, *, timestamps: bool = True) -> pd.DataFrame:
    """Small interaction frames with unique (user, item) pairs and tie-prone timestamps."""
    n_users = draw(st.integers(1, 10))
    n_items = draw(st.integers(1, 25))
    pairs = []
    for u in range(n_users):
        # a uniform size, so that users big enough for every ratio are common
        size = draw(st.integers(0 if u else 1, n_items))
        pairs += [(u, i) for i in draw(st.permutations(range(n_items)))[:size]]
    pairs = [pairs[k] for k in draw(st.permutations(range(len(pairs))))]  # interleave users
    data: dict[str, list[object]] = {
        "user": [f"u{u}" for u, _ in pairs],
        "item": [f"i{i}" for _, i in pairs],
    }
    if timestamps:
        top = draw(st.sampled_from([10, 10**6]))  # many ties, or few
        data["timestamp"] = draw(
            st.lists(st.integers(0, top), min_size=len(pairs), max_size=len(pairs))
        )
    return pd.DataFrame(data)


def parts(split: Split) -> dict[str, Dataset]:
    out = {"train": split.train, "test": split.test}
    if split.valid is not None:
        out["valid"] = split.valid
    return out


def labels(split: Split) -> dict[tuple[str, str], str]:
    """Part name of every interaction, keyed by external (user, item) ids."""
    out: dict[tuple[str, str], str] = {}
    for name, part in parts(split).items():
        f = part.to_frame()
        for key in zip(f["user"], f["item"], strict=True):
            assert key not in out, f"{key} is in both {out[key]} and {name}"
            out[key] = name
    return out


def assert_partition(ds: Dataset, split: Split) -> None:
    """train + valid + test == input, row for row, with shared id maps."""
    ps = list(parts(split).values())
    assert sum(p.n_interactions for p in ps) == ds.n_interactions
    for p in ps:
        assert p.user_ids is ds.user_ids and p.item_ids is ds.item_ids
    keys = [set(zip(p.column("user_idx"), p.column("item_idx"), strict=True)) for p in ps]
    assert sum(len(k) for k in keys) == len(set().union(*keys))  # disjoint
    assert set().union(*keys) == set(zip(ds.column("user_idx"), ds.column("item_idx"), strict=True))
    both = pd.concat([p.interactions for p in ps], ignore_index=True)
    order = ["user_idx", "item_idx"]
    pd.testing.assert_frame_equal(
        both.sort_values(order, ignore_index=True),
        ds.interactions.sort_values(order, ignore_index=True),
    )


def per_user(ds: Dataset) -> dict[str, list[tuple[str, float, int]]]:
    """Rows of each external user as (item, timestamp, row position), in time order, ties by
    input row (the ``order`` column; the stored row without it)."""
    f = ds.to_frame()
    ts = f["timestamp"] if "timestamp" in f else pd.Series(np.zeros(len(f)))
    rows_at = ds.column("order") if ds.has_input_order else range(len(f))
    out: dict[str, list[tuple[str, float, int]]] = {}
    for pos, u, i, t in zip(rows_at, f["user"], f["item"], ts, strict=True):
        out.setdefault(u, []).append((i, float(t), pos))
    for rows in out.values():
        rows.sort(key=lambda r: (r[1], r[2]))
    return out


def part_counts(split: Split) -> dict[str, dict[str, int]]:
    """Per part name, interactions per external user."""
    return {name: p.to_frame()["user"].value_counts().to_dict() for name, p in parts(split).items()}


def floor_share(n: int, ratio: float) -> int:
    """floor(n * ratio) in exact decimal arithmetic (the ratios are short decimals)."""
    return math.floor(n * Fraction(str(ratio)))


def expected_counts(n: int, test: float, valid: float, min_train: int) -> tuple[int, int]:
    n_test = floor_share(n, test)
    n_valid = floor_share(n, valid)
    if n_test + n_valid > 0 and n - n_test - n_valid < min_train:
        return 0, 0
    return n_test, n_valid


def make(frame: dict[str, list[object]] | pd.DataFrame, name: str = "toy") -> Dataset:
    return Dataset.from_frame(pd.DataFrame(frame), name=name)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


@pytest.fixture
def grid() -> Dataset:
    """40 users x 25 items, each user with a seeded random subset of 10-25 items and times."""
    g = np.random.default_rng(SEED)
    rows = []
    for u in range(40):
        items = g.choice(25, size=int(g.integers(10, 26)), replace=False)
        rows += [(f"u{u}", f"i{i}", int(g.integers(0, 1000))) for i in items]
    return make(pd.DataFrame(rows, columns=["user", "item", "timestamp"]), name="grid")


# ---------------------------------------------------------------------------- properties
@PROPERTY
@given(
    frame=frames(timestamps=False),
    ratios=st.sampled_from(RATIOS),
    min_train=st.integers(0, 3),
    seed=st.integers(0, 2**32),
)
def test_random_split_matches_the_floor_rule(frame, ratios, min_train, seed):
    ds = make(frame)
    test = ratios[-1]
    valid = ratios[1] if len(ratios) == 3 else 0.0
    users = ds.to_frame()["user"].value_counts().to_dict()
    expected = {u: expected_counts(n, test, valid, min_train) for u, n in users.items()}
    with_valid = valid > 0
    if sum(t for t, _ in expected.values()) == 0 or (
        with_valid and sum(v for _, v in expected.values()) == 0
    ):
        event("expected DataError")
        with pytest.raises(DataError, match="empty"):
            random_split(ds, ratios=ratios, seed=seed, min_train=min_train)
        return
    split = random_split(ds, ratios=ratios, seed=seed, min_train=min_train)
    assert_partition(ds, split)
    assert (split.valid is not None) == with_valid
    got = part_counts(split)
    for u, n in users.items():
        n_test, n_valid = expected[u]
        assert got["test"].get(u, 0) == n_test
        assert got.get("valid", {}).get(u, 0) == n_valid
        if n_test + n_valid:
            # every held-out user keeps min_train rows; test and valid are within one row of
            # their share (floored), so train is within two (and never below its share)
            assert got["train"].get(u, 0) >= min_train
            assert 0 <= n * Fraction(str(test)) - n_test < 1
            assert 0 <= n * Fraction(str(valid)) - n_valid < 1
            assert 0 <= got["train"].get(u, 0) - n * Fraction(str(ratios[0])) < 2
    again = random_split(ds, ratios=ratios, seed=seed, min_train=min_train)
    assert labels(again) == labels(split)


@PROPERTY
@given(frame=frames(timestamps=False), seed=st.integers(0, 2**32), data=st.data())
def test_random_protocols_ignore_row_order(frame, seed, data):
    perm = data.draw(st.permutations(range(len(frame))))
    ds = make(frame)
    shuffled = make(frame.iloc[list(perm)].reset_index(drop=True))
    calls = [
        lambda d: random_split(d, ratios=(0.5, 0.5), seed=seed),
        lambda d: leave_one_out_split(d, valid=False, seed=seed),
        lambda d: cold_start_items_split(d, item_fraction=0.5, seed=seed),
        lambda d: cold_start_users_split(d, user_fraction=0.5, n_known=1, seed=seed),
    ]
    for call in calls:
        try:
            a = call(ds)
        except DataError:
            event("expected DataError")
            with pytest.raises(DataError):
                call(shuffled)
            continue
        assert labels(call(shuffled)) == labels(a)


@PROPERTY
@given(
    frame=frames(),
    test=st.sampled_from(
        [("test_n", 1), ("test_n", 2), ("test_fraction", 0.3), ("test_fraction", 0.5)]
    ),
    valid=st.sampled_from([None, ("valid_n", 1), ("valid_fraction", 0.2)]),
    min_train=st.integers(0, 2),
)
def test_user_temporal_split_holds_out_the_latest(frame, test, valid, min_train):
    ds = make(frame)
    kwargs = dict([test] + ([valid] if valid else []), min_train=min_train)
    expected: dict[tuple[str, str], str] = {}
    for u, rows in per_user(ds).items():
        n = len(rows)

        def count(spec, n=n):
            if spec is None:
                return 0
            return spec[1] if spec[0].endswith("_n") else floor_share(n, spec[1])

        n_test = count(test)
        n_valid = count(valid)
        if n_test + n_valid > 0 and n - n_test - n_valid < min_train:
            n_test = n_valid = 0
        for k, (item, _, _) in enumerate(reversed(rows)):
            expected[(u, item)] = (
                "test" if k < n_test else "valid" if k < n_test + n_valid else "train"
            )
    values = list(expected.values())
    if "test" not in values or "train" not in values or (valid and "valid" not in values):
        event("expected DataError")
        with pytest.raises(DataError, match="empty"):
            user_temporal_split(ds, **kwargs)
        return
    split = user_temporal_split(ds, **kwargs)
    assert_partition(ds, split)
    assert labels(split) == expected
    # never is a held-out interaction earlier than a train interaction of the same user
    f = {name: p.to_frame() for name, p in parts(split).items()}
    last_train = f["train"].groupby("user")["timestamp"].max()
    for name in ("test", "valid"):
        if name in f and len(f[name]):
            first = f[name].groupby("user")["timestamp"].min()
            assert (first >= last_train.reindex(first.index).fillna(-np.inf)).all()
            n_train = f["train"]["user"].value_counts().reindex(first.index).fillna(0)
            assert (n_train >= min_train).all()


@PROPERTY
@given(frame=frames(), ratios=st.sampled_from(RATIOS))
def test_global_temporal_split_cuts_at_quantiles(frame, ratios):
    ds = make(frame)
    ts = sorted(frame["timestamp"])
    n = len(ts)
    with_valid = len(ratios) == 3 and ratios[1] > 0
    n_test = floor_share(n, ratios[-1])
    n_held = n_test + (floor_share(n, ratios[1]) if with_valid else 0)
    if n_test == 0 or (with_valid and n_held == n_test):
        event("expected DataError")
        with pytest.raises(DataError):
            global_temporal_split(ds, ratios=ratios)
        return
    t_test = ts[n - n_test]
    t_valid = ts[n - n_held]
    expected = {
        (u, i): "test" if t >= t_test else "valid" if with_valid and t >= t_valid else "train"
        for u, i, t in zip(frame["user"], frame["item"], frame["timestamp"], strict=True)
    }
    values = list(expected.values())
    if "train" not in values or (with_valid and "valid" not in values):
        event("expected DataError")
        with pytest.raises(DataError, match="empty"):
            global_temporal_split(ds, ratios=ratios)
        return
    split = global_temporal_split(ds, ratios=ratios)
    assert_partition(ds, split)
    assert labels(split) == expected
    assert split.test.n_interactions >= n_test  # ties at the cut go to the later part
    assert split.train.column("timestamp").max() < split.test.column("timestamp").min()
    if with_valid:
        assert split.train.column("timestamp").max() < split.valid.column("timestamp").min()
        assert split.valid.column("timestamp").max() < split.test.column("timestamp").min()


@PROPERTY
@given(frame=frames(), valid=st.booleans(), seed=st.integers(0, 2**32))
def test_leave_one_out_split_holds_out_the_last(frame, valid, seed):
    ds = make(frame)
    need = 3 if valid else 2
    expected = {}
    for u, rows in per_user(ds).items():
        for k, (item, _, _) in enumerate(reversed(rows)):
            big = len(rows) >= need
            expected[(u, item)] = (
                "test" if big and k == 0 else "valid" if big and valid and k == 1 else "train"
            )
    if "test" not in expected.values():
        event("expected DataError")
        with pytest.raises(DataError, match=f"fewer than {need}"):
            leave_one_out_split(ds, valid=valid, seed=seed)
        return
    split = leave_one_out_split(ds, valid=valid, seed=seed)
    assert_partition(ds, split)
    assert labels(split) == expected
    assert split.seed is None  # timestamps decide; nothing random
    # Without timestamps: one random interaction per user, and the same users held out.
    no_ts = make(frame.drop(columns="timestamp"))
    random = leave_one_out_split(no_ts, valid=valid, seed=seed)
    assert_partition(no_ts, random)
    assert random.seed == seed
    assert part_counts(random)["test"] == part_counts(split)["test"]
    if valid:
        assert part_counts(random)["valid"] == part_counts(split)["valid"]


@PROPERTY
@given(
    frame=frames(timestamps=False),
    fractions=st.sampled_from([(0.2, 0.0), (0.5, 0.0), (0.3, 0.3), (0.25, 0.5)]),
    seed=st.integers(0, 2**32),
)
def test_cold_start_items_split_never_trains_on_held_out_items(frame, fractions, seed):
    ds = make(frame)
    f, v = fractions
    m = frame["item"].nunique()
    n_test = floor_share(m, f)
    n_valid = floor_share(m, v)
    if n_test == 0 or (v > 0 and n_valid == 0):
        event("expected DataError")
        with pytest.raises(DataError, match="hold out no item"):
            cold_start_items_split(ds, item_fraction=f, valid_fraction=v, seed=seed)
        return
    split = cold_start_items_split(ds, item_fraction=f, valid_fraction=v, seed=seed)
    assert_partition(ds, split)
    item_sets = {name: set(p.to_frame()["item"]) for name, p in parts(split).items()}
    assert len(item_sets["test"]) == n_test
    assert not item_sets["test"] & item_sets["train"]
    if v > 0:
        assert len(item_sets["valid"]) == n_valid
        assert not item_sets["valid"] & (item_sets["train"] | item_sets["test"])
    same = cold_start_items_split(ds, item_fraction=f, valid_fraction=v, seed=seed)
    assert labels(same) == labels(split)


@PROPERTY
@given(
    frame=frames(),
    fractions=st.sampled_from([(0.2, 0.0), (0.5, 0.0), (0.3, 0.3)]),
    n_known=st.integers(0, 3),
    with_ts=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_cold_start_users_split_reveals_only_n_known(frame, fractions, n_known, with_ts, seed):
    ds = make(frame if with_ts else frame.drop(columns="timestamp"))
    f, v = fractions
    m = frame["user"].nunique()
    n_test = floor_share(m, f)
    n_valid = floor_share(m, v)
    kwargs = dict(user_fraction=f, valid_fraction=v, seed=seed)
    if n_test == 0 or (v > 0 and n_valid == 0):
        event("expected DataError")
        with pytest.raises(DataError, match="hold out no user"):
            cold_start_users_split(ds, n_known=n_known, **kwargs)
        return
    base = cold_start_users_split(ds, n_known=0, **kwargs)
    held = {name: set(p.to_frame()["user"]) for name, p in parts(base).items() if name != "train"}
    assert len(held["test"]) == n_test and len(held.get("valid", ())) == (n_valid if v > 0 else 0)
    assert not held["test"] & set(base.train.to_frame()["user"])  # n_known=0: truly cold
    sizes = frame["user"].value_counts()
    if not any(sizes[u] > n_known for u in held["test"]) or (
        v > 0 and not any(sizes[u] > n_known for u in held["valid"])
    ):
        event("expected DataError")
        with pytest.raises(DataError, match="empty"):
            cold_start_users_split(ds, n_known=n_known, **kwargs)
        return
    split = cold_start_users_split(ds, n_known=n_known, **kwargs)
    assert_partition(ds, split)
    train = split.train.to_frame()
    rows = per_user(ds)
    for name, users in held.items():
        got = parts(split)[name].to_frame()
        assert set(got["user"]) <= users  # the same users for any n_known
        for u in users:
            known = train[train["user"] == u]
            assert len(known) == min(n_known, sizes[u])
            assert (got["user"] == u).sum() == max(sizes[u] - n_known, 0)
            if with_ts:
                assert set(known["item"]) == {i for i, _, _ in rows[u][:n_known]}
    if n_known > 0:
        # one seed: the known rows for n_known - 1 are a subset of those for n_known
        smaller = cold_start_users_split(ds, n_known=n_known - 1, **kwargs)
        small_train = {k for k, p in labels(smaller).items() if p == "train"}
        big_train = {k for k, p in labels(split).items() if p == "train"}
        assert small_train <= big_train


# ---------------------------------------------------------------------------- examples
def test_random_split_example_and_notes():
    ds = make({"user": ["a"] * 10 + ["b"] * 4, "item": list(range(10)) + list(range(4))})
    split = random_split(ds, ratios=(0.6, 0.2, 0.2), seed=SEED)
    counts = part_counts(split)
    assert counts == {"train": {"a": 6, "b": 4}, "valid": {"a": 2}, "test": {"a": 2}}
    assert split.protocol == "random(0.6/0.2/0.2)"
    assert split.seed == SEED
    assert "1 users have too few interactions for any held-out row" in " ".join(split.notes)
    assert split.train.name == "toy:train" and split.test.name == "toy:test"


def test_random_split_min_train_keeps_small_users_whole():
    ds = make({"user": ["a"] * 10 + ["b"] * 20, "item": list(range(10)) + list(range(20))})
    split = random_split(ds, ratios=(0.8, 0.1, 0.1), seed=SEED, min_train=9)
    assert part_counts(split) == {
        "train": {"a": 10, "b": 16},
        "valid": {"b": 2},
        "test": {"b": 2},
    }
    assert split.protocol == "random(0.8/0.1/0.1, min_train=9)"
    assert split.notes[0].startswith("1 users kept entirely in train")


def test_random_split_two_ratios_and_float_rounding():
    ds = make({"user": ["a"] * 100, "item": list(range(100))})
    split = random_split(ds, ratios=(0.71, 0.29), seed=SEED)
    assert split.valid is None
    assert split.test.n_interactions == 29  # 100 * 0.29 == 28.999999999999996 in floats
    again = random_split(ds, ratios=np.array([0.71, 0.29]), seed=SEED)
    assert labels(again) == labels(split)


def test_seeds_reproduce_and_differ(grid):
    a = random_split(grid, seed=1)
    assert labels(random_split(grid, seed=1)) == labels(a)
    assert labels(random_split(grid, seed=np.random.default_rng(1))) == labels(a)
    tests = {
        frozenset(k for k, p in labels(random_split(grid, seed=s)).items() if p == "test")
        for s in range(5)
    }
    assert len(tests) == 5
    fresh = random_split(grid)  # seed=None records the entropy it drew
    assert isinstance(fresh.seed, int)
    assert labels(random_split(grid, seed=fresh.seed)) == labels(fresh)
    assert random_split(grid, seed=np.random.default_rng(1)).seed is None


def test_splitting_never_touches_global_rng(grid):
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    random_split(grid, seed=3)
    cold_start_users_split(grid, seed=None, n_known=2)
    assert np.array_equal(np.random.get_state()[1], before)


def test_user_temporal_split_example_with_ties():
    ds = make(
        {
            "user": ["a"] * 5 + ["b"] * 3,
            "item": ["p", "q", "r", "s", "t", "p", "q", "r"],
            "timestamp": [5, 1, 3, 2, 4, 7, 9, 9],
        }
    )
    split = user_temporal_split(ds, test_n=1, valid_n=1)
    assert labels(split) == {
        ("a", "p"): "test",
        ("a", "t"): "valid",
        ("a", "q"): "train",
        ("a", "r"): "train",
        ("a", "s"): "train",
        ("b", "r"): "test",  # tied with q at t=9; the later row counts as later
        ("b", "q"): "valid",
        ("b", "p"): "train",
    }
    assert split.protocol == "user_temporal(test_n=1, valid_n=1)" and split.seed is None
    frac = user_temporal_split(ds, test_fraction=0.4)
    assert part_counts(frac)["test"] == {"a": 2, "b": 1}


def test_global_temporal_split_examples():
    ds = make({"user": list("aabbccddee"), "item": list("xyxyxyxyxy"), "timestamp": range(1, 11)})
    split = global_temporal_split(ds)
    assert sorted(split.test.column("timestamp")) == [10]
    assert sorted(split.valid.column("timestamp")) == [9]
    assert split.protocol == "global_temporal(0.8/0.1/0.1)"
    # ties at the cut go to the later part
    tied = make(
        {
            "user": list("aabbccddee"),
            "item": list("xyxyxyxyxy"),
            "timestamp": [1, 2, 3, 4, 5, 6, 7, 8, 8, 8],
        }
    )
    split = global_temporal_split(tied, ratios=(0.8, 0.2))
    assert sorted(split.test.column("timestamp")) == [8, 8, 8] and split.valid is None
    with pytest.raises(DataError, match="valid part empty"):
        global_temporal_split(tied, ratios=(0.8, 0.1, 0.1))
    # explicit cuts, as numbers or date-times
    assert global_temporal_split(ds, cuts=(5,)).test.n_interactions == 6
    assert global_temporal_split(ds, cuts=np.array([5.0])).test.n_interactions == 6
    with pytest.raises(DataError, match="run from 1 .* to 10 "):
        global_temporal_split(ds, cuts=(100,))
    split = global_temporal_split(ds, cuts=(4, 9))
    assert sorted(split.valid.column("timestamp")) == [4, 5, 6, 7, 8]
    assert global_temporal_split(ds, cuts=["1970-01-01 00:00:08"]).test.n_interactions == 3
    with pytest.raises(DataError, match="train part empty"):
        global_temporal_split(ds, cuts=(0,))


def test_global_temporal_split_counts_cold_test_users():
    ds = make(
        {"user": ["a", "a", "b", "c"], "item": ["x", "y", "x", "y"], "timestamp": [1, 2, 3, 4]}
    )
    split = global_temporal_split(ds, ratios=(0.5, 0.5))
    assert set(split.test.to_frame()["user"]) == {"b", "c"}
    assert "2 of 2 test users have no train interactions" in split.notes


def test_temporal_splits_need_complete_timestamps():
    ds = make({"user": ["a", "a"], "item": ["x", "y"]})
    with pytest.raises(DataError, match="timestamp column"):
        global_temporal_split(ds)
    with pytest.raises(DataError, match="timestamp column"):
        user_temporal_split(ds, test_n=1)
    nan = make({"user": ["a", "a", "a"], "item": ["x", "y", "z"], "timestamp": [1.0, np.nan, 3.0]})
    with pytest.raises(DataError, match="1 of 3 interactions .* missing"):
        user_temporal_split(nan, test_n=1)
    with pytest.raises(DataError, match="missing"):
        leave_one_out_split(nan)


def test_leave_one_out_example():
    ds = make(
        {
            "user": ["a", "b", "b", "c", "c", "c"],
            "item": ["x", "x", "y", "x", "y", "z"],
            "timestamp": [1, 1, 2, 3, 1, 2],
        }
    )
    split = leave_one_out_split(ds)
    assert labels(split) == {
        ("a", "x"): "train",
        ("b", "x"): "train",
        ("b", "y"): "train",
        ("c", "x"): "test",
        ("c", "z"): "valid",
        ("c", "y"): "train",
    }
    assert "2 users with fewer than 3 interactions kept entirely in train" in split.notes
    assert split.protocol == "loo(latest, valid)"
    no_valid = leave_one_out_split(ds, valid=False)
    assert part_counts(no_valid)["test"] == {"b": 1, "c": 1} and no_valid.valid is None


def test_cold_start_items_example(grid):
    split = cold_start_items_split(grid, item_fraction=0.2, valid_fraction=0.2, seed=SEED)
    test_items = set(split.test.to_frame()["item"])
    assert len(test_items) == 5 and len(set(split.valid.to_frame()["item"])) == 5
    assert split.test.n_interactions == int(
        np.isin(grid.to_frame()["item"], list(test_items)).sum()
    )
    assert split.protocol == "cold_items(0.2/0.2)"


def test_cold_start_users_example_with_known_interactions():
    ds = make(
        {
            "user": ["a"] * 4 + ["b"] * 4,
            "item": ["p", "q", "r", "s"] * 2,
            "timestamp": [4, 3, 2, 1, 1, 2, 3, 4],
        }
    )
    split = cold_start_users_split(ds, user_fraction=0.5, seed=SEED, n_known=2)
    (cold,) = set(split.test.to_frame()["user"])
    train = split.train.to_frame()
    known = set(train.loc[train["user"] == cold, "item"])
    assert known == ({"r", "s"} if cold == "a" else {"p", "q"})  # the two earliest
    assert split.protocol == "cold_users(0.5, n_known=2)"


def test_split_dataset_dispatches_and_lists_names(grid):
    assert labels(split_dataset(grid, "random", seed=4)) == labels(random_split(grid, seed=4))
    assert set(PROTOCOLS) == {
        "random",
        "global_temporal",
        "user_temporal",
        "loo",
        "cold_items",
        "cold_users",
    }
    with pytest.raises(ConfigError, match="Valid names: random, global_temporal, .*cold_users"):
        split_dataset(grid, "kfold")
    with pytest.raises(
        ConfigError, match=r"\['ratio'\].*Valid parameters: ratios, seed, min_train"
    ):
        split_dataset(grid, "random", ratio=(0.5, 0.5))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: random_split(d, ratios=(0.8, 0.3)), "must sum to 1"),
        (lambda d: random_split(d, ratios=(0.5, 0.2, 0.2, 0.1)), "2 numbers"),
        (lambda d: random_split(d, ratios="0.8"), "2 numbers"),
        (lambda d: random_split(d, ratios=(1.0, 0.0)), "train and test ratios > 0"),
        (lambda d: random_split(d, ratios=(1.2, -0.2)), r"numbers in \[0, 1\]"),
        (
            lambda d: random_split(d, min_train=-1),
            "'min_train' parameter of random_split must be an int >= 0. Got -1",
        ),
        (lambda d: random_split(d, seed="x"), "'seed' parameter"),
        (lambda d: random_split(d, seed=-3), "'seed' parameter"),
        (lambda d: random_split(d, seed=True), "'seed' parameter"),
        (
            lambda d: cold_start_items_split(d, item_fraction=1.5),
            r"The 'item_fraction' parameter of cold_start_items_split must be in \(0, 1\). "
            r"Got 1.5 instead.",
        ),
        (lambda d: cold_start_items_split(d, item_fraction=0.5, valid_fraction=0.5), "must be < 1"),
        (lambda d: cold_start_users_split(d, valid_fraction=-0.1), r"'valid_fraction'.*\[0, 1\)"),
        (lambda d: cold_start_users_split(d, n_known=1.5), "'n_known'"),
        (lambda d: user_temporal_split(d), "exactly one of 'test_fraction' and 'test_n'"),
        (lambda d: user_temporal_split(d, test_n=1, test_fraction=0.1), "only one of"),
        (lambda d: user_temporal_split(d, test_n=0), "'test_n' parameter .* int >= 1. Got 0"),
        (lambda d: user_temporal_split(d, test_fraction=0.6, valid_fraction=0.4), "must be < 1"),
        (lambda d: user_temporal_split(d, test_fraction=float("nan")), "'test_fraction'"),
        (lambda d: leave_one_out_split(d, valid="yes"), "'valid' parameter"),
        (lambda d: global_temporal_split(d, ratios=(0.9, 0.1), cuts=(3,)), "not both"),
        (lambda d: global_temporal_split(d, cuts=(5, 3)), "increasing"),
        (lambda d: global_temporal_split(d, cuts=("soon",)), "'cuts'"),
    ],
)
def test_bad_arguments_say_what_was_wrong(grid, call, message):
    with pytest.raises(ConfigError, match=message):
        call(grid)


def test_bad_inputs():
    with pytest.raises(TypeError, match="must be an lmrec.data.Dataset"):
        random_split(pd.DataFrame({"user": [1], "item": [1]}))
    empty = Dataset.from_frame(pd.DataFrame({"user": [], "item": []}))
    with pytest.raises(DataError, match="no interactions"):
        leave_one_out_split(empty)


def test_split_is_frozen_and_summarised(grid):
    split = leave_one_out_split(grid)
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.test = split.train  # type: ignore[misc]
    text = split.summary()
    assert text.startswith("loo(latest, valid) split")
    assert f"{grid.n_interactions - 80:,} rows" in text and "40 users" in text
    assert all(note in text for note in split.notes)


def test_vectorized_on_100k_interactions(rng):
    n_users, n_items, n = 5_000, 2_000, 100_000
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    frame = pd.DataFrame(
        {
            "user_idx": keys // n_items,
            "item_idx": keys % n_items,
            "weight": np.ones(n, np.float32),
            "timestamp": rng.integers(0, 10**9, n).astype(np.float64),
        }
    )
    ds = Dataset(frame, IdMap(np.arange(n_users)), IdMap(np.arange(n_items)), name="big")
    calls = {
        "random": dict(seed=SEED),
        "global_temporal": {},
        "user_temporal": dict(test_fraction=0.2, valid_n=1),
        "loo": dict(seed=SEED),
        "cold_items": dict(seed=SEED, valid_fraction=0.1),
        "cold_users": dict(seed=SEED, n_known=2),
    }
    key = ds.column("user_idx").astype(np.int64) * n_items + ds.column("item_idx")
    for protocol, kwargs in calls.items():
        split = split_dataset(ds, protocol, **kwargs)
        ps = list(parts(split).values())
        assert sum(p.n_interactions for p in ps) == n
        got = np.concatenate(
            [p.column("user_idx").astype(np.int64) * n_items + p.column("item_idx") for p in ps]
        )
        assert np.array_equal(np.sort(got), np.sort(key))
        assert split.test.n_interactions > 0
