"""A served retrieve-then-rerank pipeline under a C load generator (issue 18.3).

Protocol: ``lmrec serve MODEL_DIR`` (one worker, API keys off, 127.0.0.1) with the
per-user precomputed lists and the response cache turned off (``precompute_max_users
= 0``, ``cache_size = 0``), so every request runs the pipeline: EASE proposes the
user's top 20 unseen items and the LM ranker rescores all 20. ``wrk`` (the Debian
package; C) sends ``POST /v1/recommend`` for a random known user (k = 10) over
``--connections`` connections (closed loop: each connection waits for its answer) for
``--seconds`` seconds after a warm-up, on the same 2 cores as the service. Reported:
requests/s and latency percentiles (p50, p90, p99) as wrk measures them. Target: p99
<= 50 ms at one connection for the fast pipeline (``benchmarks/ranker_pipeline.py
--save DIR`` writes it). ``--reference DIR`` serves a second model directory the same
way, in the same run, for a ratio.

Run ``flock /tmp/lmrec-bench.lock python benchmarks/serve_ranker.py DIR``; writes
``benchmarks/results/serve_ranker.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

OUT = Path(__file__).parent / "results" / "serve_ranker.md"
LUA = Path(__file__).parent / "wrk" / "ranker.lua"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(model_dir: Path, tmp: Path) -> tuple[subprocess.Popen, str]:
    """Start ``lmrec serve`` without precomputed lists or cache; wait until it answers."""
    port = free_port()
    config = tmp / "serve.json"
    config.write_text(json.dumps({"precompute_max_users": 0, "cache_size": 0}))
    lmrec = Path(sys.executable).with_name("lmrec")
    cmd = [
        str(lmrec),
        "serve",
        str(model_dir),
        "--no-auth",
        "--port",
        str(port),
        "--config",
        str(config),
        "--workers",
        "1",
        "--store",  # a throwaway event store, not lmrec-events.db in the working directory
        f"sqlite:///{tmp / 'events.db'}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"lmrec serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("lmrec serve did not answer /healthz within 5 minutes")


def wrk(url: str, users: Path, connections: int, seconds: int) -> dict[str, float]:
    cmd = [
        "wrk",
        f"-t{min(connections, 2)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        str(users),
        "10",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}


def measure(model_dir: Path, args: argparse.Namespace, tmp: Path) -> list[dict]:
    from lmrec.models import load_model

    users = tmp / "users.txt"
    users.write_text("\n".join(map(str, load_model(model_dir).user_ids_.ids)) + "\n")
    proc, url = serve(model_dir, tmp)
    try:
        wrk(url, users, 1, 5)  # warm-up: sessions, caches of token ids, allocator
        rows = []
        for c in args.connections:
            r = wrk(url, users, c, args.seconds)
            rows.append({"connections": c, **r})
            print(model_dir.name, c, r, flush=True)
        return rows
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--reference", type=Path, help="a second model directory, served the same way")
    ap.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (("fast", args.model_dir), ("reference", args.reference)):
            if path is not None:
                runs[name] = measure(path, args, Path(tmp))
    lines = [
        "# Served pipeline (EASE top-20 -> LM ranker) under wrk",
        "",
        f"`python benchmarks/serve_ranker.py {' '.join(sys.argv[1:])}`; {os.cpu_count()} CPUs "
        "shared by the service and wrk; one worker, no precomputed lists, no cache: every "
        f"request reranks 20 candidates. {args.seconds} s per row after a 5 s warm-up.",
        "",
        "| pipeline | connections | requests/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in runs.items():
        for r in rows:
            lines.append(
                f"| {name} | {r['connections']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | "
                f"{r['p90_ms']:.1f} | **{r['p99_ms']:.1f}** | {r['errors']:.0f} |"
            )
    if "reference" in runs:
        ref, fast = runs["reference"][0], runs["fast"][0]
        lines += [
            "",
            f"One connection: p99 reference / fast = {ref['p99_ms'] / fast['p99_ms']:.1f}x, "
            f"throughput fast / reference = {fast['rps'] / ref['rps']:.1f}x.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
