"""Typed, frozen hyperparameter configs shared by all models."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lmrec.errors import ConfigError
from lmrec.train.torch_utils import Device


class ModelConfig(BaseModel):
    """Base class of every model's hyperparameters.

    Frozen and strict about unknown keys, so a typo in ``--param`` fails loudly
    instead of being ignored. Subclasses declare fields with defaults and
    docstrings; the CLI and the tuner derive their flags and spaces from them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    #: Old parameter name -> its name now. lmrec says one idea one way (``l2`` for an L2
    #: penalty, ``n_threads`` for threads); the old names still work, with a
    #: DeprecationWarning, so configs and model files written before keep loading.
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, values: Any) -> Any:
        if not cls.renamed or not isinstance(values, Mapping):
            return values
        old = [k for k in values if k in cls.renamed]
        if not old:
            return values
        out = dict(values)
        model = cls.__name__.removesuffix("Config")
        for name in old:
            new = cls.renamed[name]
            if new in out:
                raise ValueError(f"{name!r} is the old name of {new!r}; pass {new!r} only")
            warnings.warn(
                f"{model} parameter {name!r} is now called {new!r}; the old name will be "
                "removed in a future version.",
                DeprecationWarning,
                stacklevel=2,
            )
            out[new] = out.pop(name)
        return out


class FrozenParams(dict[str, Any]):
    """A component model's hyperparameters inside a composite config (blend, rerank,
    pipeline): a dict that refuses changes, so a frozen config is frozen all the way down.

    >>> p = freeze({"l2": 10.0})
    >>> p["l2"] = 20.0
    Traceback (most recent call last):
    ...
    TypeError: Model configs are frozen; build a new one (e.g. config.model_copy(update={...})).
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            "Model configs are frozen; build a new one (e.g. config.model_copy(update={...}))."
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[FrozenParams], tuple[dict[str, Any]]]:
        return FrozenParams, (dict(self),)

    def __copy__(self) -> FrozenParams:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenParams:
        return self  # immutable all the way down


def freeze(value: Any) -> Any:
    """``value`` with every mapping made a :class:`FrozenParams` and every list a tuple."""
    if isinstance(value, Mapping):
        return FrozenParams({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


class TorchConfig(ModelConfig):
    """The run settings every torch-trained model shares (bpr, fm, twotower, sasrec,
    gru4rec): said once here, so they mean the same thing in each."""

    seed: int | None = Field(default=0, ge=0)
    """Seed of every random step of training (initialisation, shuffling, negatives,
    dropout); the same seed gives the same model. ``None`` draws one (recorded in
    ``seed_``)."""
    device: Device = "cpu"
    """Where to train: ``cpu``, ``cuda``, or ``auto`` (CUDA when available)."""
    n_threads: int | None = Field(default=None, ge=1)
    """Intra-op threads while training (restored afterwards); ``None`` keeps torch's
    setting. Small models often train faster with 1 thread on a busy machine."""
    distributed: bool = False
    """Data-parallel training under ``torchrun`` (:mod:`lmrec.train.distributed`): each
    rank trains on its piece of every batch, random draws are made for the whole batch
    and gradients are summed, so the result equals a single-process fit up to float
    summation order."""


def search(kind: str, *bounds: Any) -> dict[str, Any]:
    """Field metadata declaring a hyperparameter's built-in search space for ``lmrec tune``.

    ``Field(default=64, ge=1, json_schema_extra=search("int_log", 16, 256))``; the kinds
    and their arguments are those of a search-space file (``lmrec tune --help``). The
    spec is stored as a list (JSON), :func:`lmrec.tune.search_space` reads it back.
    """
    return {"search": [kind, *bounds]}


def build_config(config_class: type[ModelConfig], values: dict[str, Any]) -> ModelConfig:
    """Validate ``values`` against ``config_class``, turning pydantic errors into ConfigError."""
    try:
        return config_class(**values)
    except ValidationError as e:
        valid = ", ".join(sorted(config_class.model_fields))
        dp = sorted(k for k in values if k.startswith("dp_") and k not in config_class.model_fields)
        if dp:  # say it in the vocabulary of the feature, not as an unknown key
            raise ConfigError(
                f"{config_class.__name__.removesuffix('Config')} does not support differential "
                f"privacy (got {', '.join(dp)}). Models that do take dp_epsilon, dp_delta and "
                "dp_clip: bpr, ease, itemknn, twotower, sasrec, gru4rec (see docs/privacy.md)."
            ) from e
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}"
            + (
                f" (got {err['input']!r})"
                if "input" in err and err["type"] != "extra_forbidden"
                else ""
            )
            for err in e.errors()
        )
        raise ConfigError(
            f"Invalid {config_class.__name__}: {problems}. Valid parameters: {valid or '(none)'}."
        ) from e


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    """Parse CLI ``key=value`` strings; values stay strings and pydantic converts them."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Parameters are written key=value; got {pair!r}.")
        out[key.strip()] = value.strip()
    return out
