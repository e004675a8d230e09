"""The FastAPI application, built by :func:`create_app` (no module-level app or settings).

Routes (all JSON; OpenAPI at ``/openapi.json``, docs at ``/docs``):

=========================  ======  ===============================================
``POST /v1/recommend``     read    top-k for a user id or an anonymous session
``GET /v1/items/{id}/similar`` read  item-to-item
``POST /v1/explain``       read    the history items behind a recommendation
``POST /v1/feedback``      write   store interaction events (durable, idempotent)
``GET /v1/models``         read    the served model version (and the previous one)
``POST /v1/models/reload`` admin   load a model directory beside the current one, swap
``POST /v1/models/rollback`` admin swap back to the previous version
``GET /healthz``, ``/readyz``, ``/metrics``  liveness, readiness, Prometheus
=========================  ======  ===============================================

This module deliberately has no ``from __future__ import annotations``: FastAPI reads
the endpoint annotations at definition time, and the request models are built per app.
"""

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from lmrec._version import __version__
from lmrec.errors import ConfigError, DataError, LmrecError, ModelFileError, UnknownIdError
from lmrec.models.explain import Catalog, Explanation
from lmrec.serve.auth import ANONYMOUS_ADMIN, KeyRing, Principal
from lmrec.serve.engine import Engine, RecList
from lmrec.serve.events import Event, EventStore
from lmrec.serve.metrics import Metrics
from lmrec.serve.model_store import LoadedModel, ModelStore
from lmrec.serve.online import LRUCache, OnlineOverlay
from lmrec.serve.schemas import (
    ContributionOut,
    ErrorResponse,
    ExplainResponse,
    FeedbackResponse,
    ModelInfo,
    ModelsResponse,
    RecommendResponse,
    SimilarResponse,
    StatusResponse,
    ValidationErrorResponse,
    finite,
    request_models,
)
from lmrec.serve.settings import ServeSettings

log = logging.getLogger("lmrec.serve")

#: Environment variable carrying the settings (JSON) to uvicorn worker processes.
SETTINGS_ENV = "LMREC_SERVE_SETTINGS"

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Unreadable request body"},
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    403: {"model": ErrorResponse, "description": "The key's role does not allow this"},
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ValidationErrorResponse, "description": "Invalid request"},
}


# ---------------------------------------------------------------------- dependencies
# Dependencies are ``async def``: FastAPI runs plain ``def`` dependencies in its thread
# pool, and four thread hops per request cost more than the whole recommendation.
async def get_model(request: Request) -> LoadedModel:
    """The model version this request is served by (read once; reloads do not change it)."""
    return request.app.state.model_store.current


ModelDep = Annotated[LoadedModel, Depends(get_model)]

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An lmrec API key.")
_bearer = HTTPBearer(auto_error=False, description="An lmrec API key as a bearer token.")


async def get_principal(
    request: Request,
    key: Annotated[str | None, Security(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller, from ``X-API-Key`` or ``Authorization: Bearer``; 401 when unknown."""
    if not request.app.state.settings.auth:
        return ANONYMOUS_ADMIN
    presented = key or (bearer.credentials if bearer is not None else None)
    principal = request.app.state.keyring.verify(presented)
    if principal is None:
        raise HTTPException(
            401,
            "Missing or invalid API key; send it as 'Authorization: Bearer <key>' or "
            "'X-API-Key: <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def require_role(role: str) -> Callable[..., Principal]:
    """A dependency that admits keys of ``role`` or higher (403 otherwise)."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.allows(role):
            raise HTTPException(
                403, f"This API key has role {principal.role!r}; this endpoint needs {role!r}."
            )
        return principal

    return check


ReadKey = Annotated[Principal, Depends(require_role("read"))]
WriteKey = Annotated[Principal, Depends(require_role("write"))]
AdminKey = Annotated[Principal, Depends(require_role("admin"))]


# ---------------------------------------------------------------------- middleware
class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds the limit of {limit} bytes.")


class ObserveMiddleware:
    """Pure ASGI middleware: body-size limit and per-route latency/status metrics."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            code = 413 if length.isdigit() else 400
            msg = _TooLarge(self.max_body).detail if code == 413 else "Invalid Content-Length."
            await JSONResponse({"detail": msg}, status_code=code)(scope, receive, send)
            self._observe(scope, code, start)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge(self.max_body)
            return message

        async def observed_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, limited_receive, observed_send)
        finally:
            self._observe(scope, status["code"], start)

    def _observe(self, scope: dict, code: int, start: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        m = self.metrics
        m.latency.labels(endpoint, method).observe(time.perf_counter() - start)
        m.requests.labels(endpoint, method, str(code)).inc()
        if code >= 400:
            m.errors.labels(endpoint, "server" if code >= 500 else "client").inc()


# ---------------------------------------------------------------------- error handlers
def _install_error_handlers(app: FastAPI) -> None:
    def body(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        lines = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(
            {"detail": f"Invalid request: {lines}", "errors": errors}, status_code=422
        )

    @app.exception_handler(UnknownIdError)
    async def _unknown(_: Request, exc: UnknownIdError) -> JSONResponse:
        return body(404, str(exc))

    @app.exception_handler(ModelFileError)
    async def _model_file(_: Request, exc: ModelFileError) -> JSONResponse:
        return body(422, f"Model directory refused; the current model keeps serving. {exc}")

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return body(422, str(exc))

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        return body(422, str(exc))

    @app.exception_handler(LmrecError)
    async def _lmrec(_: Request, exc: LmrecError) -> JSONResponse:
        return body(400, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.error(
            "unhandled error %s on %s %s", ref, request.method, request.url.path, exc_info=exc
        )
        return body(500, f"Internal server error (reference {ref}); the details were logged.")


# ---------------------------------------------------------------------- the app
def _model_info(lm: LoadedModel, current: bool) -> ModelInfo:
    return ModelInfo(
        name=lm.name,
        version=lm.version,
        n_users=lm.n_users,
        n_items=lm.n_items,
        fold_in=lm.fold_in,
        precomputed=lm.top_items is not None,
        ann=None if lm.ann is None else lm.ann.params["kind"],
        loaded_at=lm.loaded_at,
        load_seconds=lm.load_seconds,
        current=current,
    )


def _load_catalog(path: Path | None) -> Catalog | None:
    """The item catalog for explanations (id column 'item'; title, genres, year, ...)."""
    if path is None:
        return None
    from lmrec.data import read_items

    return Catalog(read_items(path))


def explain_response(expl: Explanation, user: str | None, version: str) -> ExplainResponse:
    """The HTTP body of a library :class:`~lmrec.models.explain.Explanation`."""
    return ExplainResponse(
        user=user,
        item=expl.item,
        title=expl.title,
        score=finite([expl.score])[0],
        contributions=[ContributionOut(item=c.item, title=c.title, weight=c.contribution)
                       for c in expl.contributions],  # fmt: skip
        reasons=list(expl.reasons),
        explanation=list(expl.sentences),
        method=expl.method,
        fallback=False,
        model_version=version,
    )


def create_app(
    settings: ServeSettings,
    model_store: ModelStore,
    event_store: EventStore,
    *,
    keyring: KeyRing | None = None,
) -> FastAPI:
    """Build the service around a loaded model and an event store.

    Parameters
    ----------
    settings : ServeSettings
        Limits, auth and CORS settings.
    model_store : ModelStore
        Holds the served model; reloads swap it.
    event_store : EventStore
        Where feedback is written; read at startup to rebuild the online overlay.
    keyring : KeyRing, optional
        API keys (default: read ``settings.keys_file`` when ``settings.auth``).
    """
    started = time.perf_counter()
    metrics = Metrics()
    overlay = OnlineOverlay()
    cache = LRUCache(settings.cache_size, metrics.cache_hit, metrics.cache_miss)
    engine = Engine(overlay, cache)
    if keyring is None:
        keyring = (
            KeyRing.load(settings.keys_file)
            if settings.auth and settings.keys_file
            else KeyRing([])
        )
    catalog = _load_catalog(settings.catalog)
    rm = request_models(settings)
    ItemId = Annotated[str, PathParam(min_length=1, max_length=settings.max_id_length)]  # noqa: N806
    K = Annotated[int, Query(ge=1, le=settings.max_k, description="List length.")]  # noqa: N806

    async def sync_loop() -> None:
        while True:
            await asyncio.sleep(settings.sync_interval_s)
            try:
                await anyio.to_thread.run_sync(overlay.sync, event_store)
            except event_store.errors:
                log.warning("could not read new events from the store; retrying", exc_info=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        t0 = time.perf_counter()
        n = await anyio.to_thread.run_sync(lambda: overlay.sync(event_store, max_events=10**9))
        lm = model_store.current
        metrics.set_model(lm.name, lm.version, lm.load_seconds)
        app.state.startup_seconds = model_store.startup_seconds + (time.perf_counter() - started)
        metrics.startup.set(app.state.startup_seconds)
        log.info(
            "ready: model %s, %d feedback events replayed in %.2fs, startup %.2fs",
            lm.version,
            n,
            time.perf_counter() - t0,
            app.state.startup_seconds,
        )
        task = asyncio.create_task(sync_loop())
        try:
            yield
        finally:
            task.cancel()
            await anyio.to_thread.run_sync(event_store.close)

    app = FastAPI(
        title="lmrec",
        version=__version__,
        description="Recommendations, explanations and feedback over an lmrec model.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model_store = model_store
    app.state.event_store = event_store
    app.state.engine = engine
    app.state.overlay = overlay
    app.state.cache = cache
    app.state.metrics = metrics
    app.state.keyring = keyring
    app.state.startup_seconds = model_store.startup_seconds
    _install_error_handlers(app)
    app.add_middleware(ObserveMiddleware, metrics=metrics, max_body=settings.max_body_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )

    v1 = APIRouter(prefix="/v1", responses=_ERRORS)

    def rec_response(lm: LoadedModel, user: str | None, rec: RecList) -> RecommendResponse:
        metrics.recs.labels(rec.strategy, str(rec.fallback).lower()).inc()
        ids = lm.item_ids
        return RecommendResponse(
            user=user,
            items=[ids[i] for i in rec.items.tolist()],
            scores=finite(rec.scores.tolist()),
            model_version=lm.version,
            fallback=rec.fallback,
            strategy=rec.strategy,
        )

    @v1.post(
        "/recommend",
        response_model=RecommendResponse,
        responses={404: {"model": ErrorResponse, "description": "Model not served"}},
    )
    async def recommend(
        body: rm.RecommendRequest,
        lm: ModelDep,
        _: ReadKey,
    ) -> RecommendResponse:
        """Top-k items for a user id, or for an anonymous session (a list of item ids).

        Unknown users get a popularity fallback (``fallback: true``); unknown item ids
        in ``items``, ``exclude`` and ``candidates`` are ignored.
        """
        if body.model is not None and body.model not in (lm.name, lm.version):
            raise HTTPException(
                404,
                f"Model {body.model!r} is not served; the served version "
                f"is {lm.version!r} (GET /v1/models).",
            )
        if body.user is not None:
            rec = engine.for_user(
                lm, body.user, body.k, body.exclude, body.candidates, body.exclude_seen
            )
        else:
            rec = engine.for_session(
                lm, body.items, body.k, body.exclude, body.candidates, body.exclude_seen
            )
        return rec_response(lm, body.user, rec)

    @v1.get(
        "/items/{item_id}/similar",
        response_model=SimilarResponse,
        responses={404: {"model": ErrorResponse, "description": "Unknown item"}},
    )
    def similar(item_id: ItemId, lm: ModelDep, _: ReadKey, k: K = 10) -> SimilarResponse:
        """The items most similar to ``item_id`` (item-to-item)."""
        idx = lm.item_index.get(item_id)
        if idx is None:
            raise UnknownIdError("item", [item_id])
        rec = engine.similar(lm, idx, k)
        return SimilarResponse(
            item=item_id,
            items=[lm.item_ids[i] for i in rec.items.tolist()],
            scores=finite(rec.scores.tolist()),
            model_version=lm.version,
            fallback=rec.fallback,
            strategy=rec.strategy,
        )

    @v1.post(
        "/explain",
        response_model=ExplainResponse,
        responses={404: {"model": ErrorResponse, "description": "Unknown item"}},
    )
    def explain(
        body: rm.ExplainRequest,
        lm: ModelDep,
        _: ReadKey,
    ) -> ExplainResponse:
        """Which history items contributed most to ``item``'s score, in plain words."""
        idx = lm.item_index.get(body.item)
        if idx is None:
            raise UnknownIdError("item", [body.item])
        expl = engine.explain(lm, body.user, body.items, body.item, body.n, catalog)
        return explain_response(expl, body.user, lm.version)

    @v1.post(
        "/feedback",
        response_model=FeedbackResponse,
        responses={503: {"model": ErrorResponse, "description": "Event store unavailable"}},
    )
    async def feedback(body: rm.FeedbackRequest, _: WriteKey) -> FeedbackResponse:  # type: ignore[name-defined]
        """Store interaction events durably (acknowledged after commit); repeated keys are no-ops.

        Each new event changes its user's next recommendations at once.
        """
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
            result = await asyncio.wrap_future(event_store.submit(events))
        except event_store.errors as e:
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

    @v1.get("/models", response_model=ModelsResponse)
    def models(request: Request, _: ReadKey) -> ModelsResponse:
        """The served model version, and the previous one kept for rollback."""
        out = [_model_info(model_store.current, True)]
        if model_store.previous is not None:
            out.append(_model_info(model_store.previous, False))
        return ModelsResponse(models=out, startup_seconds=request.app.state.startup_seconds)

    @v1.get(
        "/models/{model_id}",
        response_model=ModelInfo,
        responses={404: {"model": ErrorResponse, "description": "Unknown model"}},
    )
    def model_detail(model_id: Annotated[str, PathParam(max_length=128)], _: ReadKey) -> ModelInfo:
        """One model version by version string (or name, for the current one)."""
        cur, prev = model_store.current, model_store.previous
        if model_id in (cur.version, cur.name):
            return _model_info(cur, True)
        if prev is not None and model_id == prev.version:
            return _model_info(prev, False)
        raise HTTPException(404, f"Unknown model {model_id!r}; GET /v1/models lists the versions.")

    def swapped(new: LoadedModel) -> ModelInfo:
        metrics.set_model(new.name, new.version, new.load_seconds)
        cache.clear()
        return _model_info(new, True)

    @v1.post("/models/reload", response_model=ModelInfo)
    async def reload(_: AdminKey, body: rm.ReloadRequest | None = None) -> ModelInfo:  # type: ignore[name-defined]
        """Load a model directory beside the current model and swap atomically.

        Requests in flight finish on the old model. A broken directory is refused (422)
        and the current model keeps serving.
        """
        path = body.path if body is not None else None
        new = await anyio.to_thread.run_sync(model_store.reload, path)
        log.info("reloaded: now serving %s", new.version)
        return swapped(new)

    @v1.post(
        "/models/rollback",
        response_model=ModelInfo,
        responses={409: {"model": ErrorResponse, "description": "No previous version"}},
    )
    def rollback(_: AdminKey) -> ModelInfo:
        """Serve the previous model version again."""
        try:
            new = model_store.rollback()
        except ConfigError as e:
            raise HTTPException(409, str(e)) from e
        return swapped(new)

    app.include_router(v1)

    @app.get("/healthz", response_model=StatusResponse)
    async def healthz() -> StatusResponse:
        """Liveness: the process answers."""
        return StatusResponse(status="ok")

    @app.get(
        "/readyz",
        response_model=StatusResponse,
        responses={503: {"model": ErrorResponse, "description": "Not ready"}},
    )
    async def readyz() -> StatusResponse:
        """Readiness: a model is loaded and the event store answers."""
        if not await anyio.to_thread.run_sync(event_store.ping):
            raise HTTPException(503, "The event store does not answer.")
        return StatusResponse(status="ready")

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    async def prometheus(request: Request) -> Response:
        """Prometheus metrics (latency per endpoint, errors, cache, model, store writes)."""
        if settings.metrics_auth:
            auth = request.headers.get("authorization", "")
            bearer = None
            if auth.lower().startswith("bearer "):
                bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=auth[7:].strip())
            await get_principal(request, request.headers.get("x-api-key"), bearer)  # 401 if unknown
        data, ctype = metrics.render()
        return Response(data, media_type=ctype)

    return app


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers: settings come as JSON in ``$LMREC_SERVE_SETTINGS``."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise ConfigError(f"${SETTINGS_ENV} is not set; start the service with `lmrec serve`.")
    settings = ServeSettings(**json.loads(raw))
    return build_app(settings)


def build_app(settings: ServeSettings) -> FastAPI:
    """Load the model and open the store named by ``settings``, then :func:`create_app`."""
    store = ModelStore.open(
        settings.model_dir,
        precompute_k=settings.precompute_k,
        precompute_max_users=settings.precompute_max_users,
        allowed_root=settings.allowed_reload_root,
        ann_min_items=settings.ann_min_items if settings.ann else None,
    )
    return create_app(settings, store, EventStore(settings.store_url))
