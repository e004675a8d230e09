"""Reliability plan check 4: seeded mutations of saved model directories, every registered model.

Protocol: each registered model is fitted on the checkerboard data set with its small
settings (:mod:`lmrec.testing.zoo`) and saved; then ``--per-model`` times a copy of the
directory is mutated once (:mod:`lmrec.testing.mutations`: flipped bits, truncation,
appended garbage, swapped, missing and linked files, and re-signed edits of arrays,
JSON and id tables) and loaded. Each model's mutations run in a worker process, so a
segmentation fault is counted instead of ending the run. Pass: 0 tracebacks, 0 silently
wrong outputs, 0 crashes, every refusal within 1 s.

    python benchmarks/model_mutations.py                  # 100 per model, every model
    python benchmarks/model_mutations.py --per-model 20 --models ease,als

Writes benchmarks/results/model_mutations.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

RESULTS = Path(__file__).parent / "results" / "model_mutations.md"


def run_model(name: str, n: int, seed: int) -> list[tuple[str, str, float, str]]:
    """Fit, save and mutate ``name`` ``n`` times; the verdicts as plain tuples."""
    import warnings

    import numpy as np

    from lmrec.testing.mutations import check_loads, mutate
    from lmrec.testing.zoo import small_model, training_data

    warnings.simplefilter("ignore")
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    with tempfile.TemporaryDirectory() as tmp:
        base = small_model(name).fit(training_data(name)).save(Path(tmp) / "base")
        out = []
        for i in range(n):
            work = Path(tmp) / f"m{i}"
            shutil.copytree(base, work)
            v = check_loads(work, mutate(work, rng))
            out.append((v.mutation, v.outcome, v.seconds, v.detail))
            shutil.rmtree(work, ignore_errors=True)
            for f in Path(tmp).glob(".outside-*"):
                f.unlink()
    return out


def main() -> None:
    from lmrec.models.registry import builtin_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-model", type=int, default=100)
    ap.add_argument("--models", help="comma-separated names (default: every built-in model)")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    names = args.models.split(",") if args.models else builtin_models()
    rows, failures = [], []
    for name in names:
        try:
            with ProcessPoolExecutor(1) as pool:
                verdicts = pool.submit(run_model, name, args.per_model, args.seed).result()
            crashed = 0
        except BrokenProcessPool:
            verdicts, crashed = [], 1
        counts = {
            k: sum(v[1] == k for v in verdicts) for k in ("refused", "loaded", "traceback", "wrong")
        }
        slowest = max((v[2] for v in verdicts if v[1] == "refused"), default=0.0)
        rows.append((name, len(verdicts), *counts.values(), crashed, slowest))
        failures += [(name, v) for v in verdicts if v[1] in ("traceback", "wrong")]
        print(name, counts, f"crashed={crashed}", f"slowest refusal {slowest:.3f}s", flush=True)
    total = [sum(r[i] for r in rows) for i in range(1, 7)]
    lines = [
        "# Model-file mutations (plan check 4)",
        "",
        f"`python benchmarks/model_mutations.py --per-model {args.per_model} --seed {args.seed}`",
        "",
        "| model | mutations | refused | loaded, sane | traceback | wrong | crashed | slowest refusal (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]:.3f} |"
            for r in rows
        ),
        f"| **all** | {total[0]} | {total[1]} | {total[2]} | {total[3]} | {total[4]} | {total[5]} | "
        f"{max(r[7] for r in rows):.3f} |",
        "",
    ]
    if failures:
        lines += ["## Failures", ""] + [f"- {n}: {v[0]} -> {v[1]} {v[3]}" for n, v in failures]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
