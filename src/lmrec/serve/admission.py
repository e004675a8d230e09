"""Admission control: per-key rate limits (429) and bounded concurrency (503), both with
``Retry-After``, decided before any request work is done.

One :class:`Admission` per app decides. Under ``lmrec serve`` it is consulted by the
HTTP protocol (:mod:`lmrec.serve.protocol`) as soon as a request's headers are parsed,
with the number of requests the worker has accepted and not yet answered: a refused
request costs a few microseconds and never reaches the application, so the worker can
refuse many times its capacity while the admitted requests keep their latency. Under
any other ASGI server (tests, plain ``uvicorn``) :class:`AdmissionMiddleware` applies the
same decision with the requests in flight in the app.

Health, readiness and metrics are never refused: probes must see the truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmrec.serve.auth import KeyRing
from lmrec.serve.metrics import Metrics
from lmrec.serve.settings import ServeSettings

#: Key of the :class:`Admission` in the ASGI lifespan state (read by the protocol).
STATE_KEY = "lmrec_admission"
#: Scope extension set by the protocol on requests it has already admitted.
ADMITTED = "lmrec.admitted"
#: Paths that are never refused.
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
#: Rate-limit buckets kept at most (least recently used ones are dropped).
MAX_BUCKETS = 100_000

_TEMPLATES = (
    (re.compile(r"^/v1/items/[^/]+/similar$"), "/v1/items/{item_id}/similar"),
    (re.compile(r"^/v1/models/(?!reload$|rollback$)[^/]+$"), "/v1/models/{model_id}"),
    (re.compile(r"^/v1/users/.+$", re.DOTALL), "/v1/users/{user_id:anyid}"),
)
_STATIC = frozenset(
    {
        "/v1/recommend",
        "/v1/explain",
        "/v1/feedback",
        "/v1/models",
        "/v1/models/reload",
        "/v1/models/rollback",
        *EXEMPT,
    }
)


def endpoint_of(path: str) -> str:
    """The route template of ``path`` (the metrics label), or ``unmatched``."""
    if path in _STATIC:
        return path
    for pattern, template in _TEMPLATES:
        if pattern.match(path):
            return template
    return "unmatched"


@dataclass(frozen=True)
class Verdict:
    """A refusal: status, ``Retry-After`` seconds and the JSON body."""

    status: int
    retry_after: int
    body: bytes

    def headers(self, version: str) -> list[tuple[bytes, bytes]]:
        """Response headers of the refusal (the served model version included)."""
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
            (b"x-model-version", version.encode()),
        ]


def _body(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


class Admission:
    """Decides, per request, whether it is admitted (see the module docstring).

    Parameters
    ----------
    settings : ServeSettings
        ``rate_limit``, ``rate_burst``, ``max_concurrency`` and the timeouts the
        protocol reads.
    keyring : KeyRing
        To charge a request to its API key (requests without a valid key are charged
        to their client address).
    metrics : Metrics
        Refusals are counted like every other answer.
    version : callable
        Returns the served model version, named in every answer.
    """

    def __init__(
        self,
        settings: ServeSettings,
        keyring: KeyRing,
        metrics: Metrics,
        version: Callable[[], str],
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self.metrics = metrics
        self.version = version
        self.max_concurrency = settings.max_concurrency
        self.rate = settings.rate_limit
        self.burst = float(settings.rate_burst or max(1, math.ceil(self.rate or 1)))
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        #: Requests admitted by the protocol whose response is not sent yet (the number
        #: ``max_concurrency`` bounds).
        self.admitted = 0
        #: Requests inside the app (the middleware's count, for servers without the protocol).
        self.in_flight = 0
        self.draining = False
        self._busy = Verdict(
            503,
            1,
            _body(
                f"The server is at its concurrency limit ({self.max_concurrency} requests in "
                "flight per worker); nothing was done. Retry after 1 s."
            ),
        )

    # ------------------------------------------------------------------ decision
    def check(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        backlog: int,
        client: tuple[str, int] | None,
    ) -> Verdict | None:
        """None to admit the request, else the refusal to send (and count it)."""
        if path in EXEMPT:
            return None
        verdict = None
        if self.rate is not None:
            verdict = self._rate_limited(headers, client, self.rate)
        if verdict is None and self.max_concurrency is not None and backlog >= self.max_concurrency:
            verdict = self._busy
        if verdict is not None:
            endpoint = endpoint_of(path)
            self.metrics.requests.labels(endpoint, method, str(verdict.status)).inc()
            self.metrics.errors.labels(
                endpoint, "server" if verdict.status >= 500 else "client"
            ).inc()
            self.metrics.refused.labels("rate" if verdict.status == 429 else "concurrency").inc()
        return verdict

    def _caller(self, headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None) -> str:
        presented = None
        for name, value in headers:
            if name == b"x-api-key":
                presented = value
                break
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                presented = value[7:].strip()
        if presented and self.settings.auth:
            principal = self.keyring.verify(presented.decode("latin-1"))
            if principal is not None:
                return "key:" + principal.key_id
        host = client[0] if client else "unknown"
        return "client:" + hashlib.sha256(host.encode()).hexdigest()[:16]

    def _rate_limited(
        self, headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None, rate: float
    ) -> Verdict | None:
        who = self._caller(headers, client)
        now = time.monotonic()
        bucket = self._buckets.get(who)
        if bucket is None:
            bucket = [self.burst, now]
            self._buckets[who] = bucket
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(who)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return None
        wait = max(1, math.ceil((1.0 - bucket[0]) / rate))
        return Verdict(
            429,
            wait,
            _body(
                f"Rate limit of {rate:g} requests/s per API key (burst {self.burst:g}) "
                f"exceeded; nothing was done. Retry after {wait} s."
            ),
        )


class AdmissionMiddleware:
    """ASGI fallback of the protocol's admission check, and the in-flight count."""

    def __init__(self, app: Any, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        adm = self.admission
        if ADMITTED not in (scope.get("extensions") or {}):
            verdict = adm.check(
                scope["method"], scope["path"], scope["headers"], adm.in_flight, scope.get("client")
            )
            if verdict is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": verdict.status,
                        "headers": verdict.headers(adm.version()),
                    }
                )
                await send({"type": "http.response.body", "body": verdict.body})
                return
        adm.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            adm.in_flight -= 1
