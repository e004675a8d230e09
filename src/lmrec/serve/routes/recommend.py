"""``/v1/recommend``, ``/v1/items/{item_id}/similar`` and ``/v1/explain`` (read keys)."""

from typing import TYPE_CHECKING, Annotated, TypeAlias

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam

from lmrec.models.explain import Explanation
from lmrec.serve.deps import (
    CatalogDep,
    EngineDep,
    MetricsDep,
    ModelDep,
    ReadKey,
    SettingsDep,
    authorize_history,
    authorize_user,
)
from lmrec.serve.engine import RecList
from lmrec.serve.metrics import Metrics
from lmrec.serve.model_store import LoadedModel
from lmrec.serve.routes import ERRORS, links
from lmrec.serve.schemas import (
    ContributionOut,
    ErrorResponse,
    ExplainBody,
    ExplainResponse,
    RecommendBody,
    RecommendResponse,
    RequestModels,
    SimilarResponse,
    finite,
)
from lmrec.serve.settings import ServeSettings


def _rec_response(
    lm: LoadedModel, user: str | None, rec: RecList, metrics: Metrics
) -> RecommendResponse:
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


def unknown_item(item: str, where: str, lm: LoadedModel) -> HTTPException:
    """The 404 for an item id the served model does not know, in the API's words."""
    return HTTPException(
        404,
        f"Unknown item {item!r} ({where}): it is not in the catalog of the served model "
        f"{lm.version!r}. Send an item id the model was trained on.",
    )


def build_router(rm: RequestModels, settings: ServeSettings) -> APIRouter:
    """The read routes, with the request classes and path/query limits of one app."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["recommendations"])
    if TYPE_CHECKING:  # FastAPI reads this app's classes; mypy checks what the routes read
        RecommendRequest: TypeAlias = RecommendBody
        ExplainRequest: TypeAlias = ExplainBody
    else:
        RecommendRequest, ExplainRequest = rm.RecommendRequest, rm.ExplainRequest  # noqa: N806
    ItemId = Annotated[str, PathParam(min_length=1, max_length=settings.max_id_length)]  # noqa: N806
    K = Annotated[int, Query(ge=1, le=settings.max_k, description="List length.")]  # noqa: N806

    @router.post(
        "/recommend",
        operation_id="recommend",
        response_model=RecommendResponse,
        responses={
            404: {"model": ErrorResponse, "description": "Model not served"},
            **links(
                SimilarToFirst={
                    "operationId": "similar",
                    "parameters": {"item_id": "$response.body#/items/0"},
                },
                ExplainFirst={
                    "operationId": "explain",
                    "requestBody": {
                        "user": "$request.body#/user",
                        "item": "$response.body#/items/0",
                    },
                },
            ),
        },
    )
    async def recommend(
        body: RecommendRequest,
        lm: ModelDep,
        engine: EngineDep,
        metrics: MetricsDep,
        settings: SettingsDep,
        key: ReadKey,
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
            authorize_user(key, body.user, settings, "user")
            rec = engine.for_user(
                lm, body.user, body.k, body.exclude, body.candidates, body.exclude_seen
            )
        else:
            assert body.items is not None  # the request class admits exactly one of the two
            rec = engine.for_session(
                lm, body.items, body.k, body.exclude, body.candidates, body.exclude_seen
            )
        return _rec_response(lm, body.user, rec, metrics)

    @router.get(
        "/items/{item_id}/similar",
        operation_id="similar",
        response_model=SimilarResponse,
        responses={
            404: {"model": ErrorResponse, "description": "Unknown item"},
            **links(
                SimilarToFirst={
                    "operationId": "similar",
                    "parameters": {"item_id": "$response.body#/items/0"},
                },
                ExplainFirst={
                    "operationId": "explain",
                    "requestBody": {
                        "items": ["$request.path.item_id"],
                        "item": "$response.body#/items/0",
                    },
                },
            ),
        },
    )
    def similar(
        item_id: ItemId, lm: ModelDep, engine: EngineDep, _: ReadKey, k: K = 10
    ) -> SimilarResponse:
        """The items most similar to ``item_id`` (item-to-item)."""
        idx = lm.item_index.get(item_id)
        if idx is None:
            raise unknown_item(item_id, "the path's item_id", lm)
        rec = engine.similar(lm, idx, k)
        return SimilarResponse(
            item=item_id,
            items=[lm.item_ids[i] for i in rec.items.tolist()],
            scores=finite(rec.scores.tolist()),
            model_version=lm.version,
            fallback=rec.fallback,
            strategy=rec.strategy,
        )

    @router.post(
        "/explain",
        operation_id="explain",
        response_model=ExplainResponse,
        responses={404: {"model": ErrorResponse, "description": "Unknown item"}},
    )
    def explain(
        body: ExplainRequest,
        lm: ModelDep,
        engine: EngineDep,
        catalog: CatalogDep,
        settings: SettingsDep,
        key: ReadKey,
    ) -> ExplainResponse:
        """Which history items contributed most to ``item``'s score, in plain words.

        For a ``user``, the key must be allowed to read that user's history.
        """
        if body.user is not None:
            authorize_history(key, body.user, settings)
        if body.item not in lm.item_index:
            raise unknown_item(body.item, "field 'item'", lm)
        expl = engine.explain(lm, body.user, body.items, body.item, body.n, catalog)
        return explain_response(expl, body.user, lm.version)

    return router


def explain_response(expl: Explanation, user: str | None, version: str) -> ExplainResponse:
    """The HTTP body of a library :class:`~lmrec.models.explain.Explanation`."""
    return ExplainResponse(
        user=user,
        item=expl.item,
        title=expl.title,
        score=finite([expl.score])[0],
        contributions=[
            ContributionOut(item=c.item, title=c.title, weight=c.contribution)
            for c in expl.contributions
        ],
        reasons=list(expl.reasons),
        explanation=list(expl.sentences),
        method=expl.method,
        fallback=False,
        model_version=version,
    )
