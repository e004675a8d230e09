"""``DELETE /v1/users/{user_id}`` (keys with the ``erase`` permission): the right to erasure."""

from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from starlette.convertors import Convertor, register_url_convertor

from lmrec.serve.deps import (
    CacheDep,
    ClusterDep,
    EngineDep,
    EraseKey,
    EventStoreDep,
    MetricsDep,
    ModelStoreDep,
    SettingsDep,
    authorize_user,
)
from lmrec.serve.erasure import erase_user
from lmrec.serve.routes import ERRORS, STORE_UNAVAILABLE
from lmrec.serve.routes.models import swapped
from lmrec.serve.schemas import ErasedModel, EraseResponse
from lmrec.serve.settings import ServeSettings


class AnyIdConvertor(Convertor[str]):
    """Any user id, '/' and line breaks included: starlette's ``path`` convertor (``.*``)
    does not match a line break, so such an id (accepted by feedback) would get a 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anyid", AnyIdConvertor())


def build_router(settings: ServeSettings) -> APIRouter:
    """The user routes, with the id length limit of one app."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["users"])
    UserId = Annotated[  # noqa: N806
        str,
        PathParam(
            min_length=1,
            max_length=settings.max_id_length,
            description="The user id, as sent in recommend and feedback requests "
            "(URL-encoded; it may contain '/').",
        ),
    ]

    # ``:anyid`` so that any stored id (feedback accepts '/' and line breaks) can be deleted
    @router.delete(
        "/users/{user_id:anyid}",
        operation_id="delete_user",
        response_model=EraseResponse,
        responses=STORE_UNAVAILABLE,
    )
    async def delete_user(
        user_id: UserId,
        models: ModelStoreDep,
        store: EventStoreDep,
        engine: EngineDep,
        metrics: MetricsDep,
        cache: CacheDep,
        cluster: ClusterDep,
        settings: SettingsDep,
        key: EraseKey,
    ) -> EraseResponse:
        """Delete a user everywhere the service keeps them, before answering.

        Their events leave the event store (an audit row keeps counts, not the id); the
        served model stops using them at once (precomputed list, model row, history for
        explanations, online feedback, cached lists): they are served as an unknown user.
        A model that can forget exactly (popularity, kNN, EASE, PureSVD, content, text2cf)
        is replaced by a new version without them, written over the served directory;
        other models need retraining on the training data (``model.status`` is then
        ``pending``, and ``model.detail`` says how to finish). Deleting an unknown or
        already deleted user is not an error: 200 with ``found: false`` and zero counts.
        """
        authorize_user(key, user_id, settings, "user_id")
        try:
            done = await anyio.to_thread.run_sync(
                lambda: erase_user(user_id, model_store=models, event_store=store, engine=engine)
            )
        except store.errors as e:
            raise HTTPException(
                503,
                "The event store is unavailable; the user's events were not deleted (the "
                "served model no longer uses the user's training data). Retry the DELETE.",
            ) from e
        workers = None
        if done.new_version is not None:
            swapped(done.new_version, metrics, cache)
            if cluster is not None:
                published = await anyio.to_thread.run_sync(
                    cluster.publish, done.new_version, settings.cluster_sync_timeout_s
                )
                workers = published.in_sync
        m = done.model
        return EraseResponse(
            user=user_id,
            found=done.found,
            request_id=done.request_id,
            events_deleted=done.events_deleted,
            feedback_cleared=done.feedback_cleared,
            cached_lists_cleared=done.cached_lists_cleared,
            precomputed_cleared=done.precomputed_cleared,
            model=ErasedModel(
                status=m.status,
                method=m.method,
                version=m.version,
                n_interactions=m.n_interactions,
                detail=m.detail,
            ),
            workers=workers,
        )

    return router
