"""Typed, frozen hyperparameter configs shared by all models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from lmrec.errors import ConfigError


class ModelConfig(BaseModel):
    """Base class of every model's hyperparameters.

    Frozen and strict about unknown keys, so a typo in ``--param`` fails loudly
    instead of being ignored. Subclasses declare fields with defaults and
    docstrings; the CLI and the tuner derive their flags and spaces from them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


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
                "dp_clip: bpr, ease, itemknn (see docs/privacy.md)."
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
