"""Loading at the speed of Arrow (issue 18.2): CSV -> Dataset, and ``lmrec train --model als``.

Protocol (one run, references measured side by side, best of ``--repeats``):

1. A CSV of ``--rows`` (default 2,000,000) distinct (user, item) pairs with integer
   ids (about 120k users and 40k items, power-law popularity), a rating and an epoch
   timestamp, seeded.
2. **CSV -> Dataset.** lmrec: ``load_dataset(path)`` (ids, weights 1). Reference:
   ``pyarrow.csv.read_csv(path)`` (multithreaded, types inferred) plus
   ``dictionary_encode()`` of both id columns -- reading plus coding, the least any
   loader does. Target: lmrec <= 1.5x the reference.
3. **End to end.** lmrec: ``lmrec train --data CSV --model als --out DIR`` as a child
   process (interpreter start, imports, reading, ALS fit, saving). Reference, also a
   child process: pandas ``read_csv`` (user, item columns), category codes, a binary
   CSR matrix, and ``implicit.als.AlternatingLeastSquares`` with lmrec's defaults
   (64 factors, regularization 0.01, alpha 1, 15 iterations, seed 0) fitted under
   ``threadpool_limits(1, "blas")`` as implicit asks. Target: lmrec <= 0.8x.

Both sides use every core (2 here) and ``OMP_WAIT_POLICY=PASSIVE``. The machine is
shared, so only the ratios measured in the same run are reported. Writes
``benchmarks/results/loading.json`` and ``.md``.

Run: ``flock /tmp/lmrec-bench.lock python benchmarks/loading.py``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"

REFERENCE_FIT = textwrap.dedent(
    """
    import sys, time
    t0 = time.perf_counter()
    import numpy as np, pandas as pd, scipy.sparse as sp
    from threadpoolctl import threadpool_limits
    from implicit.als import AlternatingLeastSquares
    frame = pd.read_csv(sys.argv[1], usecols=["user", "item"])
    users = frame["user"].astype("category").cat.codes.to_numpy()
    items = frame["item"].astype("category").cat.codes.to_numpy()
    matrix = sp.csr_matrix((np.ones(len(frame), np.float32), (users, items)))
    t1 = time.perf_counter()
    model = AlternatingLeastSquares(factors=64, regularization=0.01, alpha=1.0, iterations=15,
                                    random_state=0, use_gpu=False)
    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)
    print(t1 - t0, time.perf_counter() - t1)
    """
)


def make_csv(path: Path, rows: int, seed: int) -> None:
    """Distinct (user, item) pairs with integer ids, a rating and a timestamp."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 16, 10), max(rows // 50, 10)
    draw = int(rows * 1.4)
    users = rng.integers(0, n_users, draw) * 7 + 1000  # sparse, not starting at 0
    items = (rng.zipf(1.15, draw) - 1) % n_items + 1
    frame = pd.DataFrame({"user": users, "item": items}).drop_duplicates().iloc[:rows]
    frame["rating"] = rng.integers(1, 6, len(frame))
    frame["timestamp"] = 875_000_000 + rng.integers(0, 200_000_000, len(frame))
    frame.sample(frac=1.0, random_state=seed).to_csv(path, index=False)


def best(fn, repeats: int) -> tuple[float, object]:
    """Fastest wall time of ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def load_figures(path: Path, repeats: int) -> dict[str, float]:
    """CSV -> Dataset (lmrec) against pyarrow's read plus dictionary encoding."""
    import pyarrow.csv as pcsv

    from lmrec.data import load_dataset

    def reference() -> object:
        table = pcsv.read_csv(path)
        return [table.column(c).dictionary_encode() for c in ("user", "item")]

    def lmrec_load() -> object:
        return load_dataset(path)[0]

    lmrec_load()  # first call loads modules (pyarrow compute kernels, pandas)
    ref, _ = best(reference, repeats)
    ours, ds = best(lmrec_load, repeats)
    return {
        "pyarrow_read_dict_s": ref,
        "lmrec_load_dataset_s": ours,
        "ratio": ours / ref,
        "n_interactions": ds.n_interactions,
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "id_kind": ds.user_ids.kind,
    }


def train_figures(path: Path, repeats: int, workdir: Path) -> dict[str, float]:
    """``lmrec train --model als`` against pandas + category codes + implicit, as processes."""
    script = workdir / "reference_fit.py"
    script.write_text(REFERENCE_FIT)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}

    def reference() -> tuple[float, float]:
        out = subprocess.run(
            [sys.executable, str(script), str(path)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        load, fit = (float(x) for x in out.stdout.split())
        return load, fit

    def lmrec_train() -> str:
        out = workdir / "als-model"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lmrec",
                "train",
                "--data",
                str(path),
                "--model",
                "als",
                "--out",
                str(out),
                "--force",
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        return proc.stderr

    ref, (ref_load, ref_fit) = best(reference, repeats)
    ours, log = best(lmrec_train, repeats)
    trained = next((ln for ln in log.splitlines() if ln.startswith("trained")), "")
    return {
        "reference_process_s": ref,
        "reference_load_s": ref_load,
        "reference_fit_s": ref_fit,
        "lmrec_train_process_s": ours,
        "ratio": ours / ref,
        "lmrec_log": trained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-train", action="store_true", help="only CSV -> Dataset")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "interactions.csv"
        make_csv(path, args.rows, args.seed)
        out: dict[str, object] = {
            "rows": args.rows,
            "repeats": args.repeats,
            "csv_mib": path.stat().st_size / 2**20,
        }
        out["load"] = load_figures(path, args.repeats)
        print(
            f"CSV -> Dataset: lmrec {out['load']['lmrec_load_dataset_s']:.3f}s, pyarrow read + "
            f"dictionary encode {out['load']['pyarrow_read_dict_s']:.3f}s, "
            f"ratio {out['load']['ratio']:.2f} (target <= 1.5)"
        )
        if not args.skip_train:
            out["train"] = train_figures(path, args.repeats, work)
            t = out["train"]
            print(
                f"train als end to end: lmrec {t['lmrec_train_process_s']:.2f}s, pandas + codes + "
                f"implicit {t['reference_process_s']:.2f}s (load {t['reference_load_s']:.2f}s, "
                f"fit {t['reference_fit_s']:.2f}s), ratio {t['ratio']:.2f} (target <= 0.8)"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loading.json").write_text(json.dumps(out, indent=2))
    lines = [
        "# Loading (issue 18.2)",
        "",
        f"`python benchmarks/loading.py` ({args.rows:,} rows, best of {args.repeats})",
        "",
        "| step | lmrec s | reference s | ratio | target |",
        "|---|---|---|---|---|",
        f"| CSV -> Dataset | {out['load']['lmrec_load_dataset_s']:.3f} | "
        f"{out['load']['pyarrow_read_dict_s']:.3f} (pyarrow read + dictionary encode) | "
        f"{out['load']['ratio']:.2f} | <= 1.5 |",
    ]
    if "train" in out:
        t = out["train"]
        lines.append(
            f"| `lmrec train --model als` (process) | {t['lmrec_train_process_s']:.2f} | "
            f"{t['reference_process_s']:.2f} (pandas + codes + implicit) | "
            f"{t['ratio']:.2f} | <= 0.8 |"
        )
    (RESULTS / "loading.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
