"""Limits of a real ``lmrec serve`` process: slow clients, connections, concurrency,
rate limits, and graceful shutdown (reliability checks 12, 13 and 16).

Each test starts the server in a subprocess and speaks raw HTTP/1.1 to it, because
these limits live in the HTTP protocol, below the application.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import threading
import time

import pytest

from tests.serve.server import HOST, Server, partial_post, read_response

RECOMMEND = json.dumps({"user": "u0", "k": 5}).encode()


def _closed_by_server(s: socket.socket) -> bool:
    """True once the server has closed ``s`` (after any final response it sent)."""
    try:
        while True:
            if not s.recv(65536):
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_slowloris_and_silent_connections_are_dropped_within_the_timeout(models_root, tmp_path):
    with Server(models_root / "ease", tmp_path, "--request-timeout", "1") as srv:
        silent = [socket.create_connection((HOST, srv.port)) for _ in range(20)]
        slow = [socket.create_connection((HOST, srv.port)) for _ in range(20)]
        header = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
        start = time.monotonic()
        for i in range(6):  # one byte per connection every 0.25 s: never a full request
            for s in slow:
                try:
                    s.send(header[i : i + 1])
                except OSError:
                    pass
            time.sleep(0.25)
        # a well-behaved client is served meanwhile
        assert srv.post("/v1/recommend", {"user": "u0"})[0] == 200
        for s in silent + slow:
            s.settimeout(max(0.1, start + 4 - time.monotonic()))
            assert _closed_by_server(s), "a slow or silent connection was kept past the timeout"
        s = partial_post(srv.port, "/v1/recommend", RECOMMEND, 5)
        s.settimeout(5)
        status, headers, _ = read_response(s)
        assert status == 408 and headers["connection"] == "close"


def test_connections_past_the_limit_get_503_and_are_closed(models_root, tmp_path):
    with Server(models_root / "ease", tmp_path, "--max-connections", "4") as srv:
        held = [socket.create_connection((HOST, srv.port)) for _ in range(4)]
        time.sleep(0.3)
        extra = socket.create_connection((HOST, srv.port))
        extra.settimeout(5)
        status, headers, body = read_response(extra)
        assert status == 503 and headers["retry-after"] == "1"
        assert "too many open connections" in json.loads(body)["detail"]
        for s in held:
            s.close()
        time.sleep(0.3)
        assert srv.post("/v1/recommend", {"user": "u0"})[0] == 200


def test_requests_past_the_concurrency_limit_get_503_at_once(models_root, tmp_path):
    with Server(models_root / "ease", tmp_path, "--max-concurrency", "1") as srv:
        # an admitted request whose body is still arriving holds the only slot
        held = partial_post(srv.port, "/v1/recommend", RECOMMEND, 3)
        time.sleep(0.3)
        status, headers, body = srv.post("/v1/recommend", {"user": "u1"})
        assert status == 503 and headers["retry-after"] == "1"
        assert "concurrency limit" in body["detail"] and headers["x-model-version"]
        assert srv.get("/readyz")[0] == 200 and srv.get("/healthz")[0] == 200  # never refused
        held.sendall(RECOMMEND[3:])
        held.settimeout(10)
        assert read_response(held)[0] == 200
        assert srv.post("/v1/recommend", {"user": "u1"})[0] == 200


def test_clients_within_the_concurrency_limit_are_never_refused(models_root, tmp_path):
    """A request counts against the limit until its response is sent, not until the
    server's task for it has wound down: a keep-alive client that sends its next request
    as soon as it has the answer is within a limit of 1 and must always be admitted."""
    with Server(models_root / "ease", tmp_path, "--max-concurrency", "1") as srv:
        s = socket.create_connection((HOST, srv.port), timeout=10)
        request = (
            b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(RECOMMEND)}\r\n\r\n".encode()
            + RECOMMEND
        )
        statuses = []
        for _ in range(300):
            s.sendall(request)
            statuses.append(read_response(s)[0])
        s.close()
    assert statuses.count(200) == len(statuses), {c: statuses.count(c) for c in set(statuses)}


def test_refused_requests_are_counted_in_the_metrics(models_root, tmp_path):
    import urllib.request

    with Server(models_root / "ease", tmp_path, "--max-concurrency", "1") as srv:
        held = partial_post(srv.port, "/v1/recommend", RECOMMEND, 3)
        time.sleep(0.3)
        for _ in range(3):
            assert srv.post("/v1/recommend", {"user": "u1"})[0] == 503
        held.sendall(RECOMMEND[3:])
        held.settimeout(10)
        read_response(held)
        text = urllib.request.urlopen(srv.url + "/metrics").read().decode()
    assert 'lmrec_requests_total{endpoint="/v1/recommend",method="POST",status="503"} 3.0' in text
    assert 'lmrec_requests_total{endpoint="/v1/recommend",method="POST",status="200"} 1.0' in text
    assert 'lmrec_refused_requests_total{reason="concurrency"} 3.0' in text


def test_rate_limit_per_key_answers_429_with_retry_after(models_root, keys, tmp_path):
    from lmrec.serve.auth import create_key

    keys_file = tmp_path / "keys.json"
    a, b = create_key(keys_file, "read")[1], create_key(keys_file, "read")[1]
    srv = Server(models_root / "ease", tmp_path, "--rate-limit", "0.2", "--rate-burst", "2")
    srv.cmd = [c for c in srv.cmd if c != "--no-auth"] + ["--keys", str(keys_file)]
    with srv:

        def call(key: str) -> socket.socket:
            s = socket.create_connection((HOST, srv.port), timeout=10)
            s.sendall(
                b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"X-API-Key: {key}\r\nContent-Length: {len(RECOMMEND)}\r\n\r\n".encode()
                + RECOMMEND
            )
            return s

        conn = call(a)
        assert read_response(conn)[0] == 200
        assert read_response(call(a))[0] == 200
        status, headers, body = read_response(call(a))
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert "Rate limit" in json.loads(body)["detail"]
        assert read_response(call(b))[0] == 200  # another key has its own budget
        # the refused request kept its connection usable (keep-alive, body skipped)
        conn.sendall(
            b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-API-Key: {a}\r\nContent-Length: {len(RECOMMEND)}\r\n\r\n".encode()
            + RECOMMEND
        )
        assert read_response(conn)[0] == 429
        assert srv.get("/healthz")[0] == 200


def test_sigterm_turns_readiness_503_at_once_and_drops_no_request_in_flight(models_root, tmp_path):
    db = tmp_path / "events.db"
    srv = Server(models_root / "ease", tmp_path, "--drain", "1.5", store=f"sqlite:///{db}")
    with srv:
        acked: list[str] = []
        failed: list[str] = []
        stop = threading.Event()

        def feedback_load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                key = f"w{worker}-{n}"
                n += 1
                event = {"user": f"u{n % 50}", "item": "i1", "idempotency_key": key}
                try:
                    status = srv.post("/v1/feedback", {"events": [event]})[0]
                except OSError as e:
                    failed.append(f"{key}: {e}")
                    continue
                (acked if status == 200 else failed).append(key)

        threads = [threading.Thread(target=feedback_load, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        in_flight = partial_post(srv.port, "/v1/recommend", RECOMMEND, 4)
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        status, _, body = srv.get("/readyz")
        assert status == 503 and "shutting down" in body["detail"]
        status, headers, _ = srv.post("/v1/recommend", {"user": "u2"})  # still serving
        assert status == 200 and headers["connection"] == "close"
        stop.set()  # like a load balancer that saw readiness fail
        for t in threads:
            t.join()
        late = partial_post(srv.port, "/v1/recommend", RECOMMEND, 4)
        time.sleep(1.6)  # the drain is over: the listener is closed, shutdown under way
        with pytest.raises(OSError):
            socket.create_connection((HOST, srv.port), timeout=2)
        for s in (in_flight, late):
            s.sendall(RECOMMEND[4:])
            s.settimeout(10)
            assert read_response(s)[0] == 200
        assert srv.proc.wait(30) is not None
    assert not failed, failed[:5]
    assert len(acked) > 10
    with sqlite3.connect(db) as conn:
        stored = {r[0] for r in conn.execute("SELECT idempotency_key FROM events")}
    assert set(acked) <= stored
