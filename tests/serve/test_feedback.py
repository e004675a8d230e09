"""Feedback: durable and idempotent writes, online updates, replay at startup, retrain."""

from __future__ import annotations

import sqlite3

from fastapi.testclient import TestClient

from lmrec.serve.events import Event, EventStore


def _event(user: str, item: str, key: str, weight: float = 1.0) -> dict:
    return {"user": user, "item": item, "idempotency_key": key, "weight": weight, "type": "click"}


def test_feedback_is_stored_and_duplicate_keys_are_noops(client, tmp_path):
    batch = {"events": [_event("u0", "i1", "a"), _event("u0", "i3", "b"), _event("u0", "i3", "b")]}
    r = client.post("/v1/feedback", json=batch)
    assert r.status_code == 200 and r.json() == {"accepted": 2, "duplicates": 1}
    r = client.post("/v1/feedback", json={"events": [_event("u0", "i1", "a")]})
    assert r.json() == {"accepted": 0, "duplicates": 1}
    with sqlite3.connect(tmp_path / "events.db") as db:
        rows = db.execute('SELECT idempotency_key, "user", item, type FROM events').fetchall()
    assert sorted(rows) == [("a", "u0", "i1", "click"), ("b", "u0", "i3", "click")]


def test_feedback_validation(client):
    bad = [
        {"events": []},
        {"events": [{"user": "u0", "item": "i1"}]},
        {"events": [_event("u0", "i1", "k") | {"type": "Bad Type!"}]},
        {"events": [_event("u0", "i1", "k") | {"weight": 1e9}]},
        {"events": [_event("u0", "i1", "k") | {"timestamp": -5}]},
        {"events": [_event("u0", "i1", "x" * 200)]},
    ]
    for payload in bad:
        assert client.post("/v1/feedback", json=payload).status_code == 422, payload


def test_feedback_changes_the_next_recommendations_at_once(client):
    before = client.post("/v1/recommend", json={"user": "u0", "k": 5}).json()
    top = before["items"][0]
    r = client.post("/v1/feedback", json={"events": [_event("u0", top, "e1")]})
    assert r.status_code == 200
    after = client.post("/v1/recommend", json={"user": "u0", "k": 5}).json()
    assert top not in after["items"]
    assert after["strategy"] == "fold-in" and after["scores"] != before["scores"][1:]
    # a negative event only excludes the item
    second = after["items"][0]
    client.post("/v1/feedback", json={"events": [_event("u0", second, "e2", weight=-1)]})
    assert second not in client.post("/v1/recommend", json={"user": "u0", "k": 5}).json()["items"]


def test_new_user_with_feedback_is_folded_in(client):
    r = client.post("/v1/recommend", json={"user": "newcomer", "k": 5}).json()
    assert r["fallback"] is True
    events = [_event("newcomer", f"i{i}", f"n{i}") for i in (1, 3, 5)]
    client.post("/v1/feedback", json={"events": events})
    r = client.post("/v1/recommend", json={"user": "newcomer", "k": 5}).json()
    assert r["fallback"] is False and r["strategy"] == "fold-in"
    assert all(int(i[1:]) % 2 == 1 for i in r["items"])
    assert not {"i1", "i3", "i5"} & set(r["items"])
    expl = client.post("/v1/explain", json={"user": "newcomer", "item": r["items"][0]}).json()
    assert {c["item"] for c in expl["contributions"]} <= {"i1", "i3", "i5"}


def test_overlay_is_rebuilt_from_the_store_at_startup(make_app, tmp_path):
    db = tmp_path / "shared.db"
    with TestClient(make_app(auth=False, db=db)) as c:
        top = c.post("/v1/recommend", json={"user": "u2", "k": 3}).json()["items"][0]
        c.post("/v1/feedback", json={"events": [_event("u2", top, "restart-1")]})
    with TestClient(make_app(auth=False, db=db)) as c:
        r = c.post("/v1/recommend", json={"user": "u2", "k": 3}).json()
        assert top not in r["items"] and r["strategy"] == "fold-in"
        # idempotency survives the restart too
        r = c.post("/v1/feedback", json={"events": [_event("u2", top, "restart-1")]})
        assert r.json()["duplicates"] == 1


def test_ids_are_never_sql(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'ev.db'}")
    nasty = "x'); DROP TABLE events; --"
    res = store.write([Event(nasty, nasty, nasty, "click", 1.0, 0.0)])
    assert len(res.inserted) == 1
    assert store.write([Event(nasty, "u", "i", "click", 1.0, 0.0)]).duplicates == 1
    assert store.count() == 1 and next(store.iter_events()).user == nasty
    store.close()


def test_sqlite_store_is_wal_with_full_sync(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'ev.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    fut = store.submit([Event(f"k{i}", "u", f"i{i}", "view", 1.0, 0.0) for i in range(5)])
    assert len(fut.result(timeout=10).inserted) == 5
    store.close()
    assert EventStore(f"sqlite:///{tmp_path / 'ev.db'}").count() == 5


def test_store_failure_is_503_not_500(client, monkeypatch):
    from concurrent.futures import Future

    from sqlalchemy.exc import OperationalError

    def failing(events):
        fut = Future()
        fut.set_exception(OperationalError("INSERT", {}, Exception("disk full")))
        return fut

    monkeypatch.setattr(client.app.state.event_store, "submit", failing)
    r = client.post("/v1/feedback", json={"events": [_event("u0", "i1", "z")]})
    assert r.status_code == 503 and "disk full" not in r.text


def test_retrain_from_store_adds_new_users_and_items(models_root, tmp_path):
    from lmrec.models import load_model
    from lmrec.serve.retrain import retrain

    url = f"sqlite:///{tmp_path / 'ev.db'}"
    store = EventStore(url)
    store.write(
        [
            Event("r1", "brand-new", "i0", "click", 1.0, 0.0),
            Event("r2", "brand-new", "new-item", "click", 1.0, 0.0),
            Event("r3", "u0", "i1", "click", 1.0, 0.0),
        ]
    )
    store.close()
    model = retrain(url, models_root / "ease", tmp_path / "v2")
    base = load_model(models_root / "ease")
    assert load_model(tmp_path / "v2").config == base.config
    assert "brand-new" in model.user_ids_ and "new-item" in model.item_ids_
    assert model.seen_.nnz == base.seen_.nnz + 3
