"""10M interactions end to end: ingest -> split -> ALS fit -> full-ranking evaluation.

Issue 7's target: the whole pipeline under 10 minutes on 2 cores. Steps, all with
lmrec's own APIs, in one fresh process, each timed with its peak RSS (``VmHWM``,
reset before the step):

1. ingest: :func:`lmrec.data.ingest.ingest` of the synthetic Parquet directory
   (``lmrec datasets synth --users 200000 --items 50000 --interactions 10000000
   --seed 2026``; written first when ``--data`` does not exist, not timed);
2. split: :func:`lmrec.data.split.random_split`, per-user 80/20, seed 2026;
3. fit: :class:`lmrec.models.als.ALS` (64 factors, ``--iterations``, default 15) on
   train, per-iteration times from implicit's callback;
4. evaluate: :func:`lmrec.eval.protocol.evaluate` (strict full ranking over all
   items, training items excluded, the default metrics) on the test rows of
   ``--eval-users`` test users sampled with seed 2026.

Run ``python benchmarks/e2e_10m.py``; writes ``benchmarks/results/e2e_10m.md``/``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from als_fit import fit_als, reset_peak, status_mib  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SHAPE = (200_000, 50_000, 10_000_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/synth10m", help="synthetic Parquet directory")
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--eval-users", type=int, default=10_000)
    args = ap.parse_args()

    import numpy as np
    import pyarrow.parquet  # noqa: F401 - imported before the memory baseline

    from lmrec.data.ingest import ingest
    from lmrec.data.split import random_split
    from lmrec.eval.protocol import evaluate

    if not Path(args.data).exists():
        from lmrec.data.synthetic import write_synthetic

        write_synthetic(args.data, *SHAPE, seed=2026)
    steps: dict[str, dict] = {}
    total = time.perf_counter()

    def step(name: str, func):  # noqa: ANN001, ANN202
        reset_peak()
        t = time.perf_counter()
        value = func()
        steps[name] = {"s": time.perf_counter() - t, "peak_rss_mib": status_mib("VmHWM")}
        print(name, json.dumps(steps[name]), flush=True)
        return value

    data = step("ingest", lambda: ingest(args.data))
    split = step("split", lambda: random_split(data, ratios=(0.8, 0.2), seed=2026))
    model, iters = step("als fit", lambda: fit_als(split.train, 64, args.iterations))
    steps["als fit"]["iter_s"] = iters

    def run_eval():  # noqa: ANN202
        test = split.test
        users = np.unique(test.column("user_idx"))
        rng = np.random.default_rng(2026)
        sample = rng.choice(users, min(args.eval_users, len(users)), replace=False)
        part = test.subset(np.isin(test.column("user_idx"), sample))
        return evaluate(model, part, show_progress=False)

    result = step("evaluate", run_eval)
    total_s = time.perf_counter() - total
    out = {
        "n": data.n_interactions,
        "users": data.n_users,
        "items": data.n_items,
        "train": split.train.n_interactions,
        "test": split.test.n_interactions,
        "eval_users": result.n_users,
        "metrics": result.summary,
        "steps": steps,
        "total_s": total_s,
        "iterations": args.iterations,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "e2e_10m.json").write_text(json.dumps(out, indent=2))
    steady = iters[1:] or iters
    lines = [
        "# 10M interactions end to end (ingest -> split -> ALS -> evaluation)",
        "",
        f"- Command: `python benchmarks/e2e_10m.py {' '.join(sys.argv[1:])}`".rstrip() + "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}; one process, steps in order.",
        f"- Data: {data.n_users:,} users x {data.n_items:,} items, {data.n_interactions:,} "
        f"interactions (`lmrec datasets synth --users {SHAPE[0]} --items {SHAPE[1]} "
        f"--interactions {SHAPE[2]} --seed 2026`).",
        f"- Split: per-user random 80/20 (seed 2026): {split.train.n_interactions:,} train, "
        f"{split.test.n_interactions:,} test rows. ALS: 64 factors, {args.iterations} "
        f"iterations. Evaluation: {result.n_users:,} sampled test users, full ranking "
        f"over all {data.n_items:,} items, training items excluded.",
        "",
        "| Step | Time (s) | Peak RSS (MiB) |",
        "|---|---:|---:|",
    ]
    for name, r in steps.items():
        lines.append(f"| {name} | {r['s']:.1f} | {r['peak_rss_mib']:,.0f} |")
    lines += [
        f"| **total** | **{total_s:.1f}** | |",
        "",
        f"ALS seconds per iteration: first {iters[0]:.2f} (includes the solver's setup: implicit's, or loading the compiled numba kernel), "
        f"steady-state mean {sum(steady) / len(steady):.2f}.",
        f"Target (< 600 s total): {'met' if total_s < 600 else 'NOT met'}.",
        "",
        "Metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in result.summary.items() if "@10" in k),
    ]
    (RESULTS / "e2e_10m.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
