"""``/v1/models`` (read keys) and ``/v1/models/reload`` / ``rollback`` (admin keys)."""

import logging
from typing import TYPE_CHECKING, Annotated, TypeAlias

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam

from lmrec.errors import ConfigError
from lmrec.models.capabilities import PrivateModel, declares
from lmrec.serve.deps import (
    AdminKey,
    CacheDep,
    ClusterDep,
    MetricsDep,
    ModelStoreDep,
    ReadKey,
    SettingsDep,
)
from lmrec.serve.metrics import Metrics
from lmrec.serve.model_store import LoadedModel
from lmrec.serve.online import LRUCache
from lmrec.serve.routes import ERRORS, links
from lmrec.serve.schemas import (
    ErrorResponse,
    ModelInfo,
    ModelsResponse,
    PrivacyInfo,
    ReloadBody,
    RequestModels,
)

log = logging.getLogger("lmrec.serve")

_DETAIL_OF_VERSION = {
    "operationId": "model_detail",
    "parameters": {"model_id": "$response.body#/version"},
}


def model_info(lm: LoadedModel, current: bool) -> ModelInfo:
    """The public description of one loaded model version."""
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
        privacy=privacy_info(lm),
    )


def privacy_info(lm: LoadedModel) -> PrivacyInfo | None:
    """The differential-privacy guarantee of a model fitted with ``dp_epsilon``, or None."""
    p = lm.model.privacy_ if declares(lm.model, PrivateModel) else None
    if p is None:
        return None
    return PrivacyInfo(
        mechanism=p["mechanism"], unit=p["unit"], epsilon=p["epsilon"], delta=p["delta"]
    )


def swapped(new: LoadedModel, metrics: Metrics, cache: LRUCache) -> ModelInfo:
    """Publish a newly served version in the metrics and drop cached lists."""
    metrics.set_model(new.name, new.version, new.load_seconds)
    cache.clear()
    return model_info(new, True)


def build_router(rm: RequestModels) -> APIRouter:
    """The model routes, with the reload request class of one app."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["models"])
    if TYPE_CHECKING:  # FastAPI reads this app's class; mypy checks what the route reads
        ReloadRequest: TypeAlias = ReloadBody
    else:
        ReloadRequest = rm.ReloadRequest  # noqa: N806
    # reload and rollback come before /models/{model_id}: the first route whose path
    # matches answers a wrong method (405 with its Allow header).

    @router.get(
        "/models",
        operation_id="list_models",
        response_model=ModelsResponse,
        responses=links(
            Current={
                "operationId": "model_detail",
                "parameters": {"model_id": "$response.body#/models/0/version"},
            }
        ),
    )
    def models(request: Request, store: ModelStoreDep, _: ReadKey) -> ModelsResponse:
        """The served model version, and the previous one kept for rollback."""
        out = [model_info(store.current, True)]
        if store.previous is not None:
            out.append(model_info(store.previous, False))
        return ModelsResponse(models=out, startup_seconds=request.app.state.startup_seconds)

    @router.post(
        "/models/reload",
        operation_id="reload_model",
        response_model=ModelInfo,
        responses=links(Loaded=_DETAIL_OF_VERSION),
    )
    async def reload(
        store: ModelStoreDep,
        metrics: MetricsDep,
        cache: CacheDep,
        cluster: ClusterDep,
        settings: SettingsDep,
        _: AdminKey,
        body: ReloadRequest | None = None,
    ) -> ModelInfo:
        """Load a model directory beside the current model and swap atomically.

        Requests in flight finish on the old model. A broken directory is refused (422)
        and the current model keeps serving. With several workers, the answer comes once
        every worker serves the new version.
        """
        path = body.path if body is not None else None
        new = await anyio.to_thread.run_sync(store.reload, path)
        log.info("reloaded: now serving %s", new.version)
        info = swapped(new, metrics, cache)
        if cluster is not None:
            done = await anyio.to_thread.run_sync(
                cluster.publish, new, settings.cluster_sync_timeout_s
            )
            info.workers = done.in_sync
        return info

    @router.post(
        "/models/rollback",
        operation_id="rollback_model",
        response_model=ModelInfo,
        responses={
            409: {"model": ErrorResponse, "description": "No previous version"},
            **links(Restored=_DETAIL_OF_VERSION),
        },
    )
    def rollback(
        store: ModelStoreDep,
        metrics: MetricsDep,
        cache: CacheDep,
        cluster: ClusterDep,
        settings: SettingsDep,
        _: AdminKey,
    ) -> ModelInfo:
        """Serve the previous model version again (on every worker before answering)."""
        try:
            new = store.rollback()
        except ConfigError as e:
            raise HTTPException(409, str(e)) from e
        info = swapped(new, metrics, cache)
        if cluster is not None:
            info.workers = cluster.publish(new, settings.cluster_sync_timeout_s).in_sync
        return info

    @router.get(
        "/models/{model_id}",
        operation_id="model_detail",
        response_model=ModelInfo,
        responses={404: {"model": ErrorResponse, "description": "Unknown model"}},
    )
    def model_detail(
        model_id: Annotated[str, PathParam(max_length=128)], store: ModelStoreDep, _: ReadKey
    ) -> ModelInfo:
        """One model version by version string (or name, for the current one)."""
        cur, prev = store.current, store.previous
        if model_id in (cur.version, cur.name):
            return model_info(cur, True)
        if prev is not None and model_id == prev.version:
            return model_info(prev, False)
        raise HTTPException(404, f"Unknown model {model_id!r}; GET /v1/models lists the versions.")

    return router
