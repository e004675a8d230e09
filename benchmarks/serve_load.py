"""Load, durability and fuzz benchmarks of ``lmrec serve`` on MovieLens-100K.

Three parts (all by default; pick with ``--parts``):

``load``
    EASE and ALS models trained on the fly on MovieLens-100K, each served by one uvicorn
    worker on 127.0.0.1 with API keys on. An open-loop generator (requests are sent on a
    fixed schedule whatever the server does, and latency is measured from the *scheduled*
    send time, so a slow server cannot hide its queueing -- no coordinated omission)
    drives mixed traffic -- 80% known users, 10% unknown users, 10% anonymous sessions of
    5 items -- at each rate for ``--duration`` seconds. Reports p50/p95/p99/max latency,
    throughput and errors.
``feedback``
    ``--feedback-rate`` single-event ``POST /v1/feedback`` requests per second for
    ``--feedback-duration`` seconds into SQLite, then ``kill -9`` of the server the moment
    the schedule ends (requests still in flight), a restart on the same database, and a
    check that every acknowledged event is stored.
``fuzz``
    schemathesis against the served ``/openapi.json`` (admin key, all phases), with the
    server's own counters giving the number of requests and of 5xx answers.

The client is a minimal asyncio HTTP/1.1 keep-alive client (no third-party client in the
hot loop), so the generator costs little CPU on a small machine. Only loopback traffic.

Usage::

    python benchmarks/serve_load.py                      # everything, 60 s per rate
    python benchmarks/serve_load.py --quick              # 10 s per rate, 10 s feedback
    python benchmarks/serve_load.py --parts load --rates 200,500 --models ease
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
SETTINGS_ENV = "LMREC_SERVE_SETTINGS"


# ---------------------------------------------------------------------- server control
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(settings: dict, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    """Start uvicorn with the app factory; returns (process, seconds until /readyz is 200)."""
    env = dict(os.environ, **{SETTINGS_ENV: json.dumps(settings), "PYTHONUNBUFFERED": "1"})
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "lmrec.serve.app:app_from_env",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(settings.get("workers", 1)),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    deadline = start + 180
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not become ready in 180 s; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get_json(port: int, path: str, key: str) -> dict:
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", headers={"X-API-Key": key})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def server_counters(port: int) -> tuple[int, int]:
    """(all requests, 5xx responses) from the server's Prometheus counters."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = errors5 = 0
    for m in re.finditer(r"^lmrec_requests_total\{([^}]*)\} ([0-9.e+]+)$", text, re.M):
        n = int(float(m.group(2)))
        total += n
        if re.search(r'status="5\d\d"', m.group(1)):
            errors5 += n
    return total, errors5


# ---------------------------------------------------------------------- open-loop client
class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def http_post(path: str, body: dict, key: str) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


@dataclass
class LoadResult:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0
    errors: int = 0
    sent: int = 0
    elapsed: float = 0.0
    acked: list[str] = field(default_factory=list)


async def open_loop(
    port: int,
    requests: list[tuple[str, bytes, list[str] | None]],
    rate: float,
    *,
    max_conns: int = 256,
    timeout: float = 10.0,
    stop_at_end: bool = False,
) -> LoadResult:
    """Send ``requests`` (class, raw bytes, ack id) at ``rate`` per second on a fixed schedule."""
    loop = asyncio.get_running_loop()
    # FIFO reuse: every connection stays busy, so none sits idle past uvicorn's 5 s keep-alive
    idle: deque[Conn] = deque([await Conn.open(port) for _ in range(min(32, max_conns))])
    n_open = len(idle)
    res = LoadResult()
    tasks: set[asyncio.Task] = set()

    async def one(kind: str, raw: bytes, ack: list[str] | None, scheduled: float) -> None:
        nonlocal n_open
        conn = None
        try:
            if idle:
                conn = idle.popleft()
            elif n_open < max_conns:
                n_open += 1
                conn = await Conn.open(port)
            else:
                while not idle:
                    await asyncio.sleep(0.0005)
                conn = idle.popleft()
            status = await asyncio.wait_for(conn.request(raw), timeout)
            res.statuses[status] = res.statuses.get(status, 0) + 1
            if status == 200:
                res.latencies.setdefault(kind, []).append(loop.time() - scheduled)
                if ack is not None:
                    res.acked.extend(ack)
            else:
                res.errors += 1
            idle.append(conn)
        except (
            TimeoutError,
            OSError,
            ConnectionError,
            ValueError,
            IndexError,
            asyncio.IncompleteReadError,
        ) as e:
            res.errors += 1
            res.error_kinds[type(e).__name__] = res.error_kinds.get(type(e).__name__, 0) + 1
            if conn is not None:
                conn.close()
                n_open -= 1

    start = loop.time()
    for i, (kind, raw, ack) in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.create_task(one(kind, raw, ack, scheduled))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        res.sent += 1
    if not stop_at_end and tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    res.elapsed = loop.time() - start
    res.unfinished = len(tasks)  # not answered within the drain window (or in flight at a kill)
    if not stop_at_end and res.unfinished:
        res.errors += res.unfinished
        res.error_kinds["unanswered"] = res.unfinished
    for t in list(tasks):
        t.cancel()
    for c in idle:
        c.close()
    return res


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


# ---------------------------------------------------------------------- parts
def train_models(workdir: Path, names: list[str]) -> dict[str, Path]:
    from lmrec.data.sources import load_builtin
    from lmrec.models import create_model

    data = load_builtin("ml-100k")
    params = {"ease": {"l2": 500.0}, "als": {"factors": 64, "iterations": 15, "seed": 0}}
    out = {}
    for name in names:
        t0 = time.perf_counter()
        path = workdir / "models" / name
        create_model(name, params.get(name, {})).fit(data).save(path)
        print(f"trained {name} on ml-100k in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        out[name] = path
    return out


def mixed_requests(model_dir: Path, n: int, key: str, seed: int) -> list[tuple[str, bytes, None]]:
    """80% known users, 10% unknown users, 10% anonymous sessions (5 items by popularity)."""
    from lmrec.models import load_model

    model = load_model(model_dir)
    rng = np.random.default_rng(seed)
    users = np.asarray(model.user_ids_.ids)
    items = np.asarray(model.item_ids_.ids)
    pop = np.bincount(model.seen_.indices, minlength=len(items)).astype(float) + 1.0
    pop /= pop.sum()
    out = []
    for u in rng.random(n):
        if u < 0.8:
            body, kind = {"user": str(rng.choice(users)), "k": 10}, "known"
        elif u < 0.9:
            body, kind = {"user": f"new-{rng.integers(1 << 40)}", "k": 10}, "unknown"
        else:
            sess = rng.choice(items, size=5, replace=False, p=pop).tolist()
            body, kind = {"items": sess, "k": 10}, "session"
        out.append((kind, http_post("/v1/recommend", body, key), None))
    return out


def run_load(args, workdir: Path, models: dict[str, Path], keys: dict[str, str]) -> list[dict]:
    rows = []
    for name, path in models.items():
        port = free_port()
        settings = {
            "model_dir": str(path),
            "keys_file": str(workdir / "keys.json"),
            "store_url": f"sqlite:///{workdir / f'load-{name}.db'}",
            "workers": args.server_workers,
        }
        proc, ready = start_server(settings, port, workdir / f"server-{name}.log")
        try:
            info = get_json(port, "/v1/models", keys["read"])
            print(
                f"{name}: ready in {ready:.2f}s (server-reported startup "
                f"{info['startup_seconds']:.2f}s)",
                file=sys.stderr,
            )
            warm = mixed_requests(path, 400, keys["read"], seed=1)
            asyncio.run(open_loop(port, warm, 200))
            for rate in args.rates:
                reqs = mixed_requests(path, int(rate * args.duration), keys["read"], seed=rate)
                res = asyncio.run(open_loop(port, reqs, rate))
                allv = [v for vs in res.latencies.values() for v in vs]
                row = {
                    "model": name,
                    "rate": rate,
                    "duration": args.duration,
                    "sent": res.sent,
                    "ok": len(allv),
                    "errors": res.errors,
                    "throughput": len(allv) / res.elapsed,
                    "p50": pct(allv, 50),
                    "p95": pct(allv, 95),
                    "p99": pct(allv, 99),
                    "max": pct(allv, 100),
                    "startup": info["startup_seconds"],
                    "ready": ready,
                    "workers": args.server_workers,
                    "failures": {
                        **{str(k): v for k, v in res.statuses.items() if k != 200},
                        **res.error_kinds,
                    },
                    **{f"p99_{k}": pct(v, 99) for k, v in res.latencies.items()},
                }
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
        finally:
            stop_server(proc)
    return rows


def run_feedback(
    args, workdir: Path, models: dict[str, Path], keys: dict[str, str], batch: int
) -> dict:
    """``feedback_rate`` events/s in requests of ``batch`` events, kill -9, restart, compare."""
    name, path = next(iter(models.items()))
    db = workdir / f"feedback-{batch}.db"
    settings = {
        "model_dir": str(path),
        "keys_file": str(workdir / "keys.json"),
        "store_url": f"sqlite:///{db}",
    }
    port = free_port()
    proc, _ = start_server(settings, port, workdir / "server-feedback.log")
    rng = np.random.default_rng(7)
    n_req = int(args.feedback_rate * args.feedback_duration / batch)
    reqs = []
    for r in range(n_req):
        evs = []
        for j in range(batch):
            evs.append({
                "user": f"fb-user-{rng.integers(5000)}", "item": str(rng.integers(1, 1683)),
                "type": "click", "weight": 1.0, "idempotency_key": f"ev-{r:07d}-{j:03d}",
            })  # fmt: skip
        body = http_post("/v1/feedback", {"events": evs}, keys["write"])
        reqs.append(("feedback", body, [e["idempotency_key"] for e in evs]))

    async def drive() -> LoadResult:
        res = await open_loop(port, reqs, args.feedback_rate / batch, stop_at_end=True)
        os.kill(proc.pid, signal.SIGKILL)  # the moment the schedule ends, requests in flight
        return res

    res = asyncio.run(drive())
    proc.wait()
    with sqlite3.connect(db) as conn:
        stored = {r[0] for r in conn.execute("SELECT idempotency_key FROM events")}
    missing = [k for k in res.acked if k not in stored]
    port2 = free_port()
    proc2, ready2 = start_server(settings, port2, workdir / "server-feedback.log")
    try:
        m = get_json(port2, "/v1/models", keys["read"])
    finally:
        stop_server(proc2)
    lat = res.latencies.get("feedback", [])
    out = {
        "rate": args.feedback_rate,
        "batch": batch,
        "duration": args.feedback_duration,
        "sent": res.sent * batch,
        "acked": len(res.acked),
        "stored_after_kill": len(stored),
        "acked_missing": len(missing),
        "errors": res.errors,
        "throughput": len(res.acked) / res.elapsed,
        "failures": {**{str(k): v for k, v in res.statuses.items() if k != 200}, **res.error_kinds},
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "restart_ready": ready2,
        "restart_startup": m["startup_seconds"],
    }
    print(json.dumps(out), file=sys.stderr)
    return out


def run_fuzz(args, workdir: Path, models: dict[str, Path], keys: dict[str, str]) -> dict:
    name, path = next(iter(models.items()))
    settings = {
        "model_dir": str(path),
        "keys_file": str(workdir / "keys.json"),
        "store_url": f"sqlite:///{workdir / 'fuzz.db'}",
    }
    port = free_port()
    proc, _ = start_server(settings, port, workdir / "server-fuzz.log")
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(exe),
        "run",
        f"http://{HOST}:{port}/openapi.json",
        "-H",
        f"X-API-Key: {keys['admin']}",
        "--max-examples",
        str(args.fuzz_examples),
        "--continue-on-failure",
        "--checks",
        "all",
        "--seed",
        "1",
        "--no-color",
        "--workers",
        "1",
        "--generation-database",
        "none",
    ]
    t0 = time.perf_counter()
    try:
        before = server_counters(port)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.fuzz_timeout)
        total, errors5 = server_counters(port)
        total -= before[0] + 1  # minus the /metrics scrape itself
        errors5 -= before[1]
    finally:
        stop_server(proc)
    (workdir / "schemathesis.txt").write_text(done.stdout + done.stderr)
    tail = (done.stdout + done.stderr).strip().splitlines()[-40:]
    summary = {
        "requests": total,
        "server_errors_5xx": errors5,
        "exit_code": done.returncode,
        "seconds": time.perf_counter() - t0,
        "tail": tail,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "tail"}), file=sys.stderr)
    return summary


# ---------------------------------------------------------------------- report
def write_report(path: Path, args, load: list[dict], fbs: list[dict], fz: dict | None) -> None:
    lines = [
        "# Serving benchmarks (`lmrec serve`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs (shared with other jobs); "
        f"Python {platform.python_version()}. One uvicorn worker (h11, asyncio loop), API keys on,",
        "client and server on 127.0.0.1. Latency is measured from the *scheduled* send time of an",
        "open-loop generator (no coordinated omission).",
        "",
        f"Command: `python benchmarks/serve_load.py {' '.join(sys.argv[1:])}`",
        "",
    ]
    if load:
        lines += [
            "## Mixed traffic: 80% known users, 10% unknown users, 10% anonymous sessions",
            "",
            "| model | workers | target rps | duration s | sent | ok | errors | throughput rps "
            "| p50 ms | p95 ms | p99 ms | max ms | p99 known / unknown / session ms | startup s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        nan = float("nan")
        for r in load:
            lines.append(
                f"| {r['model']} | {r['workers']} | {r['rate']} | {r['duration']} | {r['sent']} "
                f"| {r['ok']} | {r['errors']} | {r['throughput']:.1f} | {r['p50']:.2f} "
                f"| {r['p95']:.2f} | {r['p99']:.2f} | {r['max']:.1f} "
                f"| {r.get('p99_known', nan):.2f} / {r.get('p99_unknown', nan):.2f} / "
                f"{r.get('p99_session', nan):.2f} | {r['startup']:.2f} |"
            )
        lines.append("")
        fails = {f"{r['model']}@{r['rate']}": r["failures"] for r in load if r["failures"]}
        lines += [f"Failures by kind: {fails or 'none'}.", ""]
    if fbs:
        lines += [
            "## Feedback durability (SQLite, WAL, synchronous=FULL)",
            "",
            f"{fbs[0]['rate']:.0f} events/s for {fbs[0]['duration']:.0f} s (one run per batch "
            "size: events per request), then `kill -9` of the server the moment the schedule ended "
            "(requests still in flight), restart on the same database, and every acknowledged "
            "idempotency key looked up in the database.",
            "",
            "| events/request | events sent | acknowledged (200) | stored after kill -9 "
            "| acknowledged but missing | failed requests | acked events/s | p50 ms | p99 ms "
            "| restart s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for fb in fbs:
            lines.append(
                f"| {fb['batch']} | {fb['sent']} | {fb['acked']} | {fb['stored_after_kill']} "
                f"| **{fb['acked_missing']}** | {fb['errors']} | {fb['throughput']:.1f} "
                f"| {fb['p50']:.2f} | {fb['p99']:.2f} | {fb['restart_ready']:.2f} |"
            )
        fails = {fb["batch"]: fb["failures"] for fb in fbs if fb["failures"]}
        lines += ["", f"Failures by kind: {fails or 'none'}.", ""]
    if fz:
        lines += [
            "## schemathesis against /openapi.json",
            "",
            f"`schemathesis run --checks all --max-examples {args.fuzz_examples}` with an admin "
            f"key: **{fz['requests']} requests, {fz['server_errors_5xx']} server errors (5xx)** "
            f"(server-side counters), {fz['seconds']:.0f} s, exit code {fz['exit_code']}.",
            "",
            "```",
            *fz["tail"],
            "```",
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="load,feedback,fuzz")
    p.add_argument("--models", default="ease,als")
    p.add_argument("--rates", default="200,500")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per rate (default 60)")
    p.add_argument("--feedback-rate", type=float, default=1000.0)
    p.add_argument("--feedback-duration", type=float, default=30.0)
    p.add_argument(
        "--feedback-batches", default="1,10", help="events per request, one run each (default 1,10)"
    )
    p.add_argument("--fuzz-examples", type=int, default=300, help="per API operation")
    p.add_argument("--fuzz-timeout", type=float, default=900.0)
    p.add_argument("--server-workers", type=int, default=1, help="uvicorn workers (load part)")
    p.add_argument("--quick", action="store_true", help="10 s per rate and 10 s of feedback")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve.md"))
    args = p.parse_args(argv)
    args.rates = [int(r) for r in args.rates.split(",")]
    args.feedback_batches = [int(b) for b in args.feedback_batches.split(",")]
    if args.quick:
        args.duration, args.feedback_duration, args.fuzz_examples = 10.0, 10.0, 100
    parts = set(args.parts.split(","))
    from lmrec.serve.auth import create_key

    with tempfile.TemporaryDirectory(prefix="lmrec-serve-bench-") as tmp:
        workdir = Path(tmp)
        keys = {
            role: create_key(workdir / "keys.json", role)[1] for role in ("read", "write", "admin")
        }
        models = train_models(workdir, args.models.split(","))
        load = run_load(args, workdir, models, keys) if "load" in parts else []
        fb = (
            [run_feedback(args, workdir, models, keys, b) for b in args.feedback_batches]
            if "feedback" in parts
            else []
        )
        fz = run_fuzz(args, workdir, models, keys) if "fuzz" in parts else None
        write_report(Path(args.out), args, load, fb, fz)
    return 0


if __name__ == "__main__":
    sys.exit(main())
