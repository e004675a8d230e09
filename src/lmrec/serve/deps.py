"""Dependencies injected into the service's routes (``Annotated[..., Depends(...)]``).

Every piece of per-app state lives on ``app.state`` and reaches a route only through
one of these aliases, so a test can replace any of them with
``app.dependency_overrides[get_x] = ...`` and no route closes over app state.

All dependencies are ``async def``: FastAPI runs plain ``def`` dependencies in its
thread pool, and a thread hop per dependency costs more than a whole recommendation.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from lmrec.models.explain import Catalog
from lmrec.serve.admission import Admission
from lmrec.serve.auth import ANONYMOUS_ADMIN, KeyRing, Principal
from lmrec.serve.cluster import Cluster
from lmrec.serve.engine import Engine
from lmrec.serve.events import EventStore
from lmrec.serve.metrics import Metrics
from lmrec.serve.model_store import LoadedModel, ModelStore
from lmrec.serve.online import LRUCache, OnlineOverlay
from lmrec.serve.settings import ServeSettings


# ---------------------------------------------------------------------- app state
async def get_model(request: Request) -> LoadedModel:
    """The model version this request is served by (read once; reloads do not change it).

    The version is noted in the scope, for the response's ``X-Model-Version`` header.
    """
    lm = request.app.state.model_store.current
    request.scope["lmrec.model_version"] = lm.version
    return lm


async def get_model_store(request: Request) -> ModelStore:
    """The holder of the served model (reload, rollback, previous version)."""
    return request.app.state.model_store


async def get_engine(request: Request) -> Engine:
    """Recommendation, similarity and explanation logic of this app."""
    return request.app.state.engine


async def get_event_store(request: Request) -> EventStore:
    """Where feedback events are committed."""
    return request.app.state.event_store


async def get_overlay(request: Request) -> OnlineOverlay:
    """Feedback per user since the model was trained."""
    return request.app.state.overlay


async def get_cache(request: Request) -> LRUCache:
    """The cache of computed recommendation lists."""
    return request.app.state.cache


async def get_metrics(request: Request) -> Metrics:
    """This app's Prometheus collectors."""
    return request.app.state.metrics


async def get_settings(request: Request) -> ServeSettings:
    """The settings the app was built with."""
    return request.app.state.settings


async def get_titles(request: Request) -> dict[str, str]:
    """Item id -> title from the catalog (empty without one)."""
    return request.app.state.titles


async def get_catalog(request: Request) -> Catalog | None:
    """The item catalog for explanations (None without one)."""
    return request.app.state.catalog


async def get_keyring(request: Request) -> KeyRing:
    """The API keys the app accepts."""
    return request.app.state.keyring


async def get_admission(request: Request) -> Admission:
    """Rate and concurrency limits, and whether the server is draining before shutdown."""
    return request.app.state.admission


async def get_cluster(request: Request) -> Cluster | None:
    """The worker cluster this app belongs to (None for a single worker)."""
    return request.app.state.cluster


ModelDep = Annotated[LoadedModel, Depends(get_model)]
ClusterDep = Annotated[Cluster | None, Depends(get_cluster)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
ModelStoreDep = Annotated[ModelStore, Depends(get_model_store)]
EngineDep = Annotated[Engine, Depends(get_engine)]
EventStoreDep = Annotated[EventStore, Depends(get_event_store)]
OverlayDep = Annotated[OnlineOverlay, Depends(get_overlay)]
CacheDep = Annotated[LRUCache, Depends(get_cache)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
TitlesDep = Annotated[dict[str, str], Depends(get_titles)]
CatalogDep = Annotated[Catalog | None, Depends(get_catalog)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]


# ---------------------------------------------------------------------- authentication
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An lmrec API key.")
_bearer = HTTPBearer(auto_error=False, description="An lmrec API key as a bearer token.")


def authenticate(settings: ServeSettings, keyring: KeyRing, presented: str | None) -> Principal:
    """The principal owning ``presented`` (admin when auth is off); 401 when unknown."""
    if not settings.auth:
        return ANONYMOUS_ADMIN
    principal = keyring.verify(presented)
    if principal is None:
        raise HTTPException(
            401,
            "Missing or invalid API key; send it as 'Authorization: Bearer <key>' or "
            "'X-API-Key: <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def get_principal(
    settings: SettingsDep,
    keyring: KeyRingDep,
    key: Annotated[str | None, Security(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller, from ``X-API-Key`` or ``Authorization: Bearer``; 401 when unknown."""
    presented = key or (bearer.credentials if bearer is not None else None)
    return authenticate(settings, keyring, presented)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(role: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits keys of ``role`` or higher (403 otherwise)."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.allows(role):
            raise HTTPException(
                403, f"This API key has role {principal.role!r}; this endpoint needs {role!r}."
            )
        return principal

    return check


ReadKey = Annotated[Principal, Depends(require_role("read"))]
WriteKey = Annotated[Principal, Depends(require_role("write"))]
AdminKey = Annotated[Principal, Depends(require_role("admin"))]


async def require_erase(principal: PrincipalDep) -> Principal:
    """Admits keys with the ``erase`` permission (403 otherwise), whatever their role."""
    if not principal.erase:
        raise HTTPException(
            403,
            f"This API key (role {principal.role!r}) lacks the 'erase' permission that "
            "deleting users needs; create a key with it: "
            "`lmrec serve --create-key write --key-erase`.",
        )
    return principal


EraseKey = Annotated[Principal, Depends(require_erase)]


# ---------------------------------------------------------------------- object-level authorization
def authorize_user(principal: Principal, user: str, settings: ServeSettings, field: str) -> None:
    """403 unless ``principal``'s scope covers ``user`` (sent in request field ``field``)."""
    if not principal.may_act_for(user, settings.tenant_separator):
        raise HTTPException(
            403,
            f"This API key may not act for user {user!r} (field {field!r}): the key is "
            "limited to some users or tenants.",
        )


def authorize_history(principal: Principal, user: str, settings: ServeSettings) -> None:
    """403 unless ``principal`` may read ``user``'s history (explanations of a user)."""
    authorize_user(principal, user, settings, "user")
    if not principal.history:
        raise HTTPException(
            403,
            "This API key may not read user histories, which an explanation for 'user' "
            "reveals; explain a session with 'items' instead, or use a key with history "
            "permission.",
        )
