"""Deleting one user from a running service (``DELETE /v1/users/{id}``, the right to erasure).

:func:`erase_user` does, before it returns:

1. **served model** -- the user leaves the ``user_index`` of every loaded version
   (:meth:`ModelStore.hide_user`), so their precomputed top-k list, their model row and
   the training history that explanations read are never used again: they are served
   as an unknown user;
2. **event store** -- their events are deleted in one transaction, with an audit row of
   counts and no id (:meth:`EventStore.delete_users`);
3. **online overlay** -- their feedback leaves this process's memory (other workers
   rebuild theirs when they see the audit row; :mod:`lmrec.serve.online`);
4. **cached lists** -- every cached recommendation list of the user is dropped;
5. **new model version** -- where the served model can forget exactly
   (:func:`lmrec.privacy.forget.exact_blocker`), a copy without the user replaces the
   served directory atomically and is swapped in (the previous version, which holds the
   user, is dropped: no rollback to it). Other models need their training data to be
   retrained, which the service does not have: the answer says ``pending`` and how to
   finish (``lmrec forget --data``); until then the user stays hidden in this process.

Steps 1, 3 and 4 run again at the end, for a request that raced with the deletion.
Nothing here logs or stores the user id; the returned :class:`Erasure` holds counts only.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from lmrec.errors import LmrecError
from lmrec.models.base import Recommender
from lmrec.privacy.forget import exact_blocker, forget_users
from lmrec.serve.engine import Engine
from lmrec.serve.events import EventStore
from lmrec.serve.model_store import LoadedModel, ModelStore

log = logging.getLogger("lmrec.serve")

ModelStatus = Literal["unchanged", "forgotten", "pending"]


@dataclass(frozen=True)
class ModelOutcome:
    """What happened to the served model: ``unchanged`` (no loaded version held the user),
    ``forgotten`` (the served version is one without them; ``method`` ``exact`` when this
    deletion made it) or ``pending`` (see ``detail``)."""

    status: ModelStatus
    method: Literal["exact"] | None
    version: str
    n_interactions: int
    detail: str


@dataclass(frozen=True)
class Erasure:
    """What :func:`erase_user` did (counts only; no personal data)."""

    request_id: str
    events_deleted: int
    feedback_cleared: int
    cached_lists_cleared: int
    precomputed_cleared: bool
    model: ModelOutcome
    new_version: LoadedModel | None

    @property
    def found(self) -> bool:
        """Whether the service held data of the user: events, feedback, or a model row (a
        cached list of an unknown user, which holds nothing of theirs, does not count)."""
        return bool(
            self.events_deleted or self.feedback_cleared or self.model.status != "unchanged"
        )


def erase_user(
    user: str, *, model_store: ModelStore, event_store: EventStore, engine: Engine
) -> Erasure:
    """Delete ``user`` from the store, the caches and the served model (module docstring).

    Blocking: call it from a worker thread. Raises the store's errors when the event store
    is unavailable (the user is hidden from the served model already; a retry finishes).
    """
    request_id = uuid.uuid4().hex
    in_model = model_store.hide_user(user)
    lm = model_store.current
    precomputed = user in lm.hidden_index and lm.top_items is not None
    events = event_store.delete_users([user], request_id=request_id)
    feedback = engine.overlay.reset_user(user, event_store)
    cached = engine.forget_cached(user)
    outcome, new = _new_version(user, model_store) if in_model else (None, None)
    if outcome is None:
        version = model_store.current.version
        outcome = ModelOutcome("unchanged", None, version, 0, "No loaded version held the user.")
    model_store.hide_user(user)  # a reload that raced with this deletion
    feedback += engine.overlay.reset_user(user, event_store)
    cached += engine.forget_cached(user)
    log.info(
        "deletion %s: %d event(s), %d feedback item(s), %d cached list(s); model %s (%s)",
        request_id,
        events,
        feedback,
        cached,
        outcome.status,
        outcome.version,
    )
    return Erasure(request_id, events, feedback, cached, precomputed, outcome, new)


def _new_version(user: str, store: ModelStore) -> tuple[ModelOutcome | None, LoadedModel | None]:
    """Replace the served version by one without ``user`` where the model forgets exactly."""
    counted: list[int] = []
    blocked: list[str] = []

    def without(lm: LoadedModel) -> Recommender | None:
        idx = lm.hidden_index.get(user)
        if idx is None:  # the version served now (after a reload) never held the user
            return None
        why = exact_blocker(lm.model)
        if why is not None:
            blocked.append(why)
            return None
        model_id = lm.model.user_ids_.lookup([idx])[0]
        new, report = forget_users(lm.model, [model_id], method="exact")
        counted.append(report.n_interactions)
        return new

    old = store.current
    try:
        new = store.replace_current(without)
    except (LmrecError, OSError) as e:
        log.error("deletion: could not write the model version without the user: %s", e)
        return _pending(store, f"Writing the new version failed ({e})."), None
    if blocked:
        return _pending(store, f"Model {old.name!r} cannot forget exactly: {blocked[0]}."), None
    if new is None:
        if not store.drop_previous_holding(user):
            return None, None
        lm = store.current
        detail = (
            f"The served version {lm.version} never held the user; the previous version, "
            "which did, is no longer kept for rollback."
        )
        return ModelOutcome("forgotten", None, lm.version, 0, detail), None
    return (
        ModelOutcome(
            "forgotten",
            "exact",
            new.version,
            counted[0],
            f"Version {new.version} without the user replaced {old.version} in {new.path}; "
            "the previous version is dropped (no rollback past a deletion).",
        ),
        new,
    )


def _pending(store: ModelStore, why: str) -> ModelOutcome:
    lm = store.current
    return ModelOutcome(
        "pending",
        None,
        lm.version,
        0,
        f"{why} The user is served as unknown by this process from now on, but the model "
        f"files still hold them: run `lmrec forget --model {lm.path} --users FILE --data "
        "TRAINING_DATA --out NEW_DIR`, then POST /v1/models/reload with NEW_DIR "
        "(see docs/privacy.md).",
    )
