"""Model files of composite models: the state of the models they are made of.

``blend`` (a CF and a text model), ``pipeline`` (a retriever and the LM ranker) and
``rerank`` (a base model) save each component's arrays under ``<role>.`` in their own
``arrays.safetensors`` and its meta under ``<role>`` in theirs, with the component's
registered name, and rebuild components from their own config on load. One definition
of that layout, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.files import StateArrays

__all__ = ["components_state", "restore_components"]


def components_state(
    components: Mapping[str, Recommender],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays (keys ``<role>.<key>``) and meta (``{role: {"model", "meta"}}``) of fitted
    components, for a composite's ``_get_state``."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for role, model in components.items():
        sub_arrays, sub_meta = model._get_state()
        arrays.update({f"{role}.{key}": value for key, value in sub_arrays.items()})
        meta[role] = {"model": model.name, "meta": sub_meta}
    return arrays, meta


def restore_components(
    owner: Recommender,
    components: Mapping[str, Recommender],
    arrays: StateArrays,
    saved: Mapping[str, Any],
    what: str,
) -> None:
    """Load each component (built from ``owner``'s config) from ``owner``'s model files.

    The components share ``owner``'s id maps and training pattern. Raises ConfigError
    when the saved component is not the model the config names (an inconsistent
    directory); ``what`` names the composite in that message.
    """
    for role, model in components.items():
        entry = saved.get(role, {})
        if not isinstance(entry, Mapping) or entry.get("model") != model.name:
            found = entry.get("model") if isinstance(entry, Mapping) else entry
            raise ConfigError(
                f"The {what}'s saved {role} is {found!r} but its config names "
                f"{model.name!r}; the model directory is inconsistent."
            )
        model.user_ids_, model.item_ids_, model.seen_ = (
            owner.user_ids_,
            owner.item_ids_,
            owner.seen_,
        )
        model._set_state(arrays.child(f"{role}."), entry.get("meta", {}))
