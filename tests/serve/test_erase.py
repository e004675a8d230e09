"""``DELETE /v1/users/{id}`` (issue 21.1, reliability check 19): the erase permission, the
event store, every per-user cache, the new model version, and a second deletion.

Each test serves its own copy of a model: a deletion rewrites the served directory.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lmrec.serve.auth import create_key


def _event(user: str, item: str, key: str) -> dict:
    return {"user": user, "item": item, "idempotency_key": key}


@pytest.fixture
def serve(models_root, tmp_path):
    """serve(model, **settings) -> (TestClient of an app on a copy of the model, its dir)."""
    from lmrec.serve.app import build_app
    from lmrec.serve.settings import ServeSettings

    clients = []

    def make(model: str = "ease", **kw):
        path = tmp_path / "served" / model
        shutil.copytree(models_root / model, path)
        kw.setdefault("auth", False)
        settings = ServeSettings(
            model_dir=path, store_url=f"sqlite:///{tmp_path / 'events.db'}", **kw
        )
        c = TestClient(build_app(settings))
        c.__enter__()
        clients.append(c)
        return c, path

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _recommend(c, user: str, k: int = 10) -> dict:
    r = c.post("/v1/recommend", json={"user": user, "k": k})
    assert r.status_code == 200, r.text
    return r.json()


def test_delete_needs_the_erase_permission(serve, tmp_path):
    keys = tmp_path / "keys.json"
    raw = {role: create_key(keys, role)[1] for role in ("read", "write", "admin")}
    raw["erase"] = create_key(keys, "write", erase=True)[1]
    raw["erase-u1"] = create_key(keys, "admin", users=["u1"], erase=True)[1]
    c, _ = serve(auth=True, keys_file=keys)
    assert c.delete("/v1/users/u0").status_code == 401
    for role in ("read", "write", "admin"):
        r = c.delete("/v1/users/u0", headers={"X-API-Key": raw[role]})
        assert r.status_code == 403 and "'erase' permission" in r.json()["detail"], role
    r = c.delete("/v1/users/u0", headers={"X-API-Key": raw["erase-u1"]})
    assert r.status_code == 403 and "may not act for user 'u0'" in r.json()["detail"]
    assert c.delete("/v1/users/u1", headers={"X-API-Key": raw["erase-u1"]}).json()["found"]
    r = c.delete("/v1/users/u0", headers={"X-API-Key": raw["erase"]})
    assert r.status_code == 200 and r.json()["found"] is True


def test_erase_keys_need_a_write_role(tmp_path):
    from lmrec.errors import ConfigError
    from lmrec.serve.auth import KeyRing

    with pytest.raises(ConfigError, match="role 'write' or 'admin'"):
        create_key(tmp_path / "k.json", "read", erase=True)
    path = tmp_path / "k2.json"
    _, key = create_key(path, "write", erase=True)
    assert KeyRing.load(path).verify(key).erase
    entries = json.loads(path.read_text())
    entries["keys"][0]["erase"] = "yes"
    path.write_text(json.dumps(entries))
    with pytest.raises(ConfigError, match="'erase' = 'yes'"):
        KeyRing.load(path)


def test_cli_creates_an_erase_key(tmp_path, capsys):
    import argparse

    from lmrec.cli import serve_cmds
    from lmrec.serve.auth import KeyRing

    p = argparse.ArgumentParser(prog="lmrec")
    serve_cmds.register(p.add_subparsers(dest="command", required=True))
    keys = tmp_path / "k.json"
    args = p.parse_args(["serve", "--create-key", "write", "--keys", str(keys), "--key-erase"])
    assert args.func(args) == 0
    assert KeyRing.load(keys).verify(capsys.readouterr().out.strip()).erase


def test_deletion_reaches_the_store_the_caches_and_the_model(serve, tmp_path):
    c, path = serve("ease")
    events = [_event("u0", "i1", "a"), _event("u0", "i3", "b"), _event("u1", "i2", "c")]
    assert c.post("/v1/feedback", json={"events": events}).status_code == 200
    before = _recommend(c, "u0", k=5)  # fold-in, cached
    assert before["strategy"] == "fold-in" and not before["fallback"]
    old_version = before["model_version"]
    top = before["items"][0]
    assert c.post("/v1/explain", json={"user": "u0", "item": top}).json()["contributions"]

    r = c.delete("/v1/users/u0")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == "u0" and body["found"] is True
    assert body["events_deleted"] == 2 and body["feedback_cleared"] == 2
    assert body["cached_lists_cleared"] >= 1 and body["precomputed_cleared"] is True
    model = body["model"]
    assert model["status"] == "forgotten" and model["method"] == "exact"
    assert model["version"] != old_version and model["n_interactions"] > 0
    # nothing of the user but the id they sent
    assert "u0" not in json.dumps({k: v for k, v in body.items() if k != "user"})

    # the event store: the user's events are gone, the others' kept, the audit has no id
    store = c.app.state.event_store
    assert store.events_of("u0") == [] and len(store.events_of("u1")) == 1
    with sqlite3.connect(tmp_path / "events.db") as db:
        audit = db.execute("SELECT * FROM deletions").fetchall()
    assert len(audit) == 1 and audit[0][1] == body["request_id"] and audit[0][3:] == (1, 2)
    assert "u0" not in repr(audit)

    # served as an unknown user at once: recommendations, explanations, the page's users
    after, unknown = _recommend(c, "u0", k=5), _recommend(c, "never-seen", k=5)
    assert after["fallback"] and after["strategy"] == "popularity"
    assert (after["items"], after["scores"]) == (unknown["items"], unknown["scores"])
    assert after["model_version"] == model["version"]
    expl = c.post("/v1/explain", json={"user": "u0", "item": top}).json()
    assert expl["contributions"] == [] and expl["score"] == 0.0
    assert "u0" not in c.get("/v1/ui/users", params={"limit": 200}).json()["users"]
    # other users keep their recommendations and their feedback
    assert _recommend(c, "u1")["strategy"] == "fold-in"

    # the new version on disk (the served directory, replaced) holds no trace of the user
    ids = set(pd.read_parquet(path / "user_ids.parquet")["user"].astype(str))
    assert "u0" not in ids and len(ids) == 39
    for name in ("config.json", "manifest.json"):
        assert "u0" not in (path / name).read_text()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no aside copy
    # no rollback to the version that holds the user
    assert [m["version"] for m in c.get("/v1/models").json()["models"]] == [model["version"]]
    assert c.post("/v1/models/rollback").status_code == 409


def test_new_version_equals_a_fit_without_the_user(serve):
    from lmrec.models import create_model, load_model
    from lmrec.privacy.forget import without_users
    from lmrec.testing import checkerboard

    c, path = serve("knn")
    assert c.delete("/v1/users/u3").json()["model"]["status"] == "forgotten"
    served = load_model(path)
    scratch = create_model("itemknn", {"k_neighbors": 10}).fit(
        without_users(checkerboard(), ["u3"])
    )
    assert list(served.user_ids_.ids) == list(scratch.user_ids_.ids)
    users = list(scratch.user_ids_.ids)
    assert np.abs(served.score(users) - scratch.score(users)).max() < 1e-6
    # what the service answers for another user is the from-scratch model's list
    got = _recommend(c, "u4", k=5)
    want = scratch.recommend(["u4"], k=5)
    assert got["items"] == [str(i) for i in want["item"]]


def test_a_second_deletion_and_an_unknown_user_answer_200_with_nothing_found(serve):
    c, _ = serve("ease")
    c.post("/v1/feedback", json={"events": [_event("u2", "i1", "x")]})
    assert c.delete("/v1/users/u2").json()["found"] is True
    version = c.get("/v1/models").json()["models"][0]["version"]
    for user in ("u2", "nobody", "a/b c"):
        r = c.delete(f"/v1/users/{user}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"] == user and body["found"] is False
        assert body["events_deleted"] == body["feedback_cleared"] == 0
        assert body["model"]["status"] == "unchanged" and body["model"]["version"] == version
    assert c.delete("/v1/users/" + "x" * 300).status_code == 422


def test_ids_with_a_slash_can_be_deleted(serve):
    c, _ = serve("ease")
    c.post("/v1/feedback", json={"events": [_event("org/7", "i1", "s")]})
    r = c.delete("/v1/users/org%2F7")
    assert r.status_code == 200 and r.json()["user"] == "org/7"
    assert r.json()["events_deleted"] == 1


def test_ids_with_a_line_break_can_be_deleted(serve):
    # feedback accepts any string id; starlette's path convertor stops at a line break
    c, _ = serve("ease")
    c.post("/v1/feedback", json={"events": [_event("a\nb", "i1", "s")]})
    r = c.delete("/v1/users/a%0Ab")
    assert r.status_code == 200 and r.json()["user"] == "a\nb"
    assert r.json()["events_deleted"] == 1


def test_a_model_that_cannot_forget_exactly_is_pending_and_hides_the_user(serve):
    c, path = serve("nofold")
    served_before = c.get("/v1/models").json()["models"][0]["n_users"]
    seen_before = _recommend(c, "u0")
    unknown = _recommend(c, "never-seen")
    assert seen_before["items"] != unknown["items"]  # u0's seen items are excluded
    body = c.delete("/v1/users/u0").json()
    model = body["model"]
    assert body["found"] is True and model["status"] == "pending" and model["method"] is None
    assert "cannot forget exactly" in model["detail"] and "lmrec forget" in model["detail"]
    assert "--data" in model["detail"]
    after = _recommend(c, "u0")
    assert (after["items"], after["strategy"]) == (unknown["items"], unknown["strategy"])
    assert "u0" not in c.get("/v1/ui/users", params={"limit": 200}).json()["users"]
    assert c.get("/v1/models").json()["models"][0]["n_users"] == served_before - 1
    # a reload of the same files keeps the user hidden; a second DELETE is still pending
    assert c.post("/v1/models/reload", json={}).status_code == 200
    assert _recommend(c, "u0")["items"] == unknown["items"]
    again = c.delete("/v1/users/u0").json()
    assert again["found"] is True and again["model"]["status"] == "pending"
    assert "u0" in set(pd.read_parquet(path / "user_ids.parquet")["user"].astype(str))


def test_other_workers_rebuild_their_overlay_after_a_deletion(tmp_path):
    from lmrec.serve.events import Event, EventStore
    from lmrec.serve.online import OnlineOverlay

    store = EventStore(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        here, there = OnlineOverlay(), OnlineOverlay()
        for ov in (here, there):
            assert ov.refresh_after_deletions(store) is False  # notes the mark
        store.write([Event(f"k{i}", u, f"i{i}", "click", 1.0, 0.0) for i, u in enumerate("aab")])
        here.sync(store), there.sync(store)
        assert there.get("a").items and there.get("b").items
        generation = there.get("a").generation
        assert store.delete_users(["a"], request_id="r1") == 2
        assert here.reset_user("a", store) == 2 and not here.get("a").items
        assert there.refresh_after_deletions(store) is True
        assert not there.get("a").items and there.get("b").items == {"i2": 1.0}
        assert there.refresh_after_deletions(store) is False
        # a user seen again after a deletion never gets a generation used before it
        store.write([Event("k9", "a", "i9", "click", 1.0, 0.0)])
        there.sync(store)
        assert there.get("a").generation > generation
    finally:
        store.close()


def test_every_worker_stops_using_the_user_before_the_answer(models_root, tmp_path):
    import time

    from tests.serve.server import Server
    from tests.serve.test_workers import _wait_for_workers

    served = tmp_path / "models" / "ease"
    shutil.copytree(models_root / "ease", served)
    with Server(served, tmp_path, "--workers", "2") as srv:
        _wait_for_workers(srv, 2)
        status, _, _ = srv.post("/v1/feedback", {"events": [_event("u0", "i1", "w1")]})
        assert status == 200
        deadline = time.monotonic() + 30  # both workers fold the feedback in (sync loop)
        while True:
            strategies = {srv.post("/v1/recommend", {"user": "u0"})[2]["strategy"] for _ in "x" * 8}
            if strategies == {"fold-in"}:
                break
            assert time.monotonic() < deadline, strategies
            time.sleep(0.2)
        status, _, body = srv.request("DELETE", "/v1/users/u0")
        assert status == 200 and body["model"]["status"] == "forgotten" and body["workers"] == 2
        _, _, unknown = srv.post("/v1/recommend", {"user": "never-seen"})
        for _ in range(20):  # fresh connections: either worker
            _, _, got = srv.post("/v1/recommend", {"user": "u0"})
            assert (got["items"], got["strategy"]) == (unknown["items"], "popularity")
            assert got["model_version"] == body["model"]["version"]


def test_a_previous_version_holding_the_user_is_no_longer_kept(serve):
    from lmrec.models import load_model
    from lmrec.privacy.forget import forget_users

    c, path = serve("ease")
    without_u5, _ = forget_users(load_model(path), ["u5"])
    without_u5.save(path.parent / "ease-without-u5")
    r = c.post("/v1/models/reload", json={"path": str(path.parent / "ease-without-u5")})
    assert r.status_code == 200
    body = c.delete("/v1/users/u5").json()
    assert body["found"] is True and body["model"]["status"] == "forgotten"
    assert body["model"]["method"] is None and body["model"]["version"] == r.json()["version"]
    assert c.post("/v1/models/rollback").status_code == 409


def test_deletion_on_sqlite_and_postgresql(models_root, tmp_path, store_url):
    from lmrec.serve.app import build_app
    from lmrec.serve.settings import ServeSettings

    path = tmp_path / "served" / "ease"
    shutil.copytree(models_root / "ease", path)
    app = build_app(ServeSettings(model_dir=path, auth=False, store_url=store_url))
    with TestClient(app) as c:
        events = [_event("u7", "i1", "p1"), _event("u7", "i2", "p2"), _event("u8", "i1", "p3")]
        assert c.post("/v1/feedback", json={"events": events}).json()["accepted"] == 3
        store = c.app.state.event_store
        assert store.last_deletion() == 0 and len(store.events_of("u7")) == 2
        body = c.delete("/v1/users/u7").json()
        assert body["events_deleted"] == 2 and body["model"]["status"] == "forgotten"
        assert store.events_of("u7") == [] and [e.user for e in store.events_of("u8")] == ["u8"]
        assert store.last_deletion() > 0 and store.count() == 1
        with store.engine.connect() as conn:
            rows = conn.execute(store.deletions.select()).mappings().all()
        assert [(r["request_id"], r["n_users"], r["n_events"]) for r in rows] == [
            (body["request_id"], 1, 2)
        ]
        assert c.delete("/v1/users/u7").json()["found"] is False


def test_an_unavailable_store_is_503_and_a_retry_finishes(serve, monkeypatch):
    from sqlalchemy.exc import OperationalError

    c, _ = serve("ease")
    c.post("/v1/feedback", json={"events": [_event("u6", "i1", "f1")]})
    store = c.app.state.event_store
    real = store.delete_users

    def failing(users, *, request_id=""):
        raise OperationalError("DELETE", {}, Exception("disk I/O error"))

    monkeypatch.setattr(store, "delete_users", failing)
    r = c.delete("/v1/users/u6")
    assert r.status_code == 503 and "Retry the DELETE" in r.json()["detail"]
    assert "disk I/O" not in r.text
    # the model row is not used any more; the stored feedback is, until the retry
    assert _recommend(c, "u6")["strategy"] == "fold-in"
    monkeypatch.setattr(store, "delete_users", real)
    body = c.delete("/v1/users/u6").json()
    assert body["events_deleted"] == 1 and body["model"]["status"] == "forgotten"
    assert _recommend(c, "u6")["strategy"] == "popularity"
