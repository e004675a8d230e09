"""The FastAPI application, built by :func:`create_app` (no module-level app or settings).

Routes (all JSON; OpenAPI at ``/openapi.json``, docs at ``/docs``), one router per
resource under :mod:`lmrec.serve.routes`:

=========================  ======  ===============================================
``POST /v1/recommend``     read    top-k for a user id or an anonymous session
``GET /v1/items/{id}/similar`` read  item-to-item
``POST /v1/explain``       read    the history items behind a recommendation
``POST /v1/feedback``      write   store interaction events (durable, idempotent)
``GET /v1/models``         read    the served model version (and the previous one)
``POST /v1/models/reload`` admin   load a model directory beside the current one, swap
``POST /v1/models/rollback`` admin swap back to the previous version
``DELETE /v1/users/{id}``  erase   delete a user everywhere (``erase`` permission)
``GET /healthz``, ``/readyz``, ``/metrics``  liveness, readiness, Prometheus
``GET /ui``, ``/v1/ui/*``  public     the browser page; its search, titles, users (read)
=========================  ======  ===============================================

The app's state (model store, engine, event store, metrics, ...) lives on
``app.state`` and reaches routes through the dependencies of :mod:`lmrec.serve.deps`.
"""

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
from fastapi import Depends, FastAPI

from lmrec._version import __version__
from lmrec.errors import ConfigError
from lmrec.models.explain import Catalog
from lmrec.serve.admission import STATE_KEY, Admission, AdmissionMiddleware
from lmrec.serve.auth import KeyRing
from lmrec.serve.cluster import Cluster
from lmrec.serve.deps import get_model
from lmrec.serve.engine import Engine, RecList
from lmrec.serve.events import EventStore
from lmrec.serve.handlers import install_error_handlers, single_valued_query
from lmrec.serve.metrics import Metrics
from lmrec.serve.middleware import ObserveMiddleware
from lmrec.serve.model_store import LoadedModel, ModelStore
from lmrec.serve.online import LRUCache, OnlineOverlay
from lmrec.serve.routes import feedback, health, models, recommend, ui, users
from lmrec.serve.routes.models import swapped
from lmrec.serve.schemas import request_models
from lmrec.serve.settings import ServeSettings

__all__ = ["SETTINGS_ENV", "app_from_env", "build_app", "create_app", "get_model"]

log = logging.getLogger("lmrec.serve")

#: Environment variable carrying the settings (JSON) to uvicorn worker processes.
SETTINGS_ENV = "LMREC_SERVE_SETTINGS"


def _load_catalog(path: Path | None) -> Catalog | None:
    """The item catalog (id column 'item'; title, genres, year, ...): titles for the page,
    titles and shared attributes for explanations."""
    if path is None:
        return None
    from lmrec.data import read_items

    return Catalog(read_items(path))


async def _sync_loop(
    overlay: OnlineOverlay, store: EventStore, cache: LRUCache, interval: float
) -> None:
    """Read events written by other workers into this worker's overlay, forever; rebuild it
    (and drop cached lists) when a worker deleted a user."""
    while True:
        await asyncio.sleep(interval)
        try:
            if await anyio.to_thread.run_sync(overlay.refresh_after_deletions, store):
                cache.clear()
            await anyio.to_thread.run_sync(overlay.sync, store)
        except store.errors:
            log.warning("could not read new events from the store; retrying", exc_info=True)


#: A signal handler that ``signal.signal`` can put back (a function, SIG_DFL or SIG_IGN).
SignalHandler = Callable[[int, FrameType | None], Any] | int


def _drain_on_sigterm(admission: Admission, drain_s: float) -> SignalHandler | None:
    """Make SIGTERM turn readiness to 503 at once, then (after ``drain_s``) shut down.

    The server's own SIGTERM handler (uvicorn's graceful shutdown: stop accepting, let
    requests in flight finish) runs after the drain. Only possible in the main thread
    (under a test client the lifespan runs elsewhere, and nothing is installed).
    Returns the handler it replaced, or None.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def shut_down(sig: int) -> None:
        if callable(previous):
            previous(sig, None)
        else:  # no server handler: the default action, terminate
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(sig)

    def on_sigterm(sig: int, _frame: object) -> None:
        if admission.draining:  # a second SIGTERM: stop draining now
            shut_down(sig)
            return
        admission.draining = True
        log.info("SIGTERM: not ready any more; shutting down in %.1fs", drain_s)
        if drain_s > 0:
            loop.call_soon_threadsafe(loop.call_later, drain_s, shut_down, sig)
        else:
            shut_down(sig)

    signal.signal(signal.SIGTERM, on_sigterm)
    return previous


async def _follow_loop(cluster: Cluster, interval: float) -> None:
    """Serve the cluster's published model version, forever."""
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(cluster.follow)
        except Exception:  # noqa: BLE001 -- a database hiccup must not stop following
            log.warning("could not read the cluster's model version; retrying", exc_info=True)


@asynccontextmanager
async def _lifespan(app: FastAPI):  # noqa: ANN202
    """Replay stored feedback, publish the model in the metrics, run the sync loop.

    The lifespan state carries the :class:`Admission` to the HTTP protocol.
    """
    state = app.state
    t0 = time.perf_counter()
    cluster = state.cluster
    if cluster is not None:  # a worker started after a reload serves the reloaded version
        await anyio.to_thread.run_sync(cluster.follow)
    # note the store's last deletion first: one made during the replay triggers a rebuild
    await anyio.to_thread.run_sync(state.overlay.refresh_after_deletions, state.event_store)
    n = await anyio.to_thread.run_sync(
        lambda: state.overlay.sync(state.event_store, max_events=10**9)
    )
    lm = state.model_store.current
    state.metrics.set_model(lm.name, lm.version, lm.load_seconds)
    state.startup_seconds = state.model_store.startup_seconds + (
        time.perf_counter() - state.created
    )
    state.metrics.startup.set(state.startup_seconds)
    log.info(
        "ready: model %s, %d feedback events replayed in %.2fs, startup %.2fs",
        lm.version,
        n,
        time.perf_counter() - t0,
        state.startup_seconds,
    )
    tasks = [
        asyncio.create_task(
            _sync_loop(
                state.overlay, state.event_store, state.cache, state.settings.sync_interval_s
            )
        )
    ]
    if cluster is not None:
        tasks.append(asyncio.create_task(_follow_loop(cluster, state.settings.cluster_poll_s)))
    previous = _drain_on_sigterm(state.admission, state.settings.drain_s)
    try:
        yield {STATE_KEY: state.admission}
    finally:
        for task in tasks:
            task.cancel()
        if cluster is not None:
            await anyio.to_thread.run_sync(cluster.leave)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        await anyio.to_thread.run_sync(state.event_store.close)


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
    created = time.perf_counter()
    metrics = Metrics()
    overlay = OnlineOverlay()
    cache: LRUCache[RecList] = LRUCache(settings.cache_size, metrics.cache_hit, metrics.cache_miss)
    if keyring is None:
        keyring = (
            KeyRing.load(settings.keys_file)
            if settings.auth and settings.keys_file
            else KeyRing([])
        )
    app = FastAPI(
        title="lmrec",
        version=__version__,
        description="Recommendations, explanations and feedback over an lmrec model.",
        lifespan=_lifespan,
        dependencies=[Depends(single_valued_query)],
    )
    state = app.state
    state.created = created
    state.settings = settings
    state.model_store = model_store
    state.event_store = event_store
    state.overlay = overlay
    state.cache = cache
    state.engine = Engine(overlay, cache)
    state.metrics = metrics
    state.keyring = keyring
    state.catalog = _load_catalog(settings.catalog)
    state.titles = {} if state.catalog is None else state.catalog.titles
    state.startup_seconds = model_store.startup_seconds
    state.admission = admission = Admission(
        settings, keyring, metrics, lambda: model_store.current.version
    )
    state.cluster = None
    if settings.cluster_id is not None:

        def followed(new: LoadedModel) -> None:
            # a version published by a deletion: drop the user's feedback before this
            # worker reports the version (the deleting request waits for that report)
            overlay.refresh_after_deletions(event_store)
            swapped(new, metrics, cache)

        state.cluster = Cluster(settings.cluster_id, event_store, model_store, followed)
    install_error_handlers(app)
    app.add_middleware(AdmissionMiddleware, admission=admission)
    app.add_middleware(
        ObserveMiddleware, metrics=metrics, max_body=settings.max_body_bytes, admission=admission
    )
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    rm = request_models(settings)
    app.include_router(recommend.build_router(rm, settings))
    app.include_router(feedback.build_router(rm))
    app.include_router(models.build_router(rm))
    app.include_router(users.build_router(settings))
    app.include_router(health.router)
    app.include_router(ui.build_router(settings))
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
