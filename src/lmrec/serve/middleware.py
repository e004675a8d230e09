"""Pure ASGI middleware of the service: body-size limit and per-route metrics."""

import time
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from lmrec.serve.admission import Admission
from lmrec.serve.metrics import Metrics

#: Scope key where :func:`lmrec.serve.deps.get_model` notes the version serving a request.
VERSION_KEY = "lmrec.model_version"


class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds the limit of {limit} bytes.")


class ObserveMiddleware:
    """Body-size limit (413), per-route latency/status metrics, and response headers.

    Every response carries ``X-Model-Version``: the version that served the request
    (or, for routes that use no model, the version being served), and, while the
    server drains before a shutdown, ``Connection: close``.
    """

    def __init__(self, app: Any, metrics: Metrics, max_body: int, admission: Admission) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.admission = admission

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
            headers = {"x-model-version": self.admission.version()}
            await JSONResponse({"detail": msg}, status_code=code, headers=headers)(
                scope, receive, send
            )
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
                version = scope.get(VERSION_KEY) or self.admission.version()
                extra = [(b"x-model-version", version.encode())]
                if self.admission.draining:
                    extra.append((b"connection", b"close"))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
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
