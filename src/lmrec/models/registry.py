"""Names to model classes: how the CLI, tuner, service and model files find a model.

Built-in models are listed once, below, as ``module:Class`` strings written in
this source file (never read from a model file), and imported only when first
used; each built-in class declares the same ``name`` as a class attribute. Plugins register with :func:`register_model` or through the
``lmrec.models`` entry-point group.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import supports
from lmrec.models.config import FrozenParams, build_config, freeze

_BUILTINS: dict[str, str] = {
    "popularity": "lmrec.models.popularity:Popularity",
    "group_popularity": "lmrec.models.group_popularity:GroupPopularity",
    "itemknn": "lmrec.models.knn:ItemKNN",
    "userknn": "lmrec.models.knn:UserKNN",
    "ease": "lmrec.models.ease:EASE",
    "svd": "lmrec.models.svd:PureSVD",
    "als": "lmrec.models.als:ALS",
    "bpr": "lmrec.models.bpr:BPR",
    "fm": "lmrec.models.fm:FactorizationMachine",
    "content": "lmrec.models.content:ContentModel",
    "blend": "lmrec.models.blend:BlendModel",
    "rerank": "lmrec.models.rerank:Rerank",
    "biasedmf": "lmrec.models.ratings:BiasedMF",
    "knnbaseline": "lmrec.models.ratings:KNNBaseline",
    "twotower": "lmrec.models.twotower:TwoTower",
    "text2cf": "lmrec.models.text2cf:Text2CF",
    "text_ease": "lmrec.models.text_ease:TextEASE",
    "sasrec": "lmrec.models.seq.sasrec:SASRec",
    "gru4rec": "lmrec.models.seq.gru4rec:GRU4Rec",
    "onboard": "lmrec.models.onboard:Onboard",
    "ranker": "lmrec.ranker.model:LMRanker",
    "pipeline": "lmrec.ranker.pipeline:RetrieveRerank",
}
_REGISTERED: dict[str, type[Recommender]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def register_model(name: str, cls: type) -> None:
    """Register a model class under ``name`` (lowercase letters, digits, underscores).

    Raises :class:`ConfigError` for a bad name, a duplicate, or a class that is not a
    :class:`~lmrec.models.base.Recommender`.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"Model names are 1-40 lowercase letters, digits or '_' starting with a letter; "
            f"got {name!r}."
        )
    if name in _BUILTINS or name in _REGISTERED:
        raise ConfigError(f"A model named {name!r} is already registered.")
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ConfigError(f"register_model needs a Recommender subclass; got {cls!r}.")
    cls.name = name
    _REGISTERED[name] = cls


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group="lmrec.models")}


def builtin_models() -> list[str]:
    """Names of the models that ship with lmrec, sorted."""
    return sorted(_BUILTINS)


def list_models() -> list[str]:
    """Names of all available models (built-in, registered and plugins), sorted."""
    return sorted({*_BUILTINS, *_REGISTERED, *_plugins()})


def get_model_class(name: str) -> type[Recommender]:
    """The model class registered under ``name``; an unknown name lists the valid ones."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTINS:
        module, _, attr = _BUILTINS[name].partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if cls.name != name:
            raise ConfigError(
                f"Built-in {_BUILTINS[name]} declares name {cls.name!r}, not {name!r}."
            )
    else:
        plugin = _plugins().get(name)
        if plugin is None:
            raise ConfigError(
                f"Unknown model {name!r}. Available models: {', '.join(list_models())}."
            )
        cls = plugin.load()
    cls.name = name
    _REGISTERED[name] = cls
    return cls


def create_model(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """Instantiate model ``name`` with hyperparameters ``params`` (validated by its config)."""
    return get_model_class(name)(**dict(params or {}))


def models_supporting(capability: type) -> list[str]:
    """Names of the available models that declare ``capability`` (a protocol of
    :mod:`lmrec.models.capabilities`), sorted; for messages and for the CLI's checks."""
    return [n for n in list_models() if supports(get_model_class(n), capability)]


def component_params(model: str, params: Mapping[str, Any], field: str) -> FrozenParams:
    """Check a component model's name and hyperparameters inside a composite config.

    Composite models (``blend``, ``rerank``, ``pipeline``) name other registered models
    and hold their hyperparameters. This validates both when the composite's config is
    built (an unknown model or a misspelt parameter fails there, not at ``fit``) and
    returns the parameters frozen. Raises ValueError, which pydantic reports as an
    invalid value of ``field`` (and :func:`lmrec.models.config.build_config` as a
    ConfigError).
    """
    try:
        cls = get_model_class(model)
    except ConfigError as e:
        raise ValueError(str(e)) from e
    try:
        build_config(cls.config_class, dict(params))
    except ConfigError as e:
        raise ValueError(f"{field} for {model!r}: {e}") from e
    return freeze(params)
