"""The HTTP/1.1 protocol ``lmrec serve`` runs: uvicorn's httptools protocol plus limits.

Added to each connection:

- **connection limit**: past ``max_connections`` open connections per worker a new
  connection gets ``503`` with ``Retry-After`` and is closed at once;
- **read timeout**: a request's headers and body must arrive within
  ``request_timeout_s`` of the connection opening (or of the request's first byte on a
  kept-alive connection), else ``408`` and the connection is closed. This drops
  slowloris clients, which trickle a header byte at a time, and connections that
  never send anything; idle kept-alive connections close after ``keep_alive_s``;
- **admission** (:mod:`lmrec.serve.admission`): once the headers are parsed, a request
  over its key's rate limit (``429``) or arriving while ``max_concurrency`` requests
  are unanswered (``503``) is answered right here, without starting the application.
  A refusal on a kept-alive connection keeps the connection (its body is skipped).

The :class:`~lmrec.serve.admission.Admission` comes from the app's lifespan state, so
the protocol needs no configuration of its own: ``uvicorn --http
lmrec.serve.protocol:LmrecHttpProtocol`` is all it takes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from lmrec.serve.admission import ADMITTED, STATE_KEY, Admission, Verdict

_CLOSE = (b"connection", b"close")


def _status_line(status: int) -> bytes:
    reason = {408: b"Request Timeout", 429: b"Too Many Requests", 503: b"Service Unavailable"}
    return b"HTTP/1.1 %d %s\r\n" % (status, reason.get(status, b""))


def _raw_response(verdict: Verdict, version: str, close: bool) -> bytes:
    headers = verdict.headers(version) + ([_CLOSE] if close else [])
    lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return _status_line(verdict.status) + lines + b"\r\n" + verdict.body


class LmrecHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with connection limits, read timeouts and admission."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admission: Admission | None = self.app_state.get(STATE_KEY)
        self._read_timer: asyncio.TimerHandle | None = None
        # The current request was admitted and counts in ``admission.admitted`` until
        # its response is sent (or the connection is lost before that).
        self._holds_slot = False

    # ------------------------------------------------------------------ connections
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn's transport is an asyncio.Transport
        """Refuse connections past the limit; start the read timer."""
        over = self.admission is not None and len(self.connections) >= (
            self.admission.settings.max_connections
        )
        super().connection_made(transport)
        if over:
            assert self.admission is not None
            busy = Verdict(
                503,
                1,
                b'{"detail": "The server has too many open connections; retry after 1 s."}',
            )
            transport.write(_raw_response(busy, self.admission.version(), close=True))
            transport.close()
            return
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the read timer with the connection; free a slot still held."""
        self._disarm_read_timer()
        self._release_slot()
        super().connection_lost(exc)

    def _arm_read_timer(self) -> None:
        if self.admission is not None and self._read_timer is None:
            self._read_timer = self.loop.call_later(
                self.admission.settings.request_timeout_s, self._read_timed_out
            )

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        answered = self.cycle is not None and self.cycle.response_started
        if self.scope is not None and not answered and self.admission is not None:
            slow = Verdict(
                408, 1, b'{"detail": "The request did not arrive in time; send it at once."}'
            )
            self.transport.write(_raw_response(slow, self.admission.version(), close=True))
        self.transport.close()

    # ------------------------------------------------------------------ requests
    def on_message_begin(self) -> None:
        """A request's first byte: its headers and body must now arrive in time."""
        super().on_message_begin()
        self._arm_read_timer()

    def on_message_complete(self) -> None:
        """The whole request has arrived: stop the read timer."""
        self._disarm_read_timer()
        super().on_message_complete()

    def on_headers_complete(self) -> None:
        """Admit the request (start the app) or answer the refusal right here."""
        adm = self.admission
        idle = self.cycle is None or self.cycle.response_complete  # never reorder pipelined
        if adm is not None and idle:
            url = self.url
            q = url.find(b"?")
            path = (url if q < 0 else url[:q]).decode("latin-1")
            method = self.parser.get_method().decode("ascii")
            verdict = adm.check(method, path, self.headers, adm.admitted, self.client)
            if verdict is not None:
                self._refuse(verdict)
                return
            self.scope["extensions"] = {**(self.scope.get("extensions") or {}), ADMITTED: {}}
            adm.admitted += 1
            self._holds_slot = True
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """The response is sent: the request stops counting against the limit.

        Counting the server's tasks instead would count a request until its task has
        wound down, after the response; a keep-alive client that sends its next request
        at once would then be refused by its own previous request.
        """
        self._release_slot()
        super().on_response_complete()

    def _release_slot(self) -> None:
        if self._holds_slot and self.admission is not None:
            self.admission.admitted -= 1
        self._holds_slot = False

    def _refuse(self, verdict: Verdict) -> None:
        assert self.admission is not None
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        cycle = RequestResponseCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=False,
            default_headers=[],
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=keep_alive,
            on_response=self.on_response_complete,
        )
        cycle.response_started = cycle.response_complete = True  # the body will be skipped
        self.cycle = cycle
        self.transport.write(_raw_response(verdict, self.admission.version(), not keep_alive))
        if keep_alive:
            self.on_response_complete()
        else:
            self.transport.close()
