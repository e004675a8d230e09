"""Health and metrics tell the truth (reliability check 18), on a real server under load."""

from __future__ import annotations

import collections
import re
import threading
import urllib.request

from tests.serve.server import Server

_SAMPLE = re.compile(
    r'^lmrec_requests_total\{endpoint="([^"]+)",method="(\w+)",status="(\d+)"\} (\S+)$'
)


def _scrape(srv: Server) -> str:
    return urllib.request.urlopen(srv.url + "/metrics", timeout=10).read().decode()


def _requests_total(text: str) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[(m[1], m[2], int(m[3]))] = int(float(m[4]))
    return out


def test_request_counters_match_what_clients_saw(models_root, tmp_path):
    calls = [
        ("POST", "/v1/recommend", "/v1/recommend", {"user": "u1", "k": 5}),
        ("POST", "/v1/recommend", "/v1/recommend", {"user": "u1", "k": 0}),  # 422
        ("GET", "/v1/items/i1/similar", "/v1/items/{item_id}/similar", None),
        ("GET", "/v1/items/nope/similar", "/v1/items/{item_id}/similar", None),  # 404
        ("POST", "/v1/explain", "/v1/explain", {"user": "u2", "item": "i3"}),
    ]
    seen: collections.Counter = collections.Counter()
    lock = threading.Lock()
    with Server(models_root / "ease", tmp_path, "--max-concurrency", "2") as srv:
        before = _requests_total(_scrape(srv))

        def client(worker: int) -> None:
            for n in range(60):
                method, path, label, body = calls[(worker + n) % len(calls)]
                status = srv.request(method, path, body)[0]
                with lock:
                    seen[(label, method, status)] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        text = _scrape(srv)
    counted = _requests_total(text) - before
    counted = collections.Counter({k: v for k, v in counted.items() if k[0] != "/metrics"})
    total = sum(seen.values())
    assert total == 360 and {s for _, _, s in seen} >= {200, 404, 422}
    for key in seen.keys() | counted.keys():
        assert abs(seen[key] - counted[key]) <= 0.01 * total, (key, seen[key], counted[key])
    assert "lmrec_request_latency_seconds_bucket{" in text  # a histogram, in seconds
    assert re.search(r'lmrec_model_info\{name="ease",version="ease-[0-9a-f]{12}"\} 1\.0', text)


def test_model_version_metric_follows_reloads_and_liveness_ignores_the_store(
    make_app, models_root, monkeypatch
):
    from fastapi.testclient import TestClient

    with TestClient(make_app(auth=False)) as c:
        v2 = c.post("/v1/models/reload", json={"path": str(models_root / "ease_v2")}).json()
        text = c.get("/metrics").text
        assert f'version="{v2["version"]}"}} 1.0' in text
        assert text.count("lmrec_model_info{") == 1  # only the served version is exported
        monkeypatch.setattr(c.app.state.event_store, "ping", lambda: False)
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200


def test_refusals_and_answers_share_the_route_label(make_app):
    """The protocol labels a refused request from its path (``endpoint_of``), the app an
    admitted one from its matched route: both must name the same template, never the id
    in the path."""
    import re

    from fastapi.testclient import TestClient

    from lmrec.serve.admission import endpoint_of

    requests = [
        ("delete", "/v1/users/u1", "/v1/users/{user_id:anyid}"),
        ("get", "/v1/items/i1/similar", "/v1/items/{item_id}/similar"),
        ("get", "/v1/models/no-such-model", "/v1/models/{model_id}"),
        ("post", "/v1/recommend", "/v1/recommend"),
    ]
    with TestClient(make_app(auth=False)) as c:
        for method, path, _ in requests:
            c.request(method.upper(), path, json={"user": "u0"})
        text = c.get("/metrics").text
    labels = set(re.findall(r'lmrec_requests_total\{endpoint="([^"]+)"', text))
    for _, path, template in requests:
        assert template in labels and endpoint_of(path) == template
    assert endpoint_of("/v1/users/a/b\nc") == "/v1/users/{user_id:anyid}"
    assert endpoint_of("/no/such/route") == "unmatched"
