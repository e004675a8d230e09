"""Two workers serve one version: reload and rollback reach both before they return."""

from __future__ import annotations

import time

from tests.serve.server import Server


def _wait_for_workers(srv: Server, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while srv.log.read_text().count("Application startup complete") < n:
        assert time.monotonic() < deadline, srv.log.read_text()[-2000:]
        time.sleep(0.1)


def _versions(srv: Server, n: int) -> set[str]:
    """Versions named by ``n`` recommendations over fresh connections (either worker)."""
    seen = set()
    for i in range(n):
        status, headers, body = srv.post("/v1/recommend", {"user": f"u{i % 20}", "k": 3})
        assert status == 200
        assert body["model_version"] == headers["x-model-version"]
        seen.add(body["model_version"])
    return seen


def test_reload_and_rollback_reach_every_worker_before_they_return(models_root, tmp_path):
    with Server(models_root / "ease", tmp_path, "--workers", "2") as srv:
        _wait_for_workers(srv, 2)
        (v1,) = _versions(srv, 20)
        status, _, body = srv.post("/v1/models/reload", {"path": str(models_root / "ease_v2")})
        assert status == 200 and body["workers"] == 2
        v2 = body["version"]
        assert v2 != v1
        assert _versions(srv, 40) == {v2}
        status, _, body = srv.post("/v1/models/rollback", {})
        assert status == 200 and body["workers"] == 2 and body["version"] == v1
        assert _versions(srv, 40) == {v1}
        # a broken reload changes nothing anywhere
        status, _, _ = srv.post("/v1/models/reload", {"path": str(models_root / "missing")})
        assert status == 422
        assert _versions(srv, 20) == {v1}
