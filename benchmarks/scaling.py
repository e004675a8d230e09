"""Scaling benchmark: ingest, ALS, evaluation and recommend-all time and memory vs data size.

Protocol, for each size (default ``--sizes 1M,10M,100M``):

- Data: ``lmrec datasets synth`` (``write_synthetic``, seed 2026) with users = N/50
  (mean activity fixed at 50) and items ~ 16 * sqrt(N), as catalogs grow slower
  than audiences: 1M -> 20k x 16k, 10M -> 200k x 50k, 100M -> 2M x 160k. Written
  once under ``--root`` (``ROOT/<size>``; an existing directory is reused and its
  write time not reported: delete it to time the generator).
- Every measurement runs in a fresh worker process (this script with ``--worker``)
  under ``flock /tmp/lmrec-timing.lock`` (so timed runs of other jobs do not overlap);
  the driver imports neither lmrec nor pyarrow. Small sizes are repeated
  (``--repeats``, default 3 at 1M, 2 at 10M, 1 at 100M) and the best time kept.
- ingest: ``lmrec.data.ingest.ingest(dir)`` (user, item: the CSR) and, separately,
  with ``timestamp="timestamp"``; wall time and peak RSS increase of the worker
  (``VmHWM`` minus its RSS after imports) against the final CSR bytes
  (``indices`` + ``data`` + ``indptr``). The first run also saves the data set.
- ALS: :meth:`Dataset.load` of that data set, then ``ALS(factors=64,
  iterations=--iterations)`` twice: the default ``solver="auto"`` (implicit's CG
  iteration run by lmrec's numba kernel, :mod:`lmrec.models.als_cg`) and
  ``solver="implicit"`` (implicit's own Cython CG) as the reference;
  per-iteration times from ``ALS.iteration_seconds_``, the steady state = mean over
  iterations after the first, and the fit's peak RSS. The default model is saved
  for the next steps.
- Evaluation: :func:`lmrec.eval.protocol.evaluate` of that model (strict full
  ranking over all items, training items excluded, default metrics) for 10,000
  random users whose test rows are 20% of their interactions. The model was
  fitted on all rows (its seen items are excluded), so the metrics are meaningless here: this times the
  evaluation work (scoring, top-k, metrics) at each size (``e2e_10m.py`` measures
  a real split).
- Recommend-all: top-20 with seen items excluded for ``--n-rec-users`` random users,
  exact (:class:`lmrec.retrieval.ExactIndex`) vs HNSW (:class:`lmrec.retrieval.FaissIndex`,
  m=32, ef_construction=100, ef_search=128; build time reported); time for all users
  extrapolated from them, plus HNSW recall@20 against exact.
- Growth exponent ``b`` of ``time ~ N^b``: least squares in log-log space.

Run ``python benchmarks/scaling.py`` (about 40 minutes on 2 cores with 100M).
Results: ``benchmarks/results/scaling.md``, ``scaling.json`` and ``scaling.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SHAPES = {
    "100k": (2_000, 5_000, 100_000),
    "1M": (20_000, 16_000, 1_000_000),
    "10M": (200_000, 50_000, 10_000_000),
    "100M": (2_000_000, 160_000, 100_000_000),
}
REPEATS = {"100k": 3, "1M": 3, "10M": 2, "100M": 1}
MIB = 1 << 20
LOCK = "/tmp/lmrec-timing.lock"


def worker(task: dict) -> dict:
    """One measurement in this (fresh) process; returns a flat dict of numbers."""
    import numpy as np
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401 - imported before the RSS baseline below

    sys.path.insert(0, str(Path(__file__).parent))
    from als_fit import fit_als, reset_peak, status_mib

    from lmrec.data import Dataset
    from lmrec.data.ingest import ingest

    if task["what"] == "synth":
        from lmrec.data.synthetic import write_synthetic

        t = time.perf_counter()
        write_synthetic(task["dir"], *task["shape"], seed=2026)
        return {"synth_s": time.perf_counter() - t, "synth_peak_mib": status_mib("VmHWM")}
    rss0 = status_mib("VmRSS")
    reset_peak()
    if task["what"] in ("ingest", "ingest_ts"):
        ts = task["what"] == "ingest_ts"
        t = time.perf_counter()
        data = ingest(task["dir"], timestamp="timestamp" if ts else None)
        el = time.perf_counter() - t
        peak = status_mib("VmHWM") - rss0
        m = data.matrix
        csr = (m.indices.nbytes + m.data.nbytes + m.indptr.nbytes) / MIB
        pre = "ingest_ts" if ts else "ingest"
        out = {f"{pre}_s": el, f"{pre}_peak_mib": peak, f"{pre}_ratio": peak / csr}
        if not ts:
            out["csr_mib"] = csr
            if task.get("save"):
                data.save(task["ds"])
        return out
    t = time.perf_counter()
    data = Dataset.load(task["ds"])
    load_s, load_peak = time.perf_counter() - t, status_mib("VmHWM")
    if task["what"] == "als":
        reset_peak()
        base = status_mib("VmRSS")
        t = time.perf_counter()
        model, iters = fit_als(data, 64, task["iterations"], solver=task["solver"])
        fit_s = time.perf_counter() - t
        steady = iters[1:] or iters
        pre = "als" if task["solver"] == "auto" else f"als_{task['solver']}"
        extra = {}
        if task["solver"] == "auto":
            model.save(Path(task["ds"]) / "als-model")
            extra["als_solver"] = model.solver_
        return {
            "load_s": load_s,
            "load_peak_mib": load_peak,
            f"{pre}_fit_s": fit_s,
            f"{pre}_first_iter_s": iters[0],
            f"{pre}_iter_s": sum(steady) / len(steady),
            f"{pre}_iters": iters,
            f"{pre}_peak_mib": status_mib("VmHWM"),
            f"{pre}_increase_mib": status_mib("VmHWM") - base,
            **extra,
        }
    from lmrec.models.persist import load_model

    model = load_model(Path(task["ds"]) / "als-model")
    uv, iv = model.user_factors_, model.item_factors_
    rng = np.random.default_rng(2026)
    if task["what"] == "evaluate":
        from lmrec.eval.protocol import evaluate

        users = np.sort(rng.choice(data.n_users, min(10_000, data.n_users), replace=False))
        rows = np.flatnonzero(np.isin(data.column("user_idx"), users))
        test = data.subset(rows[rng.random(len(rows)) < 0.2])
        reset_peak()
        t = time.perf_counter()
        res = evaluate(model, test, show_progress=False)
        return {
            "eval_s": time.perf_counter() - t,
            "eval_users": res.n_users,
            "eval_peak_mib": status_mib("VmHWM"),
        }
    from lmrec.retrieval import ExactIndex, FaissIndex

    users = np.sort(rng.choice(data.n_users, min(task["n_users"], data.n_users), replace=False))
    seen = data.matrix[users]
    out = {}
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
    """Run one task in a fresh process under the shared timing lock."""
    cmd = [sys.executable, __file__, "--worker", json.dumps(task)]
    proc = subprocess.run(
        ["flock", os.environ.get("LMREC_TIMING_LOCK", LOCK), *cmd],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"worker {task['what']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best_of(task: dict, repeats: int, key: str) -> dict:
    """The run with the smallest ``key`` among ``repeats`` fresh-process runs."""
    runs = [run_worker(task if i == 0 else {**task, "save": False}) for i in range(repeats)]
    return min(runs, key=lambda r: r[key])


def exponent(ns: list[float], ys: list[float]) -> float:
    """Slope of log(y) against log(n) by least squares (nan with fewer than 2 points)."""
    if len(ns) < 2:
        return float("nan")
    lx = [math.log(n) for n in ns]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx
    )


COLUMNS = [
    ("Interactions", lambda r: f"{r['n']:,}"),
    ("Users x items", lambda r: f"{r['users']:,} x {r['items']:,}"),
    ("Synth write (s)", lambda r: f"{r['synth_s']:.1f}" if "synth_s" in r else "(reused)"),
    ("Ingest (s)", lambda r: f"{r['ingest_s']:.1f}"),
    ("Ingest peak RSS increase (MiB)", lambda r: f"{r['ingest_peak_mib']:.0f}"),
    ("Final CSR (MiB)", lambda r: f"{r['csr_mib']:.0f}"),
    ("**Ingest peak / CSR**", lambda r: f"**{r['ingest_ratio']:.2f}**"),
    ("Ingest with timestamps (s)", lambda r: f"{r['ingest_ts_s']:.1f}"),
    ("Ingest with timestamps peak increase (MiB)", lambda r: f"{r['ingest_ts_peak_mib']:.0f}"),
    ("Ingest with timestamps peak / CSR", lambda r: f"{r['ingest_ts_ratio']:.2f}"),
    ("ALS solver (auto)", lambda r: r["als_solver"]),
    ("ALS fit, 3 iterations incl. setup (s)", lambda r: f"{r['als_fit_s']:.1f}"),
    ("**ALS s / iteration, steady (64 factors)**", lambda r: f"**{r['als_iter_s']:.2f}**"),
    ("ALS fit peak RSS (MiB)", lambda r: f"{r['als_peak_mib']:.0f}"),
    ("ALS s / iteration, implicit's CG (reference)", lambda r: f"{r['als_implicit_iter_s']:.2f}"),
    ("ALS fit peak RSS, implicit's CG (MiB)", lambda r: f"{r['als_implicit_peak_mib']:.0f}"),
    ("Evaluation, 10k users full ranking (s)", lambda r: f"{r['eval_s']:.1f}"),
    ("Exact top-20 users/s", lambda r: f"{r['exact_users_per_s']:,.0f}"),
    ("HNSW top-20 users/s", lambda r: f"{r['hnsw_users_per_s']:,.0f}"),
    ("HNSW build (s)", lambda r: f"{r['hnsw_build_s']:.1f}"),
    ("HNSW recall@20 vs exact", lambda r: f"{r['hnsw_recall']:.4f}"),
    ("Recommend-all exact (s, extrapolated)", lambda r: f"{r['exact_all_s']:,.0f}"),
    ("Recommend-all HNSW incl. build (s, extrap.)", lambda r: f"{r['hnsw_all_s']:,.0f}"),
]
SERIES = {
    "ingest time": "ingest_s",
    "ingest peak RSS": "ingest_peak_mib",
    "ingest time with timestamps": "ingest_ts_s",
    "ALS time / iteration (steady)": "als_iter_s",
    "ALS peak RSS": "als_peak_mib",
    "ALS time / iteration, implicit's CG": "als_implicit_iter_s",
    "evaluation (10k users)": "eval_s",
    "exact recommend-all": "exact_all_s",
    "HNSW recommend-all": "hnsw_all_s",
}


def report(results: dict, argv: list[str], n_rec_users: int) -> None:
    """Write scaling.md / scaling.json / scaling.png from the per-size results."""
    sizes = list(results)
    ns = [results[s]["n"] for s in sizes]
    lines = [
        "# Scaling: ingest, ALS, evaluation and recommendation vs data size",
        "",
        f"- Command: `{' '.join(['python benchmarks/scaling.py', *argv])}`",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other helpers' "
        f"jobs; timed workers hold `{LOCK}`), Python {platform.python_version()}. "
        "Each measure in a fresh process; best of 3 runs at 1M, 2 at 10M, 1 at 100M.",
        "- Growth: users = N/50 (fixed mean activity 50), items ~ 16 * sqrt(N).",
        f"- Recommend: {n_rec_users:,} random users, k=20, seen items excluded; "
        "all-user time extrapolated from them.",
        "",
        "| Measure | " + " | ".join(sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for label, fmt in COLUMNS:
        cells = []
        for s in sizes:
            try:
                cells.append(fmt(results[s]))
            except KeyError:
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Growth exponents b (time or memory ~ N^b, least squares in log-log):", ""]
    for label, key in SERIES.items():
        have = [s for s in sizes if key in results[s]]
        b = exponent([results[s]["n"] for s in have], [results[s][key] for s in have])
        lines.append(f"- {label}: b = {b:.2f} ({', '.join(have)})")
    lines += ["", "![log-log](scaling.png)"]
    (RESULTS / "scaling.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "scaling.json").write_text(json.dumps(results, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, key in (
        ("ingest", "ingest_s"),
        ("ALS / iteration", "als_iter_s"),
        ("ALS / iteration, implicit only", "als_implicit_iter_s"),
        ("evaluation 10k users", "eval_s"),
        ("exact recommend-all", "exact_all_s"),
        ("HNSW recommend-all", "hnsw_all_s"),
    ):
        have = [s for s in sizes if key in results[s]]
        a1.loglog(
            [results[s]["n"] for s in have], [results[s][key] for s in have], "o-", label=label
        )
    a1.set(xlabel="interactions", ylabel="seconds", title="time")
    a1.legend()
    for label, key in (
        ("ingest peak increase", "ingest_peak_mib"),
        ("ALS peak", "als_peak_mib"),
        ("final CSR", "csr_mib"),
    ):
        have = [s for s in sizes if key in results[s]]
        a2.loglog(
            [results[s]["n"] for s in have], [results[s][key] for s in have], "o-", label=label
        )
    a2.set(xlabel="interactions", ylabel="MiB", title="memory")
    a2.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "scaling.png", dpi=100)
    plt.close(fig)
    print((RESULTS / "scaling.md").read_text())
    del ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1M,10M,100M")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--n-rec-users", type=int, default=5_000)
    ap.add_argument("--root", default="/tmp/scale", help="where synthetic data is kept")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="add the sizes run to those already in results/scaling.json",
    )
    ap.add_argument(
        "--partial",
        help="write this run's results to this JSON file only "
        "(no report), to merge later with --report-only --inputs",
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from --inputs (default results/scaling.json)",
    )
    ap.add_argument("--inputs", nargs="+", help="JSON result files merged by --report-only")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.report_only:
        merged: dict = {}
        for path in args.inputs or [RESULTS / "scaling.json"]:
            merged.update(json.loads(Path(path).read_text()))
        merged = dict(sorted(merged.items(), key=lambda kv: kv[1]["n"]))
        report(merged, sys.argv[1:], args.n_rec_users)
        return
    results = json.loads((RESULTS / "scaling.json").read_text()) if args.merge else {}
    for size in args.sizes.split(","):
        shape = SHAPES[size]
        d = str(Path(args.root) / size)
        # The saved data set is reused when present (e.g. from `lmrec datasets ingest`).
        ds = str(Path(args.root) / f"{size}-ds")
        save = not (Path(ds) / "dataset.json").exists()
        r = {"n": shape[2], "users": shape[0], "items": shape[1], "data": d, "ds": ds}
        if not Path(d).exists():
            r.update(run_worker({"what": "synth", "shape": shape, "dir": d}))
        reps = REPEATS[size]
        r.update(best_of({"what": "ingest", "dir": d, "ds": ds, "save": save}, reps, "ingest_s"))
        r.update(best_of({"what": "ingest_ts", "dir": d}, reps, "ingest_ts_s"))
        for solver in ("auto", "implicit"):
            key = "als_iter_s" if solver == "auto" else f"als_{solver}_iter_s"
            r.update(
                best_of(
                    {"what": "als", "ds": ds, "iterations": args.iterations, "solver": solver},
                    reps,
                    key,
                )
            )
        r.update(best_of({"what": "evaluate", "ds": ds}, reps, "eval_s"))
        r.update(run_worker({"what": "recommend", "ds": ds, "n_users": args.n_rec_users}))
        print(size, json.dumps(r), flush=True)
        results[size] = r
        results = dict(sorted(results.items(), key=lambda kv: kv[1]["n"]))
        partial = Path(args.partial) if args.partial else RESULTS / "scaling.partial.json"
        partial.write_text(json.dumps(results, indent=2))
    if args.partial:
        return
    report(results, sys.argv[1:], args.n_rec_users)
    (RESULTS / "scaling.partial.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
