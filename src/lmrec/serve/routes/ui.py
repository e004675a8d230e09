"""``/ui``: the browser page, and the small read routes it needs (users, title search, titles).

The page (``lmrec/serve/ui/``, package data: plain HTML, CSS and JavaScript, no build step
and no third-party code) is public -- it holds no data. Everything it shows comes from
the API with the key the person types into it, sent as an ``Authorization`` header and
kept in the tab's ``sessionStorage``; a key never appears in a URL.
"""

from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from lmrec.serve.deps import ModelDep, ReadKey, TitlesDep
from lmrec.serve.routes import ERRORS
from lmrec.serve.settings import ServeSettings

#: Static files of the page and their media types.
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
#: The page allows its own scripts, styles and API calls only (no inline script, no CDN).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class UsersResponse(BaseModel):
    users: list[str] = Field(description="User ids known to the served model (a sample).")


class CatalogHit(BaseModel):
    item: str
    title: str


class SearchResponse(BaseModel):
    items: list[CatalogHit] = Field(
        description="Items whose title contains every word of the query."
    )


class TitlesResponse(BaseModel):
    titles: dict[str, str] = Field(
        description="Item id -> title (the id itself without a catalog)."
    )


def _static(name: str) -> str:
    return files("lmrec.serve.ui").joinpath(name).read_text(encoding="utf-8")


def build_router(settings: ServeSettings) -> APIRouter:
    """The page and its helper routes."""
    router = APIRouter()

    class TitlesRequest(BaseModel):
        items: list[Annotated[str, Field(min_length=1, max_length=settings.max_id_length)]] = Field(
            max_length=settings.max_list
        )

    Limit = Annotated[int, Query(ge=1, le=200, description="Most results.")]  # noqa: N806

    @router.get("/ui", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"), headers={"Content-Security-Policy": _CSP})

    @router.get("/ui/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("Not found", status_code=404, media_type="text/plain")
        return Response(
            _static(name), media_type=_STATIC[name], headers={"Cache-Control": "no-cache"}
        )

    api = APIRouter(prefix="/v1/ui", responses=ERRORS, tags=["ui"])

    @api.get("/users", response_model=UsersResponse)
    def users(lm: ModelDep, _: ReadKey, q: str = "", limit: Limit = 50) -> UsersResponse:
        """User ids of the served model that start with ``q`` (for the page's user picker);
        deleted users are not listed."""
        ids = lm.model.user_ids_.lookup(range(len(lm.model.user_ids_)))
        served = lm.user_index
        out = [u for u in map(str, ids) if u.startswith(q) and u in served][:limit]
        return UsersResponse(users=out)

    @api.get("/search", response_model=SearchResponse)
    def search(
        lm: ModelDep,
        titles: TitlesDep,
        _: ReadKey,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Limit = 20,
    ) -> SearchResponse:
        """Catalog items whose title (or id, without a catalog) contains every word of ``q``,
        most popular first."""
        words = q.lower().split()
        hits = []
        for idx in lm.popular_order.tolist():
            item = lm.item_ids[idx]
            title = titles.get(item, item)
            text = title.lower()
            if all(w in text for w in words):
                hits.append(CatalogHit(item=item, title=title))
                if len(hits) >= limit:
                    break
        return SearchResponse(items=hits)

    @api.post("/titles", response_model=TitlesResponse)
    def titles_of(body: TitlesRequest, titles: TitlesDep, _: ReadKey) -> TitlesResponse:
        """Titles of item ids (ids without a title map to themselves)."""
        return TitlesResponse(titles={i: titles.get(i, i) for i in body.items})

    router.include_router(api)
    return router
