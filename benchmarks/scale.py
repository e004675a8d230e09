"""Scale benchmark: lmrec ALS against implicit ALS on a large synthetic data set.

Protocol:

- Data: :func:`lmrec.data.synthetic.synthetic_interactions` (default 200,000 users,
  50,000 items, 10,000,000 interactions, seed 2026), generated in a child process and
  written once to a temporary ``.npz``.
- Each fit runs in a fresh Python process (this script with ``--worker``), so peak RSS
  is that fit's alone. A worker loads the data into the form its library trains from
  (implicit: a users x items CSR of confidences; lmrec: a :class:`~lmrec.data.Dataset`
  without timestamps, which holds the interaction table and id maps), records its RSS, resets the
  kernel's peak-RSS counter (``/proc/self/clear_refs``), fits, and reports the fit's wall
  time (loading excluded), ``ru_maxrss`` of the whole worker, and the peak RSS of the
  fit alone (``VmHWM`` after the reset).
- Why the driver stays small: on Linux a process's ``ru_maxrss`` starts at the peak of
  the process that exec'd it (the kernel carries the old address space's high-water
  mark over ``exec``, and ``clear_refs`` does not reset that carried value). Generating
  10M interactions in the driver would make every worker report the driver's ~0.8 GiB.
  So the driver imports neither lmrec nor implicit, and data generation is a child too.
- Same model on both sides: 64 factors, 15 iterations, conjugate gradient, all cores,
  same seed. lmrec's confidence is ``1 + alpha * r``; implicit treats matrix values as
  confidences, so it is given the matrix ``1 + alpha * R`` with its own ``alpha=1``
  (the two fits produce identical factors). Both fit under
  ``threadpool_limits(1, "blas")``.
- Recommendation: top-20 for 10,000 random users with items seen in training excluded,
  ``ALS.recommend_indices`` against implicit's ``model.recommend(userids,
  user_items[userids], N=20, filter_already_liked_items=True)``, in the same workers.
- The libraries alternate (implicit, lmrec, then lmrec, implicit, ...) over
  ``--repeats`` rounds; the table reports medians.

Run ``python benchmarks/scale.py`` (several minutes on 2 cores) or ``--quick`` (1M
interactions) for a smoke test. Results go to ``benchmarks/results/scale.md``
(``scale-quick.md`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
LIBS = ("implicit", "lmrec")


def _mib_status(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB, if available."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _maxrss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)


def _reset_peak() -> bool:
    """Reset the peak-RSS counter to the current RSS (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _rec_users(args: argparse.Namespace) -> np.ndarray:
    """The users whose top-20 lists are timed (the same in every worker)."""
    rng = np.random.default_rng(args.seed)
    return np.sort(rng.choice(args.users, args.rec_users, replace=False))


# ---------------------------------------------------------------------- worker
def worker(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    raw = np.load(args.data)
    n_users, n_items = int(raw["n_users"]), int(raw["n_items"])
    if args.worker == "implicit":
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares

        user_items = sp.csr_matrix(
            (1.0 + args.alpha * raw["weight"], (raw["user_idx"], raw["item_idx"])),
            shape=(n_users, n_items),
            dtype=np.float32,
        )
    else:
        import pandas as pd

        from lmrec.data.dataset import Dataset
        from lmrec.data.idmap import IdMap
        from lmrec.models.als import ALS

        # No timestamps: ALS does not use them and implicit's worker does not hold them.
        frame = pd.DataFrame({c: raw[c] for c in ("user_idx", "item_idx", "weight")})
        dataset = Dataset(
            frame,
            IdMap(np.array([f"u{u}" for u in range(n_users)], dtype=object)),
            IdMap(np.array([f"i{i}" for i in range(n_items)], dtype=object)),
        )
        del frame
    del raw
    gc.collect()
    after_load = _mib_status("VmRSS")
    reset = _reset_peak()

    t0 = time.perf_counter()
    if args.worker == "implicit":
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=args.factors,
                regularization=args.regularization,
                alpha=1.0,
                iterations=args.iterations,
                use_cg=True,
                calculate_training_loss=False,
                num_threads=args.threads,
                random_state=args.seed,
            )
            model.fit(user_items, show_progress=False)
    else:
        model = ALS(
            factors=args.factors,
            l2=args.regularization,
            alpha=args.alpha,
            iterations=args.iterations,
            n_threads=args.threads,
            seed=args.seed,
        ).fit(dataset)
    fit_s = time.perf_counter() - t0
    # VmHWM belongs to this address space and was reset above; ru_maxrss is the whole
    # worker's peak (loading included).
    fit_peak = _mib_status("VmHWM") if reset else None
    peak = _maxrss_mib()

    users = _rec_users(args)
    t0 = time.perf_counter()
    if args.worker == "implicit":
        ids, _ = model.recommend(users, user_items[users], N=20, filter_already_liked_items=True)
    else:
        ids, _ = model.recommend_indices(users, 20)
    rec_s = time.perf_counter() - t0
    np.save(Path(args.result).with_suffix(".npy"), np.asarray(ids, dtype=np.int64))
    result = {
        "lib": args.worker,
        "fit_s": fit_s,
        "recommend_s": rec_s,
        "rss_after_load_mib": after_load,
        "fit_peak_mib": fit_peak,
        "peak_mib": peak,
        "peak_reset": reset,
    }
    Path(args.result).write_text(json.dumps(result))
    return 0


def generate(args: argparse.Namespace) -> int:
    """Write the synthetic interactions to ``args.data`` (run as a child process)."""
    from lmrec.data.synthetic import synthetic_interactions

    t0 = time.perf_counter()
    data = synthetic_interactions(args.users, args.items, args.interactions, seed=args.seed)
    gen_s = time.perf_counter() - t0
    np.savez(
        args.data,
        n_users=data.n_users,
        n_items=data.n_items,
        gen_s=gen_s,
        **{c: data.column(c) for c in ("user_idx", "item_idx", "weight", "timestamp")},
    )
    return 0


# ---------------------------------------------------------------------- driver
def _run_worker(lib: str, data: Path, tmp: Path, run: int, args: argparse.Namespace) -> dict:
    result = tmp / f"{lib}-{run}.json"
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        lib,
        "--data",
        str(data),
        "--result",
        str(result),
        "--users",
        str(args.users),
        "--seed",
        str(args.seed),
        "--factors",
        str(args.factors),
        "--iterations",
        str(args.iterations),
        "--regularization",
        str(args.regularization),
        "--alpha",
        str(args.alpha),
        "--threads",
        str(args.threads),
        "--rec-users",
        str(args.rec_users),
    ]
    subprocess.run(cmd, check=True)
    out = json.loads(result.read_text())
    out["ids"] = np.load(result.with_suffix(".npy"))
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _table(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace, meta: dict) -> str:
    def med(lib: str, key: str) -> float | None:
        vals = [r[key] for r in results[lib] if r.get(key) is not None]
        return float(np.median(vals)) if vals else None

    rows = [
        ("Fit wall time (s)", "fit_s", 2),
        ("Peak RSS of the worker process, ru_maxrss (MiB)", "peak_mib", 0),
        ("RSS after loading the data (MiB)", "rss_after_load_mib", 0),
        ("Peak RSS during the fit, VmHWM after reset (MiB)", "fit_peak_mib", 0),
        ("Fit RSS increase: peak during fit - after load (MiB)", "fit_increase_mib", 0),
        (f"Top-20 for {args.rec_users:,} users (s)", "recommend_s", 3),
    ]
    for lib in LIBS:
        for r in results[lib]:
            if r["fit_peak_mib"] is not None and r["rss_after_load_mib"] is not None:
                r["fit_increase_mib"] = r["fit_peak_mib"] - r["rss_after_load_mib"]
    lines = [
        "# Scale benchmark: lmrec ALS vs implicit ALS",
        "",
        f"- Data: `synthetic_interactions({args.users:,}, {args.items:,}, "
        f"{args.interactions:,}, seed={args.seed})`: {meta['n_interactions']:,} interactions "
        f"(generated in {meta['gen_s']:.1f} s).",
        f"- Model: {args.factors} factors, {args.iterations} iterations, regularization "
        f"{args.regularization}, alpha {args.alpha} (confidence 1 + alpha * r; implicit is "
        "given that confidence matrix with its own alpha=1), conjugate gradient, "
        f"num_threads={args.threads} (0 = all cores), seed {args.seed}.",
        f"- Each fit in a fresh process; {args.repeats} round(s), libraries alternating; "
        "medians shown. Fit time excludes loading the data.",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, implicit {meta['implicit']}, numpy {np.__version__}.",
        f"- Command: `{meta['command']}`",
        "",
        "| Measure | implicit | lmrec | lmrec / implicit |",
        "|---|---:|---:|---:|",
    ]
    for label, key, digits in rows:
        a, b = med("implicit", key), med("lmrec", key)
        ratio = f"{b / a:.2f}" if a and b is not None else "n/a"
        lines.append(f"| {label} | {_fmt(a, digits)} | {_fmt(b, digits)} | {ratio} |")
    per_run = ", ".join(
        f"{lib} " + "/".join(f"{r['fit_s']:.1f}" for r in results[lib]) for lib in LIBS
    )
    lines += [
        "",
        f"- Fit seconds per run: {per_run}.",
        f"- Top-20 sets equal between the two libraries for {meta['same_lists']:.1%} of the "
        "timed users who have interactions (users without any have all-zero scores, so "
        "their lists are arbitrary ties).",
        "- lmrec's RSS includes its Dataset (item and weight columns, which the CSR matrix "
        "shares, row pointers, the 250k string ids and their maps) and, during the fit, the "
        "confidence values (implicit gets the data set's own index arrays, not a copy); "
        "implicit's worker holds only the CSR matrix of confidences.",
    ]
    if not all(r["peak_reset"] for lib in LIBS for r in results[lib]):
        lines.append("- The peak-RSS counter could not be reset here; fit peaks include loading.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--interactions", type=int, default=10_000_000)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--regularization", type=float, default=0.01)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=0, help="fit threads, 0 = all cores")
    p.add_argument("--rec-users", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=1, help="rounds of (implicit, lmrec) fits")
    p.add_argument("--quick", action="store_true", help="1M interactions, for a smoke run")
    p.add_argument("--out", type=Path, default=None, help="markdown output file")
    p.add_argument("--worker", choices=LIBS, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.generate:
        return generate(args)

    if args.quick:
        args.interactions = 1_000_000
    out = args.out or RESULTS / ("scale-quick.md" if args.quick else "scale.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.rec_users > args.users:
        p.error(f"--rec-users ({args.rec_users}) must be at most --users ({args.users}).")
    if args.repeats < 1:
        p.error("--repeats must be >= 1.")

    from importlib.metadata import version

    meta = {
        "implicit": version("implicit"),
        "command": shlex.join(
            ["python", "benchmarks/scale.py", *(sys.argv[1:] if argv is None else argv)]
        ),
    }
    results: dict[str, list[dict[str, Any]]] = {lib: [] for lib in LIBS}
    with tempfile.TemporaryDirectory(prefix="lmrec-scale-") as tmp_name:
        tmp = Path(tmp_name)
        npz = tmp / "data.npz"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--generate",
                "--data",
                str(npz),
                "--users",
                str(args.users),
                "--items",
                str(args.items),
                "--interactions",
                str(args.interactions),
                "--seed",
                str(args.seed),
            ],
            check=True,
        )
        with np.load(npz) as raw:
            meta["n_interactions"] = len(raw["user_idx"])
            meta["gen_s"] = float(raw["gen_s"])
            has_history = np.bincount(raw["user_idx"], minlength=args.users) > 0
        print(f"generated {meta['n_interactions']:,} interactions in {meta['gen_s']:.1f} s")
        for run in range(args.repeats):
            order = LIBS if run % 2 == 0 else LIBS[::-1]
            for lib in order:
                r = _run_worker(lib, npz, tmp, run, args)
                results[lib].append(r)
                print(
                    f"[{run}] {lib:8s} fit {r['fit_s']:7.2f} s  peak {r['peak_mib']:7.0f} MiB  "
                    f"after load {_fmt(r['rss_after_load_mib'], 0)} MiB  "
                    f"top-20 {r['recommend_s']:.3f} s",
                    flush=True,
                )
    # Users without interactions have all-zero factors and scores, so any 20 items are a
    # correct answer for them; compare the lists of the others.
    users = _rec_users(args)
    a, b = results["implicit"][0]["ids"], results["lmrec"][0]["ids"]
    same = [set(x) == set(y) for x, y, u in zip(a, b, users, strict=True) if has_history[u]]
    meta["same_lists"] = float(np.mean(same))
    md = _table(results, args, meta)
    print()
    print(md)
    out.write_text(md)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
