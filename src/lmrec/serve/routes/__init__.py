"""The service's routers, one module per resource.

Each module has a ``build_router(models)``: the endpoints are defined inside it only
because their body annotations are this app's request classes (which carry the app's
limits, so the OpenAPI document states them). Everything else an endpoint uses --
model, engine, stores, metrics, settings, the caller -- is injected through the
dependencies of :mod:`lmrec.serve.deps`.
"""

from typing import Any

from lmrec.serve.schemas import ErrorResponse, ValidationErrorResponse

#: Error answers shared by every ``/v1`` route (for the OpenAPI document).
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "Unreadable request body"},
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    403: {"model": ErrorResponse, "description": "The key's role does not allow this"},
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ValidationErrorResponse, "description": "Invalid request"},
}
#: The extra answer of routes that write to (or delete from) the event store.
STORE_UNAVAILABLE: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorResponse, "description": "Event store unavailable"}
}


def links(**targets: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """A ``responses`` entry declaring OpenAPI links of the 200 answer.

    Each keyword is a link name mapped to ``{"operationId": ..., "parameters": ...}`` or
    ``{"operationId": ..., "requestBody": ...}`` with runtime expressions
    (``$response.body#/items/0``). Clients and stateful API fuzzers follow them to
    chain calls (recommend -> similar -> explain) with real ids.
    """
    return {200: {"links": dict(targets)}}
