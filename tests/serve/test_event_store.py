"""The feedback event store on SQLite and on a live PostgreSQL server.

Every test runs on both backends (``store_url`` fixture). PostgreSQL is started from
its Debian programs in a temp dir; locally the PostgreSQL half skips without them, in
CI it fails (``make test`` installs them).
"""

from __future__ import annotations

import os
import signal
import threading
import time

from fastapi.testclient import TestClient

from lmrec.serve.events import Event, EventStore
from tests.serve.server import Server


def _ev(key: str, user: str = "u0", item: str = "i1", weight: float = 1.0) -> Event:
    return Event(key, user, item, "click", weight, 1.7e9)


def test_writes_are_idempotent_and_read_back_in_order(store_url):
    store = EventStore(store_url)
    assert store.ping()
    res = store.write([_ev("a"), _ev("b", item="i2"), _ev("a")])
    assert [e.idempotency_key for e in res.inserted] == ["a", "b"] and res.duplicates == 1
    assert store.write([_ev("b"), _ev("c", weight=-1.0)]).duplicates == 1
    events = list(store.iter_events(batch=2))
    assert [e.idempotency_key for e in events] == ["a", "b", "c"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[2].weight == -1.0 and events[0].ts == 1.7e9
    assert [e.idempotency_key for e in store.events_after(events[0].id)] == ["b", "c"]
    store.close()
    reopened = EventStore(store_url)
    assert reopened.count() == 3
    reopened.close()


def test_ids_are_bound_parameters_never_sql(store_url):
    store = EventStore(store_url)
    nasty = ["x'); DROP TABLE events; --", 'a"b', "ünïcødé ✓", "x" * 4096, "%s %(x)s ?"]
    for i, text in enumerate(nasty):
        store.write([Event(f"k{i}", text, text, "click", 1.0, 0.0)])
    got = {e.user for e in store.iter_events()}
    assert got == set(nasty) and store.count() == len(nasty)
    store.close()


def test_two_processes_writing_the_same_keys_store_each_once(store_url):
    stores = [EventStore(store_url), EventStore(store_url)]  # two engines, as two workers
    keys = [f"k{i}" for i in range(300)]
    results = []

    def write(store: EventStore) -> None:
        for start in range(0, len(keys), 30):
            results.append(store.submit([_ev(k) for k in keys[start : start + 30]]).result(30))

    threads = [threading.Thread(target=write, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].count() == 300
    assert sum(len(r.inserted) for r in results) == 300
    assert sum(r.duplicates for r in results) == 300
    for s in stores:
        s.close()


def test_the_service_replays_the_store_at_startup(models_root, tmp_path, store_url):
    from lmrec.serve.app import build_app
    from lmrec.serve.settings import ServeSettings

    settings = ServeSettings(model_dir=models_root / "ease", auth=False, store_url=store_url)
    event = {"user": "newcomer", "item": "i3", "idempotency_key": "replay-1"}
    with TestClient(build_app(settings)) as c:
        assert c.post("/v1/feedback", json={"events": [event]}).json()["accepted"] == 1
        before = c.post("/v1/recommend", json={"user": "newcomer"}).json()
    with TestClient(build_app(settings)) as c:  # a restart: the overlay comes from the store
        after = c.post("/v1/recommend", json={"user": "newcomer"}).json()
        assert after["items"] == before["items"] and after["strategy"] == "fold-in"
        assert c.get("/readyz").status_code == 200


def test_cluster_tables_publish_and_follow(models_root, store_url):
    from lmrec.serve.cluster import Cluster
    from lmrec.serve.model_store import ModelStore

    store = EventStore(store_url)
    a, b = (ModelStore.open(models_root / "ease", allowed_root=models_root) for _ in range(2))
    swaps = []
    ca = Cluster("c1", store, a, swaps.append)
    cb = Cluster("c1", store, b, swaps.append)
    cb.follow()
    new = a.reload(models_root / "ease_v2")
    threading.Timer(0.3, cb.follow).start()
    done = ca.publish(new, timeout=20)
    assert (done.workers, done.in_sync) == (2, 2)
    assert b.current.version == new.version and swaps == [b.current]
    ca.leave()
    cb.leave()
    store.close()


def test_no_acknowledged_event_is_lost_to_kill_9(models_root, tmp_path, store_url):
    """Feedback load from 3 clients, then SIGKILL of the server: every 200 is stored."""
    acked: list[str] = []
    with Server(models_root / "ease", tmp_path, store=store_url) as srv:
        stop = threading.Event()

        def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                key = f"w{worker}-{n}"
                n += 1
                event = {"user": f"u{n % 40}", "item": f"i{n % 7}", "idempotency_key": key}
                try:
                    if srv.post("/v1/feedback", {"events": [event]})[0] == 200:
                        acked.append(key)
                except OSError:
                    pass  # in flight at the kill: not acknowledged

        threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(10)
        stop.set()
        for t in threads:
            t.join()
    store = EventStore(store_url)
    stored = {e.idempotency_key for e in store.iter_events()}
    store.close()
    assert len(acked) > 20
    assert not set(acked) - stored
