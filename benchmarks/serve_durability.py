"""Acknowledged feedback survives ``kill -9`` of the server (reliability check 17).

Protocol. EASE on MovieLens-100K served by ``lmrec serve`` (one worker, no keys) with
the event store on SQLite (WAL, synchronous=FULL) and on a throwaway PostgreSQL server
(initdb + pg_ctl from Debian's ``postgresql`` package, fsync on). Per trial: 4 client
threads send single-event ``POST /v1/feedback`` requests as fast as they are answered;
after a random delay (seeded, 0.5-2.5 s) the server's process group gets SIGKILL with
requests in flight; the store is then read back and every idempotency key that got a
200 is looked up. For SQLite, ``PRAGMA integrity_check`` must say ``ok``.

Command (about 3 minutes)::

    python benchmarks/serve_durability.py --trials 20

Output: ``benchmarks/results/serve_durability.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the test helpers that start servers

from tests.serve.postgres import PostgresServer, missing_reason  # noqa: E402
from tests.serve.server import Server  # noqa: E402


def trial(model: Path, work: Path, url: str, delay: float) -> dict:
    """One kill -9 trial; returns acknowledged, stored and lost counts."""
    from lmrec.serve.events import EventStore

    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with Server(model, work, store=url) as srv:

        def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                key = f"w{worker}-{n}"
                n += 1
                event = {"user": f"u{n % 500}", "item": str(n % 1682 + 1), "idempotency_key": key}
                try:
                    if srv.post("/v1/feedback", {"events": [event]})[0] == 200:
                        with lock:
                            acked.append(key)
                except (OSError, http.client.HTTPException):
                    pass  # in flight at the kill (even half-read): never acknowledged

        threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(delay)
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(10)
        stop.set()
        for t in threads:
            t.join()
    store = EventStore(url)
    stored = {e.idempotency_key for e in store.iter_events()}
    store.close()
    out = {"acknowledged": len(acked), "stored": len(stored), "lost": len(set(acked) - stored)}
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            out["integrity_check"] = db.execute("PRAGMA integrity_check").fetchone()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=str(HERE / "results" / "serve_durability"))
    args = ap.parse_args()
    from lmrec.data.sources import load_builtin
    from lmrec.models import create_model

    work = Path(tempfile.mkdtemp(prefix="lmrec-durability-"))
    create_model("ease", {"l2": 500.0}).fit(load_builtin("ml-100k")).save(work / "ease")
    rng = random.Random(args.seed)
    backends: dict[str, object] = {"sqlite": None}
    reason = missing_reason()
    pg = None if reason else PostgresServer().start()
    if pg is not None:
        backends["postgresql"] = pg
    else:
        print(f"PostgreSQL skipped: {reason}", file=sys.stderr)
    report: dict = {"trials": args.trials, "seed": args.seed, "backends": {}}
    try:
        for name, server in backends.items():
            rows = []
            for i in range(args.trials):
                if server is None:
                    url = f"sqlite:///{work / f'events-{i}.db'}"
                else:
                    url = server.new_database()  # type: ignore[attr-defined]
                rows.append(trial(work / "ease", work, url, rng.uniform(0.5, 2.5)))
                print(name, i, rows[-1], flush=True)
            report["backends"][name] = {
                "acknowledged": sum(r["acknowledged"] for r in rows),
                "lost": sum(r["lost"] for r in rows),
                "integrity_ok": all(r.get("integrity_check", "ok") == "ok" for r in rows),
                "per_trial": rows,
            }
    finally:
        if pg is not None:
            pg.stop()
    Path(args.out + ".json").write_text(json.dumps(report, indent=1))
    lines = [
        "# Feedback durability under kill -9 (`lmrec serve`)",
        "",
        f"`python benchmarks/serve_durability.py --trials {args.trials}`: 4 clients of "
        "single-event POST /v1/feedback, SIGKILL after a random 0.5-2.5 s (seed "
        f"{args.seed}), restart, every acknowledged key looked up.",
        "",
        "| store | trials | acknowledged events | lost | SQLite integrity_check |",
        "|---|---:|---:|---:|---|",
    ]
    for name, b in report["backends"].items():
        check = ("ok" if b["integrity_ok"] else "FAILED") if name == "sqlite" else "-"
        lines.append(f"| {name} | {args.trials} | {b['acknowledged']:,} | {b['lost']} | {check} |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
