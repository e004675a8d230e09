"""lmrec.models.fitted.Fitted: typed fitted attributes that refuse to be read before fit."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset
from lmrec.errors import NotFittedError
from lmrec.models.ease import EASE
from lmrec.models.fitted import Fitted


class _Model:
    weights_: Fitted[np.ndarray] = Fitted()
    index_: Fitted[int] = Fitted("call .build() first")


def test_unset_attribute_names_model_and_attribute():
    with pytest.raises(NotFittedError, match=r"_Model is not fitted \(weights_ is not set\)"):
        _ = _Model().weights_
    with pytest.raises(NotFittedError, match=r"call \.build\(\) first"):
        _ = _Model().index_


def test_set_get_and_is_set():
    m = _Model()
    assert not _Model.weights_.is_set(m)
    m.weights_ = np.arange(3.0)
    assert _Model.weights_.is_set(m)
    assert m.weights_.tolist() == [0.0, 1.0, 2.0]
    assert not _Model.index_.is_set(m)  # per attribute
    assert isinstance(_Model.weights_, Fitted)  # class access gives the descriptor


def test_values_live_in_the_instance():
    a, b = _Model(), _Model()
    a.weights_ = np.ones(2)
    assert not _Model.weights_.is_set(b)
    for c in (copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert c.weights_.tolist() == [1.0, 1.0]


def test_a_model_reads_its_fitted_state_only_after_fit():
    data = Dataset.from_frame(pd.DataFrame({"user": [1, 1, 2, 3], "item": [1, 2, 2, 3]}))
    model = EASE()
    with pytest.raises(NotFittedError, match="EASE is not fitted"):
        _ = model.B_
    model.fit(data)
    assert model.B_.shape == (3, 3)
