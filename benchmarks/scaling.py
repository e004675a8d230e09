"""Scaling benchmark: ingest, ALS and recommendation time and memory against data size.

Protocol, for each size (default 1M and 10M interactions; ``--sizes 1M,10M,100M``):

- Data: ``lmrec.data.synthetic.write_synthetic`` (seed 2026) into a temporary
  directory of Parquet chunks (users x items: 1M -> 20k x 10k, 10M -> 200k x 50k,
  100M -> 2M x 200k), written by a child process.
- Every measurement runs in a fresh worker process (this script with ``--worker``);
  the driver imports neither lmrec nor pyarrow, so the workers' ``ru_maxrss`` is
  their own (see ``benchmarks/scale.py`` on why).
- ingest: ``lmrec.data.ingest.ingest(dir, timestamp="timestamp")``; wall time, peak
  RSS of the worker (``ru_maxrss``) minus its RSS before ingest, and the final
  sizes of the CSR (``indices`` + ``data`` + ``indptr``) and of the whole
  interaction table.
- ALS: ingest (without timestamps), reset the peak counter (``/proc/self/clear_refs``),
  fit ``ALS(factors=64, iterations=--iterations)``; seconds per iteration and the
  fit's peak RSS (``VmHWM``).
- Recommend: top-20 with seen items excluded for ``--n-rec-users`` random users, exact
  (:class:`lmrec.retrieval.ExactIndex`) vs HNSW (:class:`lmrec.retrieval.FaissIndex`,
  m=32, ef_construction=100, ef_search=128; build time reported); users/s and the
  time extrapolated to all users, plus HNSW recall@20 against exact.
- Growth exponent ``b`` of ``time ~ N^b`` from a least-squares fit in log-log space.

Run ``python benchmarks/scaling.py`` (about 10 minutes on 2 cores). Results:
``benchmarks/results/scaling.md`` and ``scaling.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SHAPES = {"100k": (5_000, 2_000, 100_000), "1M": (20_000, 10_000, 1_000_000), "10M": (200_000, 50_000, 10_000_000),
          "100M": (2_000_000, 200_000, 100_000_000)}  # fmt: skip
MIB = 1 << 20
INGEST_NOTES = """
Notes on ingest memory (10M, measured separately with the same data by wrapping the
`Dataset` call in `lmrec.data.ingest`): the peak before `Dataset(...)` is about 417 MiB
with timestamps (317 MiB without) over a 153 MiB (76 MiB) final table; the rest of the
peak comes from `Dataset.__init__`, which copies every column (`to_numpy(copy=True)`)
and builds an int64 key, its product temporary and `np.diff` to check the CSR order
(about 2x the table + 24 bytes per row while the caller's columns are still alive).
A zero-copy constructor for columns already in CSR order would remove that step
(`dataset.py` is owned elsewhere). The fixed part (arrow pool, id maps, ~100 MiB)
dominates the 1M row.
"""


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(task: dict) -> dict:
    import numpy as np
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401 - imported before the RSS baseline below

    from lmrec.data.ingest import ingest

    out: dict = {}
    if task["what"] == "synth":
        from lmrec.data.synthetic import write_synthetic

        t = time.perf_counter()
        write_synthetic(task["dir"], *task["shape"], seed=2026, overwrite=True)
        return {"synth_s": time.perf_counter() - t, "synth_maxrss_mib": _maxrss_mib()}
    rss0 = _status("VmRSS")
    t = time.perf_counter()
    data = ingest(task["dir"], timestamp="timestamp" if task["what"] == "ingest" else None)
    if task["what"] == "ingest":
        out["ingest_s"] = time.perf_counter() - t
        out["ingest_peak_mib"] = _maxrss_mib() - rss0
        out["rss_after_mib"] = _status("VmRSS") - rss0
        m = data.matrix
        out["csr_mib"] = (m.indices.nbytes + m.data.nbytes + m.indptr.nbytes) / MIB
        cols = data._interactions.columns
        out["table_mib"] = sum(data.column(c).nbytes for c in cols) / MIB
        return out
    if task["what"] == "als":
        from lmrec.models.als import ALS

        base = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        t = time.perf_counter()
        ALS(factors=64, iterations=task["iterations"], seed=2026).fit(data)
        out["als_iter_s"] = (time.perf_counter() - t) / task["iterations"]
        out["als_peak_mib"] = _status("VmHWM")
        out["als_increase_mib"] = out["als_peak_mib"] - base
        return out
    # recommend
    from lmrec.retrieval import ExactIndex, FaissIndex

    rng = np.random.default_rng(2026)
    users = np.sort(rng.choice(data.n_users, min(task["n_users"], data.n_users), replace=False))
    from lmrec.models.als import ALS

    model = ALS(factors=64, iterations=2, seed=2026).fit(data)
    uv, iv = model.user_factors_, model.item_factors_
    seen = data.matrix[users]
    t = time.perf_counter()
    exact, _ = ExactIndex().build(iv).search(uv[users], 20, exclude=seen)
    out["exact_users_per_s"] = len(users) / (time.perf_counter() - t)
    t = time.perf_counter()
    index = FaissIndex("hnsw", m=32, ef_construction=100, ef_search=128).build(iv)
    out["hnsw_build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    got, _ = index.search(uv[users], 20, exclude=seen)
    out["hnsw_users_per_s"] = len(users) / (time.perf_counter() - t)
    hits = (got[:, :, None] == exact[:, None, :]).any(axis=2).sum(axis=1)
    out["hnsw_recall"] = float(np.mean(hits / np.maximum((exact >= 0).sum(axis=1), 1)))
    out["exact_all_s"] = data.n_users / out["exact_users_per_s"]
    out["hnsw_all_s"] = data.n_users / out["hnsw_users_per_s"] + out["hnsw_build_s"]
    return out


def run_worker(task: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(task)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"worker {task['what']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def exponent(ns: list[float], ys: list[float]) -> float:
    import math

    if len(ns) < 2:
        return float("nan")
    lx = [math.log(n) for n in ns]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1M,10M")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--n-rec-users", type=int, default=5_000)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    results = {}
    with tempfile.TemporaryDirectory(prefix="lmrec-scaling-") as tmp:
        for size in args.sizes.split(","):
            shape = SHAPES[size]
            d = str(Path(tmp) / size)
            r = {"n": shape[2], "users": shape[0], "items": shape[1]}
            for task in ({"what": "synth", "shape": shape}, {"what": "ingest"},
                         {"what": "als", "iterations": args.iterations},
                         {"what": "recommend", "n_users": args.n_rec_users}):  # fmt: skip
                r.update(run_worker({**task, "dir": d}))
                print(size, task["what"], json.dumps(r), flush=True)
            results[size] = r
    sizes = list(results)
    ns = [results[s]["n"] for s in sizes]
    cols = [
        ("Interactions", lambda r: f"{r['n']:,}"),
        ("Users x items", lambda r: f"{r['users']:,} x {r['items']:,}"),
        ("Synth write (s)", lambda r: f"{r['synth_s']:.1f}"),
        ("Ingest (s)", lambda r: f"{r['ingest_s']:.1f}"),
        ("Ingest peak RSS increase (MiB)", lambda r: f"{r['ingest_peak_mib']:.0f}"),
        ("Final CSR (MiB)", lambda r: f"{r['csr_mib']:.0f}"),
        ("Final interaction table incl. timestamps (MiB)", lambda r: f"{r['table_mib']:.0f}"),
        ("Ingest peak / CSR", lambda r: f"{r['ingest_peak_mib'] / r['csr_mib']:.2f}"),
        ("Ingest peak / table", lambda r: f"{r['ingest_peak_mib'] / r['table_mib']:.2f}"),
        ("ALS s / iteration (64 factors)", lambda r: f"{r['als_iter_s']:.2f}"),
        ("ALS fit peak RSS (MiB)", lambda r: f"{r['als_peak_mib']:.0f}"),
        ("Exact top-20 users/s", lambda r: f"{r['exact_users_per_s']:,.0f}"),
        ("HNSW top-20 users/s", lambda r: f"{r['hnsw_users_per_s']:,.0f}"),
        ("HNSW build (s)", lambda r: f"{r['hnsw_build_s']:.1f}"),
        ("HNSW recall@20 vs exact", lambda r: f"{r['hnsw_recall']:.4f}"),
        ("Recommend-all exact (s, extrapolated)", lambda r: f"{r['exact_all_s']:,.0f}"),
        ("Recommend-all HNSW incl. build (s, extrap.)", lambda r: f"{r['hnsw_all_s']:,.0f}"),
    ]
    lines = [
        "# Scaling: ingest, ALS and recommendation vs data size",
        "",
        f"- Command: `{' '.join(['python benchmarks/scaling.py', *sys.argv[1:]])}`",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}. Each measure in a fresh process.",
        f"- Recommend: {args.n_rec_users:,} random users, k=20, seen items excluded, "
        f"factors from a 2-iteration ALS; all-user time extrapolated from them.",
        "",
        "| Measure | " + " | ".join(sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for label, fmt in cols:
        lines.append(f"| {label} | " + " | ".join(fmt(results[s]) for s in sizes) + " |")
    lines += ["", "Growth exponents b (time or memory ~ N^b, least squares in log-log):", ""]
    series = {
        "ingest time": "ingest_s", "ingest peak RSS": "ingest_peak_mib",
        "ALS time / iteration": "als_iter_s", "ALS peak RSS": "als_peak_mib",
        "exact recommend-all": "exact_all_s", "HNSW recommend-all": "hnsw_all_s",
    }  # fmt: skip
    for label, key in series.items():
        lines.append(f"- {label}: b = {exponent(ns, [results[s][key] for s in sizes]):.2f}")
    lines += ["", *INGEST_NOTES.strip("\n").splitlines(), "", "![log-log](scaling.png)"]
    (RESULTS / "scaling.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "scaling.json").write_text(json.dumps(results, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for label, key in (("ingest", "ingest_s"), ("ALS / iteration", "als_iter_s"),
                       ("exact recommend-all", "exact_all_s"), ("HNSW recommend-all", "hnsw_all_s")):  # fmt: skip
        a1.loglog(ns, [results[s][key] for s in sizes], "o-", label=label)
    a1.set(xlabel="interactions", ylabel="seconds", title="time")
    a1.legend()
    for label, key in (("ingest peak", "ingest_peak_mib"), ("ALS peak", "als_peak_mib"),
                       ("final CSR", "csr_mib")):  # fmt: skip
        a2.loglog(ns, [results[s][key] for s in sizes], "o-", label=label)
    a2.set(xlabel="interactions", ylabel="MiB", title="memory")
    a2.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "scaling.png", dpi=100)
    plt.close(fig)
    print((RESULTS / "scaling.md").read_text())


if __name__ == "__main__":
    main()
