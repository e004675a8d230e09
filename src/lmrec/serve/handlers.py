"""Exception handlers: every error is a JSON ``{"detail": ...}`` with the right status.

404 unknown ids, 422 invalid input or a refused model directory, 400 other lmrec
errors, and a generic 500 (with a log reference, never a traceback) for anything else.
"""

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lmrec.errors import ConfigError, DataError, LmrecError, ModelFileError, UnknownIdError
from lmrec.serve.admission import endpoint_of

log = logging.getLogger("lmrec.serve")


def _body(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    raw = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in raw
    ]
    lines = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": f"Invalid request: {lines}", "errors": errors}, status_code=422)


async def _unknown(_: Request, exc: Exception) -> JSONResponse:
    # The library's message names Python parameters (on_unknown=...); say it in HTTP terms.
    kind = getattr(exc, "kind", "id")
    ids = ", ".join(repr(i) for i in getattr(exc, "ids", [])[:20])
    return _body(404, f"Unknown {kind} id(s) {ids}: not in the served model's training data.")


async def _model_file(_: Request, exc: Exception) -> JSONResponse:
    return _body(422, f"Model directory refused; the current model keeps serving. {exc}")


async def _unprocessable(_: Request, exc: Exception) -> JSONResponse:
    return _body(422, str(exc))


async def _lmrec(_: Request, exc: Exception) -> JSONResponse:
    return _body(400, str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    # The route template, not the path: a path can hold a user id, which logs must not keep.
    route = getattr(request.scope.get("route"), "path", None) or endpoint_of(request.url.path)
    log.error("unhandled error %s on %s %s", ref, request.method, route, exc_info=exc)
    return _body(500, f"Internal server error (reference {ref}); the details were logged.")


async def single_valued_query(request: Request) -> None:
    """Refuse a query parameter given more than once (``?limit=5&limit=6``) with a 422.

    Every query parameter of the API takes one value; using the last one silently would
    hide the client's mistake. Installed on the app as a dependency of every route;
    async, so it runs on the event loop instead of a worker thread.
    """
    seen: set[str] = set()
    for key, _ in request.query_params.multi_items():
        if key in seen:
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", key),
                        "msg": f"query parameter {key!r} is given more than once; give it once",
                        "type": "value_error",
                    }
                ]
            )
        seen.add(key)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(UnknownIdError, _unknown)
    app.add_exception_handler(ModelFileError, _model_file)
    app.add_exception_handler(ConfigError, _unprocessable)
    app.add_exception_handler(DataError, _unprocessable)
    app.add_exception_handler(LmrecError, _lmrec)
    app.add_exception_handler(Exception, _unexpected)
