"""Threads on a shared machine (issue 18.1): quiet vs beside a competing CPU load.

Protocol. Three workloads, each run by lmrec and by the plain library a user would
otherwise call, every run in a fresh child process whose environment has *no*
``OMP_WAIT_POLICY``, ``OMP_NUM_THREADS``, ``NUMBA_NUM_THREADS`` or
``LMREC_NUM_THREADS`` (the user chose nothing), so each library runs with the settings
it picks itself:

- ``encode``: the 1,682 MovieLens-100K item texts through all-MiniLM-L6-v2; lmrec
  ``TextEncoder(use_cache=False).encode`` vs plain ``SentenceTransformer.encode``
  (batch 64 both);
- ``bpr``: BPR on MovieLens-100K, 64 factors, ``--bpr-epochs`` epochs; lmrec ``bpr``
  (torch) vs implicit's ``BayesianPersonalizedRanking`` (its OpenMP Cython loop);
- ``als``: implicit-feedback ALS, 64 factors, 15 iterations, on a synthetic 20,000 x
  10,000 matrix with 1,000,000 interactions (power-law item popularity, seed 2026);
  lmrec ``als`` (its default numba solver) vs implicit's ``AlternatingLeastSquares``.

Each child loads and warms up (model load, one small batch / a 1-iteration fit, so JIT
compilation is not timed), then times the workload ``--repeats`` times and reports the
median. *Quiet*: nothing else of this benchmark runs. *Loaded*: a busy process (a
Python spin loop) pinned to CPU 0 runs for the whole child. Quiet and loaded runs
alternate per workload and library. Reported: seconds and the ratio loaded / quiet
for each library, and lmrec's quiet time as a ratio of the plain library's quiet time.
Target: lmrec loaded <= 1.3x lmrec quiet.

The machine's own floor is measured in the same run: perfectly divisible work (64
equal pure-Python tasks pulled one at a time by one worker process per usable CPU), quiet
and loaded alike. No job that needs every core can slow down less than this reference.

The machine is shared: run under ``flock /tmp/lmrec-bench.lock`` so no other benchmark
overlaps, and read the ratios, which come from the same run.

Run ``flock /tmp/lmrec-bench.lock python benchmarks/threads.py``; writes
``benchmarks/results/threads.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "threads.md"
USER_VARS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "LMREC_NUM_THREADS")
WORKLOADS = ("encode", "bpr", "als")
LIBRARIES = ("lmrec", "plain")


# --------------------------------------------------------------------- child side
def _texts() -> list[str]:
    from lmrec.data.sources import load_builtin
    from lmrec.text.templates import item_texts

    return item_texts(load_builtin("ml-100k"))


def _synthetic_csr(n_users: int = 20_000, n_items: int = 10_000, nnz: int = 1_000_000):
    import scipy.sparse as sp

    rng = np.random.default_rng(2026)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=nnz, p=pop / pop.sum())
    users = rng.integers(0, n_users, size=nnz)
    m = sp.csr_matrix((np.ones(nnz, np.float32), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _prepare(workload: str, library: str, bpr_epochs: int):
    """Load and warm up; returns the function to time."""
    if workload == "encode":
        texts = _texts()
        if library == "lmrec":
            from lmrec.text.encoder import TextEncoder

            enc = TextEncoder(use_cache=False, show_progress=False)
            enc.encode(texts[:64])
            return lambda: enc.encode(texts)
        from sentence_transformers import SentenceTransformer

        from lmrec.text.encoder import default_model_path

        model = SentenceTransformer(default_model_path(), device="cpu")
        model.encode(texts[:64], batch_size=64)
        return lambda: model.encode(texts, batch_size=64)
    if workload == "bpr":
        from lmrec.data.sources import load_builtin

        data = load_builtin("ml-100k")
        if library == "lmrec":
            from lmrec.models import create_model

            params = {"factors": 64, "seed": 0}
            create_model("bpr", {**params, "epochs": 1}).fit(data)
            return lambda: create_model("bpr", {**params, "epochs": bpr_epochs}).fit(data)
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        m = data._native_matrix().tocsr().astype(np.float32)
        BayesianPersonalizedRanking(factors=64, iterations=1, random_state=0).fit(
            m, show_progress=False
        )
        bpr = lambda: BayesianPersonalizedRanking(  # noqa: E731
            factors=64, iterations=bpr_epochs, random_state=0
        ).fit(m, show_progress=False)
        return bpr
    conf = _synthetic_csr()
    if library == "lmrec":
        import pandas as pd

        from lmrec.data import Dataset
        from lmrec.models import create_model

        coo = conf.tocoo()
        data = Dataset.from_frame(pd.DataFrame({"user": coo.row, "item": coo.col}))
        create_model("als", {"factors": 64, "iterations": 1}).fit(data)
        return lambda: create_model("als", {"factors": 64, "iterations": 15}).fit(data)
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    def fit(iterations: int = 15) -> None:
        with threadpool_limits(1, "blas"):  # implicit's own advice
            AlternatingLeastSquares(factors=64, iterations=iterations, random_state=0).fit(
                conf, show_progress=False
            )

    fit(1)
    return fit


def _spin_task(n: int) -> int:
    """One unit of the divisible reference: pure interpreter work, no memory traffic."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def _divisible(tasks: int = 64, size: int = 1_000_000):
    """The floor reference: a process pool (one worker per usable CPU) pulling equal tasks
    one at a time, so whichever worker has a free core takes the next one."""
    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(len(os.sched_getaffinity(0)))
    pool.map(_spin_task, [1000] * tasks, chunksize=1)  # workers started before timing
    return lambda: pool.map(_spin_task, [size] * tasks, chunksize=1)


def child(workload: str, library: str, repeats: int, bpr_epochs: int) -> None:
    """Run one (workload, library) measurement and print its JSON report."""
    run = _divisible() if workload == "divisible" else _prepare(workload, library, bpr_epochs)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    torch = sys.modules.get("torch")
    print(
        json.dumps(
            {
                "median": statistics.median(times),
                "times": times,
                "torch_threads": torch.get_num_threads() if torch is not None else None,
                "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            }
        )
    )


# -------------------------------------------------------------------- parent side
BUSY = "import os\nos.sched_setaffinity(0, {0})\nwhile True:\n    pass\n"


def measure(workload: str, library: str, loaded: bool, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in USER_VARS}
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if loaded else None
    try:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            workload,
            library,
            "--repeats",
            str(args.repeats),
            "--bpr-epochs",
            str(args.bpr_epochs),
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    if out.returncode != 0:
        raise RuntimeError(f"{workload}/{library} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "LIBRARY"))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="quiet/loaded alternations")
    ap.add_argument("--bpr-epochs", type=int, default=5)
    ap.add_argument(
        "--no-floor", action="store_true", help="skip the divisible-work floor reference"
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.repeats, args.bpr_epochs)
        return
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    info: dict[str, dict] = {}
    for workload in args.workloads.split(","):
        for library in LIBRARIES:
            cell = results.setdefault(workload, {}).setdefault(library, {"quiet": [], "loaded": []})
            for _ in range(args.rounds):
                for state in ("quiet", "loaded"):
                    rep = measure(workload, library, state == "loaded", args)
                    cell[state].append(rep["median"])
                    info[f"{workload}/{library}"] = rep
                    print(
                        f"{workload:7s} {library:6s} {state:6s} {rep['median']:.2f}s "
                        f"(torch threads {rep['torch_threads']}, "
                        f"OMP_WAIT_POLICY {rep['OMP_WAIT_POLICY']})",
                        flush=True,
                    )
    floor: dict[str, list[float]] = {"quiet": [], "loaded": []}
    for _ in range(0 if args.no_floor else args.rounds):
        for state in ("quiet", "loaded"):
            rep = measure("divisible", "reference", state == "loaded", args)
            floor[state].append(rep["median"])
            print(f"divisible reference {state:6s} {rep['median']:.2f}s", flush=True)
    names = {
        "encode": ("lmrec TextEncoder", "sentence-transformers"),
        "bpr": ("lmrec bpr (torch)", "implicit BPR"),
        "als": ("lmrec als (numba)", "implicit ALS"),
    }
    lines = [
        "# Threads on a shared machine: quiet vs one core taken by a busy process",
        "",
        f"`python benchmarks/threads.py {' '.join(sys.argv[1:])}`; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, the user set "
        f"no thread variable. Median of {args.repeats} timed runs per child, best child of "
        f"{args.rounds} rounds (quiet and loaded alternate). Loaded: a spin loop pinned to CPU 0.",
        "",
        "| workload | library | quiet s | loaded s | loaded / quiet | lmrec / plain (quiet) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    summary = {}
    for workload, libs in results.items():
        q_plain = min(libs["plain"]["quiet"])
        for library in LIBRARIES:
            q, ld = min(libs[library]["quiet"]), min(libs[library]["loaded"])
            summary[f"{workload}/{library}"] = {"quiet": q, "loaded": ld, "ratio": ld / q}
            rel = f"{q / q_plain:.2f}" if library == "lmrec" else "1.00"
            lines.append(
                f"| {workload} | {names[workload][library == 'plain']} | {q:.2f} | "
                f"{ld:.2f} | **{ld / q:.2f}** | {rel} |"
            )
    if floor["quiet"]:
        q, ld = min(floor["quiet"]), min(floor["loaded"])
        summary["divisible/reference"] = {"quiet": q, "loaded": ld, "ratio": ld / q}
        lines += [
            "",
            "The machine's floor, measured the same way: perfectly divisible work (64 equal "
            "pure-Python tasks pulled one at a time by one worker process per usable CPU) "
            f"took {q:.2f} s quiet and {ld:.2f} s loaded: **{ld / q:.2f}x**. No job that "
            "keeps every core busy slows down less.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"results": results, "summary": summary}, indent=1)
    )


if __name__ == "__main__":
    main()
