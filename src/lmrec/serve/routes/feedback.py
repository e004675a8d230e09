"""``POST /v1/feedback`` (write keys): durable, idempotent interaction events."""

import asyncio
import time
from typing import TYPE_CHECKING, TypeAlias

from fastapi import APIRouter, HTTPException

from lmrec.serve.deps import (
    EventStoreDep,
    MetricsDep,
    OverlayDep,
    SettingsDep,
    WriteKey,
    authorize_user,
)
from lmrec.serve.events import Event
from lmrec.serve.routes import ERRORS, STORE_UNAVAILABLE
from lmrec.serve.schemas import FeedbackBody, FeedbackResponse, RequestModels


def build_router(rm: RequestModels) -> APIRouter:
    """The feedback route, with the request class of one app."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["feedback"])
    if TYPE_CHECKING:  # FastAPI reads this app's class; mypy checks what the route reads
        FeedbackRequest: TypeAlias = FeedbackBody
    else:
        FeedbackRequest = rm.FeedbackRequest  # noqa: N806

    @router.post(
        "/feedback",
        operation_id="feedback",
        response_model=FeedbackResponse,
        responses=STORE_UNAVAILABLE,
    )
    async def feedback(
        body: FeedbackRequest,
        store: EventStoreDep,
        overlay: OverlayDep,
        metrics: MetricsDep,
        settings: SettingsDep,
        key: WriteKey,
    ) -> FeedbackResponse:
        """Store interaction events durably (acknowledged after commit); repeated keys are no-ops.

        Each new event changes its user's next recommendations at once. A key limited to
        some users may send events of those users only (nothing is stored otherwise).
        """
        if key.scoped:
            for i, e in enumerate(body.events):
                authorize_user(key, e.user, settings, f"events[{i}].user")
        now = time.time()
        events = [
            Event(
                e.idempotency_key,
                e.user,
                e.item,
                e.type,
                float(e.weight),
                now if e.timestamp is None else float(e.timestamp),
            )
            for e in body.events
        ]
        t0 = time.perf_counter()
        try:
            result = await asyncio.wrap_future(store.submit(events))
        except store.errors as e:
            raise HTTPException(
                503,
                "The event store is unavailable; nothing was stored. "
                "Retry with the same idempotency keys.",
            ) from e
        metrics.store_write.observe(time.perf_counter() - t0)
        overlay.apply(result.inserted)
        metrics.feedback.labels("inserted").inc(len(result.inserted))
        metrics.feedback.labels("duplicate").inc(result.duplicates)
        return FeedbackResponse(accepted=len(result.inserted), duplicates=result.duplicates)

    return router
