"""``lmrec serve`` under a C load generator (wrk): saturation curve, 5x overload, metrics.

Protocol. EASE (l2=500) trained on MovieLens-100K, served by ``lmrec serve`` (one
worker, API keys on, SQLite event store) on 127.0.0.1; wrk (the Debian package:
``apt-get install wrk``) drives ``POST /v1/recommend`` with k=10 for users drawn
uniformly at random, through ``benchmarks/wrk/recommend.lua``, one connection per wrk
thread. Client and server share the machine's cores.

1. **Saturation curve** (closed loop, as plain wrk): 1, 2, 4, 8, 16, 32 connections,
   ``--duration`` s each: answered requests/s, p50/p99 per status.
2. **Unloaded latency**: constant rate at 10% of the saturation throughput S.
3. **Overload**: constant rate at 5 x S over ``--overload-connections`` connections,
   wrk2-style (a request that waited for a late response on its connection is timed
   from its scheduled send time: no coordinated omission), with the default
   ``--max-concurrency`` and with no limit (baseline). Reported: admitted (200) p50/p99
   and its ratio to the unloaded p99 (target < 2), the 503 refusals and their p99,
   any other status.
4. **Recovery**: constant rate at 50% of S right after the overload.
5. **Metrics agreement**: for every run, ``lmrec_requests_total`` of ``/v1/recommend``
   scraped before and after, against the responses wrk counted (target: within 1%).

``--front nginx`` puts nginx (the Debian package: ``apt-get install nginx-light``) in
front of the server, as a deployment would, and every run goes through it: nginx keeps
at most ``--front-limit`` requests in flight to lmrec (``limit_conn`` over one shared
key) and answers the rest ``503`` with ``Retry-After`` itself, in C, so shedding costs
the Python worker nothing. lmrec's own limit stays on behind it. The metrics agreement
then covers the statuses lmrec answers (nginx's refusals never reach it).

All latencies are ratios to references measured in the same run; the machine is
shared, so absolute figures vary between runs. Output: ``benchmarks/results/serve_wrk.json``
and ``.md``. Command (about 4 minutes with the defaults)::

    flock /tmp/lmrec-bench.lock python benchmarks/serve_wrk.py
    flock /tmp/lmrec-bench.lock python benchmarks/serve_wrk.py --duration 5 --quick
    flock /tmp/lmrec-bench.lock python benchmarks/serve_wrk.py --front nginx
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "recommend.lua"
HOST = "127.0.0.1"
_SAMPLE = re.compile(
    r'^lmrec_requests_total\{endpoint="/v1/recommend",method="POST",status="(\d+)"\} (\S+)$'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_ready(
    proc: subprocess.Popen, url: str, seconds: float, why_not: Callable[[], str]
) -> None:
    """Wait until ``url/readyz`` answers; raise with ``why_not()`` if ``proc`` exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/readyz", timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(why_not()) from None
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {seconds:g} s")


def stop(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` and wait 30 s, then kill the whole process group."""
    proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Server:
    """``lmrec serve`` in its own process group."""

    def __init__(self, model: Path, keys: Path, work: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        store = f"sqlite:///{work / f'events-{self.port}.db'}"
        self.cmd = [
            sys.executable,
            "-m",
            "lmrec",
            "serve",
            str(model),
            "--keys",
            str(keys),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--store",
            store,
            *flags,
        ]
        self.log = work / f"server-{self.port}.log"

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            self.cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_ready(self.proc, self.url, 60, lambda: self.log.read_text()[-2000:])
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc, signal.SIGTERM)

    def counts(self) -> collections.Counter:
        text = urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        out: collections.Counter = collections.Counter()
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if m:
                out[int(m[1])] = int(float(m[2]))
        return out

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20


NGINX_CONF = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    limit_conn_zone $server_port zone=lmrec_inflight:1m;
    limit_conn_status 503;
    limit_conn_log_level info;
    upstream lmrec {{ server {upstream}; keepalive 64; }}
    server {{
        listen {listen};
        location / {{
            limit_conn lmrec_inflight {limit};
            error_page 503 = @busy;
            proxy_pass http://lmrec;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
        location @busy {{
            default_type application/json;
            add_header Retry-After 1 always;
            return 503 '{{"detail": "The server is busy; retry after 1 s."}}';
        }}
    }}
}}
"""


class NginxFront:
    """nginx in front of a :class:`Server`: at most ``limit`` requests in flight to it."""

    def __init__(self, srv: Server, limit: int, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.conf = work / f"nginx-{self.port}.conf"
        self.conf.write_text(
            NGINX_CONF.format(
                work=work, upstream=f"{HOST}:{srv.port}", listen=f"{HOST}:{self.port}", limit=limit
            )
        )

    def __enter__(self) -> NginxFront:
        cmd = ["nginx", "-c", str(self.conf), "-g", "daemon off;"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, start_new_session=True)
        wait_ready(self.proc, self.url, 10, lambda: f"nginx failed: {self.proc.stderr.read()!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc, signal.SIGQUIT)  # nginx's graceful stop: finish the requests in flight


def wrk(
    srv: Server,
    users: Path,
    key: str,
    conns: int,
    seconds: float,
    rate: float,
    work: Path,
    front: NginxFront | None = None,
) -> dict:
    """One wrk run; ``rate`` is the total requests/s (0: closed loop). Per-status stats.

    With ``front``, wrk talks to nginx, and the metrics agreement covers the statuses
    lmrec itself answered (nginx's own refusals never reach it).
    """
    prefix = work / f"wrk-{time.monotonic_ns()}"
    per_conn = rate / conns if rate else 0
    before = srv.counts()
    cmd = [
        "wrk",
        f"-t{conns}",
        f"-c{conns}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        (front or srv).url,
        "--",
        str(users),
        key,
        f"{per_conn:.4f}",
        str(prefix),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    time.sleep(0.3)  # the server counts a response after sending it
    after = srv.counts()
    if "LMREC_SUMMARY " not in out.stdout:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-1000:]}"
        )
    summary = json.loads(out.stdout.split("LMREC_SUMMARY ", 1)[1].splitlines()[0])
    lat: dict[str, list[int]] = collections.defaultdict(list)
    for f in glob.glob(f"{prefix}-*.tsv"):
        for line in open(f):
            s, v = line.split("\t")
            lat[s].append(int(v))
        os.remove(f)
    seen = {int(s): len(v) for s, v in lat.items()}
    counted = {s: after[s] - before[s] for s in after}
    total = sum(seen.values())
    compared = seen if front is None else {s: n for s, n in seen.items() if s != 503}
    res = {
        "connections": conns,
        "offered_rps": rate or None,
        "seconds": summary["duration_s"],
        "answered": total,
        "rps": total / summary["duration_s"],
        "socket_errors": summary["socket_errors"],
        "by_status": {},
        "metrics_counted": counted,
        "metrics_error_pct": 100
        * sum(abs(counted.get(s, 0) - n) for s, n in compared.items())
        / max(sum(compared.values()), 1),
    }
    for s, values in sorted(lat.items()):
        v = np.asarray(values) / 1000
        res["by_status"][s] = {
            "n": len(v),
            "rps": len(v) / summary["duration_s"],
            "p50_ms": float(np.percentile(v, 50)),
            "p99_ms": float(np.percentile(v, 99)),
            "max_ms": float(v.max()),
        }
    return res


def ok(r: dict) -> dict:
    return r["by_status"].get(
        "200",
        {
            "n": 0,
            "rps": 0.0,
            "p50_ms": float("nan"),
            "p99_ms": float("nan"),
            "max_ms": float("nan"),
        },
    )


def train(work: Path) -> tuple[Path, Path]:
    from lmrec.data.sources import load_builtin
    from lmrec.models import create_model

    model = create_model("ease", {"l2": 500.0}).fit(load_builtin("ml-100k"))
    model.save(work / "ease")
    users = work / "users.txt"
    users.write_text("\n".join(str(u) for u in model.user_ids_.ids))
    return work / "ease", users


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    ap.add_argument("--connections", default="1,2,4,8,16,32", help="saturation curve points")
    ap.add_argument("--overload-connections", type=int, default=64)
    ap.add_argument("--max-concurrency", type=int, default=8, help="the server's limit")
    ap.add_argument("--quick", action="store_true", help="curve at 1,4,16 connections only")
    ap.add_argument(
        "--front",
        choices=("none", "nginx"),
        default="none",
        help="serve through nginx, which sheds load itself (see the module docstring)",
    )
    ap.add_argument(
        "--front-limit", type=int, default=4, help="--front nginx: requests in flight to lmrec"
    )
    ap.add_argument("--out", default=str(HERE / "results" / "serve_wrk"))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    if args.front == "nginx" and shutil.which("nginx") is None:
        sys.exit("nginx is not installed: apt-get install -y nginx-light")
    from lmrec.serve.auth import create_key

    work = Path(tempfile.mkdtemp(prefix="lmrec-wrk-"))
    model, users = train(work)
    key = create_key(work / "keys.json", "read")[1]
    conns = [1, 4, 16] if args.quick else [int(c) for c in args.connections.split(",")]
    d = args.duration
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=HERE.parent
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"], capture_output=True, text=True, cwd=HERE.parent
    ).stdout.strip()
    report: dict = {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs (shared)",
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0],
        "duration_s": d,
        "curve": [],
        "commit": commit + ("-dirty" if dirty else ""),
        "front": None if args.front == "none" else f"nginx, limit_conn {args.front_limit}",
    }
    limit = ["--max-concurrency", str(args.max_concurrency)]

    def fronted(srv: Server) -> contextlib.AbstractContextManager[NginxFront | None]:
        if args.front == "nginx":
            return NginxFront(srv, args.front_limit, work)
        return contextlib.nullcontext()

    with Server(model, work / "keys.json", work, *limit) as srv, fronted(srv) as front:

        def run(c: int, seconds: float, rate: float) -> dict:
            return wrk(srv, users, key, c, seconds, rate, work, front)

        run(4, 3, 0)  # warm-up
        for c in conns:
            r = run(c, d, 0)
            report["curve"].append(r)
            print(
                f"closed loop c={c}: {ok(r)['rps']:.0f} ok/s p50 {ok(r)['p50_ms']:.2f} "
                f"p99 {ok(r)['p99_ms']:.2f} ms {sorted(r['by_status'])}",
                flush=True,
            )
        sat = max(ok(r)["rps"] for r in report["curve"])
        report["saturation_rps"] = sat
        base = run(4, d, 0.1 * sat)
        report["unloaded"] = base
        print(f"unloaded (10% of S={sat:.0f}/s): p99 {ok(base)['p99_ms']:.2f} ms", flush=True)
        rss0 = srv.rss_mb()
        over = run(args.overload_connections, d, 5 * sat)
        report["overload"] = over
        report["rss_mb"] = [rss0, srv.rss_mb()]
        rec = run(4, d, 0.5 * sat)
        report["recovery"] = rec
    with Server(model, work / "keys.json", work, "--max-concurrency", "0") as srv:
        wrk(srv, users, key, 4, 3, 0, work)
        report["overload_no_limit"] = wrk(
            srv, users, key, args.overload_connections, d, 5 * sat, work
        )
    unloaded_p99 = ok(base)["p99_ms"]
    for name in ("overload", "overload_no_limit"):
        r = report[name]
        print(
            f"{name} (5 x S): admitted {ok(r)['rps']:.0f}/s p99 {ok(r)['p99_ms']:.2f} ms "
            f"= {ok(r)['p99_ms'] / unloaded_p99:.2f} x unloaded; statuses "
            f"{ {s: v['n'] for s, v in r['by_status'].items()} }",
            flush=True,
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(report, indent=1))
    Path(args.out + ".md").write_text(markdown(report, args))
    print(f"wrote {args.out}.json and .md")
    shutil.rmtree(work, ignore_errors=True)


def command_flags(args: argparse.Namespace) -> str:
    """The flags of this run that differ from the defaults, as typed on the command line."""
    out = ""
    if args.front != "none":
        out += f" --front {args.front} --front-limit {args.front_limit}"
    if args.max_concurrency != 8:
        out += f" --max-concurrency {args.max_concurrency}"
    return out


def limit_label(rep: dict, args: argparse.Namespace) -> str:
    """How the overload run limited the load it admitted."""
    label = f"max_concurrency={args.max_concurrency}"
    return f"{rep['front']} + {label}" if rep.get("front") else label


def markdown(rep: dict, args: argparse.Namespace) -> str:
    """The report as markdown tables."""
    base = ok(rep["unloaded"])["p99_ms"]
    lines = [
        "# `lmrec serve` under wrk (EASE, MovieLens-100K)",
        "",
        f"Commit {rep['commit']}. Machine: {rep['machine']}; {rep['wrk']}. One worker, API keys on, client and "
        f"server on the same cores; {rep['duration_s']:g} s per run. "
        + (
            f"Every run but the no-limit baseline through {rep['front']} (nginx answers the "
            "refusals). "
            if rep.get("front")
            else ""
        )
        + f"Command: `flock /tmp/lmrec-bench.lock python benchmarks/serve_wrk.py{command_flags(args)}`.",
        "",
        "## Saturation curve (closed loop, POST /v1/recommend k=10, random users)",
        "",
        "| connections | answered/s | 200/s | 503/s | 200 p50 ms | 200 p99 ms | metrics vs wrk |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rep["curve"]:
        o, busy = ok(r), r["by_status"].get("503", {"rps": 0.0})
        lines.append(
            f"| {r['connections']} | {r['rps']:,.0f} | {o['rps']:,.0f} | "
            f"{busy['rps']:,.0f} | {o['p50_ms']:.2f} | {o['p99_ms']:.2f} | "
            f"{r['metrics_error_pct']:.2f}% |"
        )
    lines += [
        "",
        f"Saturation throughput S = {rep['saturation_rps']:,.0f} answered 200/s.",
        "",
        "## Constant rate (wrk2-style schedule, latency from the scheduled send time)",
        "",
        "| run | offered/s | connections | 200/s | 200 p50 ms | 200 p99 ms | "
        "p99 / unloaded p99 | 503 | 503 p99 ms | other | metrics vs wrk |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    runs = [
        ("unloaded (0.1 S)", rep["unloaded"]),
        (f"5 x S, {limit_label(rep, args)}", rep["overload"]),
        ("recovery (0.5 S) right after", rep["recovery"]),
        ("5 x S, no limit (baseline)", rep["overload_no_limit"]),
    ]
    for name, r in runs:
        o = ok(r)
        busy = r["by_status"].get("503", {"n": 0, "p99_ms": float("nan")})
        other = sum(v["n"] for s, v in r["by_status"].items() if s not in ("200", "503"))
        # wrk's "status" error count is every non-2xx answer, already in by_status
        other += sum(n for kind, n in r["socket_errors"].items() if kind != "status")
        lines.append(
            f"| {name} | {r['offered_rps']:,.0f} | {r['connections']} | {o['rps']:,.0f} | "
            f"{o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {o['p99_ms'] / base:.2f} | "
            f"{busy['n']:,} | {busy['p99_ms']:.2f} | {other} | "
            f"{r['metrics_error_pct']:.2f}% |"
        )
    lines += [
        "",
        f"Server RSS before / after the overload: {rep['rss_mb'][0]:.0f} / "
        f"{rep['rss_mb'][1]:.0f} MB.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
