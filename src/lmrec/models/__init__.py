"""Recommenders behind one protocol, and the registry that names them.

>>> from lmrec.models import create_model, list_models
>>> "popularity" in list_models()
True
"""

from lmrec.models.base import Recommender
from lmrec.models.config import ModelConfig
from lmrec.models.persist import load_model
from lmrec.models.registry import create_model, get_model_class, list_models, register_model

__all__ = [
    "ModelConfig",
    "Recommender",
    "create_model",
    "get_model_class",
    "list_models",
    "load_model",
    "register_model",
]
