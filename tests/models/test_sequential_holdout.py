"""Sequence models that choose their epoch count on data they hold out themselves
(``epochs_from="last_item"`` / ``"new_items"``, lmrec.models.seq.holdout)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmrec.data.dataset import Dataset
from lmrec.data.split import leave_one_out_split
from lmrec.errors import ConfigError, DataError
from lmrec.models.seq.holdout import (
    Holdout,
    holdout_ndcg,
    last_item_holdout,
    new_item_holdout,
)
from lmrec.models.seq.sasrec import SASRec
from lmrec.models.validation import validation_metric

from .test_sequential import TINY, cyclic_checkerboard


def test_holdout_ndcg_by_hand():
    # user 0 ranks items (2, 0, 1): her held-out item 0 is 2nd -> 1/log2(3);
    # user 1 ranks (1, 2, 0) but item 1 is excluded -> (2, 0): item 0 is 2nd again;
    # with candidates (0, 2) user 0 ranks (2, 0) -> the same 1/log2(3)
    items = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    states = np.array([[1.0, -0.5], [0.1, 1.0]])
    truth = sp.csr_matrix(np.array([[1.0, 0, 0], [1.0, 0, 0]]))
    exclude = sp.csr_matrix(np.array([[0.0, 0, 0], [0, 1.0, 0]]))
    every = Holdout(
        Dataset.from_frame(pd.DataFrame({"user": ["a"], "item": ["x"]})),
        np.array([0, 1]),
        [],
        truth,
        exclude=exclude,
    )
    assert holdout_ndcg(states, items, every) == pytest.approx(1 / np.log2(3))
    some = Holdout(
        every.inner,
        np.array([0]),
        [],
        sp.csr_matrix(np.array([[1.0, 0.0]])),
        candidates=np.array([0, 2]),
    )
    assert holdout_ndcg(states[:1], items, some) == pytest.approx(1 / np.log2(3))


def test_last_item_holdout_measures_what_validation_metric_measures():
    data = cyclic_checkerboard()
    holdout = last_item_holdout(data)
    split = leave_one_out_split(data, valid=False)
    model = SASRec(**{**TINY, "epochs": 3}).fit(holdout.inner)
    mine = holdout_ndcg(model.user_vectors_[holdout.users], model.item_vectors_, holdout)
    assert mine == pytest.approx(validation_metric(model, split.test), abs=1e-6)


def test_new_item_holdout_holds_out_a_share_of_the_items():
    data = cyclic_checkerboard()
    holdout = new_item_holdout(data, 0.2, seed=4)
    assert len(holdout.candidates) == 6  # 20% of 30 items
    assert (holdout.inner.item_counts()[holdout.candidates] == 0).all()
    rest = np.setdiff1d(np.arange(30), holdout.candidates)
    np.testing.assert_array_equal(holdout.inner.item_counts()[rest], data.item_counts()[rest])
    assert holdout.truth.shape == (len(holdout.users), 6) and holdout.truth.nnz > 0
    assert all(len(h) > 0 for h in holdout.histories)
    again = new_item_holdout(data, 0.2, seed=4)
    np.testing.assert_array_equal(again.candidates, holdout.candidates)
    with pytest.raises(DataError, match="new_item_share"):
        new_item_holdout(data, 0.05, seed=4)  # 1 item


@pytest.mark.parametrize("epochs_from, repr_", [("last_item", "id"), ("new_items", "text")])
def test_chosen_epochs_then_a_refit_on_all_the_data(epochs_from, repr_):
    data = cyclic_checkerboard()
    params = {**TINY, "epochs": 12, "patience": 3, "seed": 3, "item_repr": repr_}
    model = SASRec(**params, epochs_from=epochs_from, new_item_share=0.2).fit(data)
    epochs = model.best_epoch_
    assert 1 <= epochs <= 12 and len(model.history_) == epochs
    values = [h["valid_ndcg@10"] for h in model.history_]
    assert values[-1] == max(values)  # it stopped at the best held-out epoch
    plain = SASRec(**{**params, "epochs": epochs}).fit(data)  # same seed, all the data
    np.testing.assert_array_equal(model.item_vectors_, plain.item_vectors_)
    np.testing.assert_array_equal(model.user_vectors_, plain.user_vectors_)


def test_epochs_from_errors():
    data = cyclic_checkerboard()
    with pytest.raises(ConfigError, match="item_repr"):
        SASRec(**TINY, epochs_from="new_items")
    with pytest.raises(ConfigError, match="privacy"):
        SASRec(**TINY, epochs_from="last_item", dp_epsilon=8.0)
    split = leave_one_out_split(data)
    with pytest.raises(ConfigError, match="do not pass validation data"):
        SASRec(**TINY, epochs_from="last_item").fit(split.train, valid=split.valid)


def test_checkpoints_cover_the_refit(tmp_path, caplog):
    import logging

    from lmrec.models.capabilities import FitOptions

    data = cyclic_checkerboard()
    params = {**TINY, "epochs": 6, "patience": 2, "seed": 3, "epochs_from": "last_item"}
    straight = SASRec(**params).fit(data)
    first = SASRec(**params).fit(data, options=FitOptions(checkpoint_dir=tmp_path))
    with caplog.at_level(logging.INFO, logger="lmrec.models.seq.trainer"):
        resumed = SASRec(**params).fit(data, options=FitOptions(checkpoint_dir=tmp_path))
    assert "resumed" in caplog.text  # the refit read the finished checkpoint
    assert resumed.best_epoch_ == first.best_epoch_ == straight.best_epoch_
    assert len(resumed.history_) == straight.best_epoch_  # the refit's epochs, from the file
    np.testing.assert_array_equal(first.item_vectors_, straight.item_vectors_)
    np.testing.assert_array_equal(resumed.item_vectors_, straight.item_vectors_)
