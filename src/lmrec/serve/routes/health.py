"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus)."""

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from lmrec.serve.deps import (
    AdmissionDep,
    EventStoreDep,
    KeyRingDep,
    MetricsDep,
    SettingsDep,
    authenticate,
)
from lmrec.serve.schemas import ErrorResponse, StatusResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", response_model=StatusResponse)
async def healthz() -> StatusResponse:
    """Liveness: the process answers."""
    return StatusResponse(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=StatusResponse,
    responses={503: {"model": ErrorResponse, "description": "Not ready"}},
)
async def readyz(store: EventStoreDep, admission: AdmissionDep) -> StatusResponse:
    """Readiness: a model is loaded, the event store answers, and no shutdown is under way."""
    if admission.draining:
        raise HTTPException(503, "The server is shutting down; send requests elsewhere.")
    if not await anyio.to_thread.run_sync(store.ping):
        raise HTTPException(503, "The event store does not answer.")
    return StatusResponse(status="ready")


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
)
async def prometheus(
    request: Request, metrics: MetricsDep, settings: SettingsDep, keyring: KeyRingDep
) -> Response:
    """Prometheus metrics (latency per endpoint, errors, cache, model, store writes)."""
    if settings.metrics_auth:  # 401 for an unknown key; the key is not part of the schema
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        authenticate(settings, keyring, request.headers.get("x-api-key") or bearer)
    data, ctype = metrics.render()
    return Response(data, media_type=ctype)
