"""Forget users: the right to erasure applied to a fitted model.

:func:`forget_users` returns a model that no longer contains the given users:

- models that declare :class:`~lmrec.models.capabilities.UnlearningModel` (popularity,
  item-/user-kNN, EASE, PureSVD, text2cf, content) forget *exactly*, from their own
  state: the result equals a fit on the data without the users;
- every other model is retrained, with the same hyperparameters, on the training data
  (``data``) with the users' interactions removed.

Either way the returned model has no id, row, seen-item list or vector of a forgotten
user, so a model directory saved from it holds no trace of them. The
:class:`ForgetReport` says what was done, without any user id (it is the audit record).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap, as_id_array
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import PrivateModel, UnlearningModel, declares, supports

__all__ = ["ForgetReport", "exact_blocker", "forget_users", "without_users"]


@dataclass(frozen=True)
class ForgetReport:
    """What a deletion did, with no personal data (safe to keep as an audit record).

    Attributes
    ----------
    request_id : str
        A random id of this deletion, to cite in correspondence.
    time : str
        When it ran (UTC, ISO 8601).
    model : str
        The registered model name.
    method : ``"exact"`` or ``"retrained"``
        Exact unlearning from the model's own state, or a refit without the users.
    n_users : int
        How many users were forgotten.
    n_interactions : int
        How many of their training interactions the model held.
    """

    request_id: str
    time: str
    model: str
    method: Literal["exact", "retrained"]
    n_users: int
    n_interactions: int

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-able dict."""
        return asdict(self)


def without_users(dataset: Dataset, users: Any) -> Dataset:
    """``dataset`` with the given external user ids gone: their interactions, their entry in
    the user id map and their row of the user attribute table. Items and the item table
    are kept whole (the catalog is not personal data). Unknown ids are ignored here."""
    drop = np.isin(dataset.user_ids.ids.astype(str), as_id_array(users).astype(str))
    if not drop.any():
        return dataset
    new_index = np.cumsum(~drop) - 1
    frame = dataset.interactions
    frame = frame[~drop[frame["user_idx"].to_numpy()]].reset_index(drop=True)
    frame["user_idx"] = new_index[frame["user_idx"].to_numpy()]
    user_ids = IdMap(dataset.user_ids.ids[~drop])
    users_table = None if dataset.users is None else dataset.users.loc[list(user_ids.ids)]
    return Dataset(
        frame, user_ids, dataset.item_ids, items=dataset.items, users=users_table, name=dataset.name
    )


def _is_private(model: Recommender) -> bool:
    return supports(model, PrivateModel) and getattr(model.config, "dp_epsilon", None) is not None


def forget_users(
    model: Recommender,
    users: Any,
    *,
    data: Dataset | None = None,
    method: Literal["auto", "exact", "retrain"] = "auto",
) -> tuple[Recommender, ForgetReport]:
    """A copy of ``model`` without ``users`` (external ids), and the audit report.

    Parameters
    ----------
    model : Recommender
        A fitted model; it is not changed.
    users : iterable of ids
        External user ids to forget; every one must be a user of the model.
    data : Dataset, optional
        The training data, needed to retrain models that cannot forget exactly (the
        users' interactions are removed from it first).
    method : {"auto", "exact", "retrain"}
        ``auto``: exact unlearning when the model can, else retraining.

    Raises
    ------
    UnknownIdError
        A user id the model does not know (nothing is changed).
    ConfigError
        Exact unlearning was asked of a model that cannot, or retraining without ``data``.
    """
    model._check_fitted()
    if method not in ("auto", "exact", "retrain"):
        raise ConfigError(f"method must be 'auto', 'exact' or 'retrain'; got {method!r}.")
    ids = as_id_array(users)
    if len(ids) == 0:
        raise ConfigError("No users to forget: the list is empty.")
    idx = np.unique(model.user_ids_.index(ids, on_unknown="raise", kind="user"))
    n_interactions = int(model.seen_[idx].nnz)
    why = exact_blocker(model)
    if method == "exact" and why is not None:
        raise ConfigError(f"Model {model.name!r} cannot forget exactly: {why}.")
    out: Recommender
    # (why is None means that the model declares UnlearningModel; declares() says so to mypy)
    if why is None and method != "retrain" and declares(model, UnlearningModel):
        out = copy.deepcopy(model)
        out.forget(idx)
        done: Literal["exact", "retrained"] = "exact"
    else:
        if data is None:
            raise ConfigError(
                f"Model {model.name!r} cannot forget exactly ({why or 'retraining was asked'}); "
                "give the training data to retrain it without the users."
            )
        out = _retrain(model, without_users(data, model.user_ids_.lookup(idx)))
        done = "retrained"
    report = ForgetReport(
        request_id=uuid.uuid4().hex,
        time=datetime.now(UTC).isoformat(timespec="seconds"),
        model=model.name,
        method=done,
        n_users=len(idx),
        n_interactions=n_interactions,
    )
    return out, report


def exact_blocker(model: Recommender) -> str | None:
    """Why ``model`` cannot forget users exactly from its own state, or None when it can
    (then :func:`forget_users` needs no training data)."""
    if not declares(model, UnlearningModel):
        from lmrec.models.registry import models_supporting

        return (
            "it is trained iteratively; models that forget exactly: "
            f"{', '.join(models_supporting(UnlearningModel))}"
        )
    if _is_private(model):
        return (
            "it was fitted with differential privacy, and recomputing its noisy statistics "
            "would publish a second release of the same users; retrain it with fresh noise"
        )
    return model.unlearning_blocker()


def _retrain(model: Recommender, data: Dataset) -> Recommender:
    """A fresh fit of ``model``'s class and config on ``data``.

    A differentially private model gets a new noise seed: re-using the old noise on the
    reduced data would let anyone holding both versions subtract them and read the
    forgotten users' contribution.
    """
    config = model.config
    if _is_private(model) and "seed" in type(config).model_fields:
        fresh = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        config = config.model_copy(update={"seed": fresh})
    return type(model)(config).fit(data)
