"""User sequences in time order (lmrec.data.sequences) and the input-order tie rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset, leave_one_out_split
from lmrec.data.sequences import Sequences, time_order, user_sequences
from lmrec.errors import DataError, DataWarning


def frame() -> pd.DataFrame:
    # user a: z and y tie at t=5, z comes first in the input; item ids sort the other way
    return pd.DataFrame(
        {
            "user": ["a", "b", "a", "a", "b", "a"],
            "item": ["z", "x", "y", "x", "w", "w"],
            "timestamp": [5, 3, 5, 9, 3, 1],
        }
    )


def names(ds: Dataset, seqs: Sequences, user: str) -> list[str]:
    return ds.item_ids.lookup(seqs.of(int(ds.user_ids.index([user])[0]))).tolist()


def test_ties_keep_input_order_not_item_order():
    ds = Dataset.from_frame(frame())
    seqs = user_sequences(ds)
    assert names(ds, seqs, "a") == ["w", "z", "y", "x"]
    assert names(ds, seqs, "b") == ["x", "w"]  # tied at t=3: input order, not w < x


def test_input_order_survives_subset_concat_save_load(tmp_path):
    ds = Dataset.from_frame(frame())
    assert ds.has_input_order
    again = Dataset.load(ds.save(tmp_path / "ds"))
    assert names(again, user_sequences(again), "b") == ["x", "w"]
    half = ds.subset(np.arange(ds.n_interactions) % 2 == 0)
    other = ds.subset(np.arange(ds.n_interactions) % 2 == 1)
    both = half.concat(other)
    assert names(both, user_sequences(both), "a") == ["w", "z", "y", "x"]


def test_truncation_keeps_most_recent():
    ds = Dataset.from_frame(frame())
    seqs = user_sequences(ds, max_len=2)
    assert names(ds, seqs, "a") == ["y", "x"]
    assert names(ds, seqs, "b") == ["x", "w"]
    assert seqs.lengths().tolist() == [2, 2]


def test_leave_one_out_holds_out_the_sequence_tail():
    ds = Dataset.from_frame(frame())
    test = leave_one_out_split(ds, valid=False).test.to_frame()
    assert test.set_index("user")["item"].to_dict() == {"a": "x", "b": "w"}  # w ties x at t=3
    valid = leave_one_out_split(ds).valid.to_frame()
    assert valid.set_index("user")["item"].to_dict() == {"a": "y"}  # y ties z, later in input


def test_no_timestamps_is_a_clear_error():
    ds = Dataset.from_frame(frame().drop(columns="timestamp"))
    with pytest.raises(DataError, match="--timestamp-col"):
        user_sequences(ds, what="sasrec")


def test_non_finite_timestamps_are_refused():
    f = frame()
    f["timestamp"] = f["timestamp"].astype(float)
    f.loc[2, "timestamp"] = np.nan
    with pytest.raises(DataError, match="1 of 6 timestamps"):
        time_order(Dataset.from_frame(f))


def test_histories_of_length_one():
    single = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "timestamp": [1, 2]})
    with pytest.raises(DataError, match="at most one"):
        user_sequences(Dataset.from_frame(single), min_pairs=True)
    mixed = pd.concat([frame(), pd.DataFrame({"user": ["c"], "item": ["x"], "timestamp": [4]})])
    with pytest.warns(DataWarning, match="1 of 3 users have a single interaction"):
        user_sequences(Dataset.from_frame(mixed), min_pairs=True)
