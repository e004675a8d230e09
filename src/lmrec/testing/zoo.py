"""A small, fast configuration of every registered model, for suites that must cover them all.

The model-file mutation suite and other checks that must cover every built-in model fit
each one on :func:`lmrec.testing.checkerboard` with these settings; a model without an
entry runs with its defaults, so a new model is covered from the start (add an entry
when its defaults are slow on a toy data set).
"""

from __future__ import annotations

from typing import Any

from lmrec.data.dataset import Dataset
from lmrec.models.base import Recommender
from lmrec.models.capabilities import RatingModel, supports
from lmrec.models.registry import create_model, get_model_class

_TORCH = {"factors": 8, "epochs": 10, "batch_size": 64, "lr": 0.05, "seed": 0, "n_threads": 1}
_RANKER = {
    "n_layers": 1,
    "max_length": 64,
    "batch_size": 8,
    "max_examples": 64,
    "warmup_steps": 1,
    "n_history": 5,
    "max_steps": 4,
    "mode": "head",
    "seed": 0,
}

#: Hyperparameters per registered model name.
SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "itemknn": {"k_neighbors": 10},
    "userknn": {"k_neighbors": 10},
    "ease": {"l2": 10.0},
    "svd": {"factors": 4, "seed": 0},
    "als": {"factors": 4, "iterations": 3, "seed": 0},
    "bpr": dict(_TORCH),
    "fm": dict(_TORCH),
    "twotower": {**_TORCH, "epochs": 5, "batch_size": 8},
    "content": {"seed": 0},
    "text2cf": {"cf_l2": 10.0, "l2": 1.0},
    "text_ease": {"l2": 10.0},
    "blend": {"cf_params": {"l2": 10.0}, "weight": 0.3},
    "sasrec": {**_TORCH, "max_len": 8, "device": "cpu"},
    "gru4rec": {**_TORCH, "max_len": 8, "device": "cpu"},
    "biasedmf": {"factors": 4, "iterations": 3},
    "knnbaseline": {"k_neighbors": 10},
    "rerank": {"base_params": {"l2": 10.0}, "n_candidates": 10},
    "ranker": dict(_RANKER),
    "pipeline": {
        "n_candidates": 10,
        "retriever_params": {"l2": 10.0},
        "ranker_params": dict(_RANKER),
    },
}

#: Models whose every score is a language-model forward pass: slow suites may leave them out.
SLOW_MODELS = frozenset({"ranker", "pipeline"})


def small_model(name: str) -> Recommender:
    """An unfitted model ``name`` with its :data:`SMALL_PARAMS` settings."""
    return create_model(name, SMALL_PARAMS.get(name, {}))


def training_data(name: str) -> Dataset:
    """The toy data set model ``name`` fits on: the checkerboard, with ratings for rating models."""
    from lmrec.testing import checkerboard, rated_checkerboard

    return rated_checkerboard() if supports(get_model_class(name), RatingModel) else checkerboard()
