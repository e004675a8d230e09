"""Data-parallel BPR with torch.distributed: parity, fault tolerance and scaling.

Protocol:

- Data: MovieLens-100K (``load_builtin("ml-100k")``), per-user random 80/20 split with
  ``--seed`` (default 2026); every rating is a positive. NDCG@10 on the test part under
  lmrec's full-ranking protocol (training items excluded).
- Parity: default BPR (64 factors, 20 epochs, global batch 4096, Adam lr 0.01), one
  intra-op thread per rank, model seeds 0, 1, 2. One rank is a plain ``BPR.fit``; two
  ranks are two processes in one gloo group started by
  :func:`lmrec.train.distributed.run_local` (what ``torchrun --nproc-per-node 2`` sets
  up), each training on half of every global batch. Negatives are drawn per global
  batch, so both runs compute the same steps up to float summation order; the table
  also gives the largest absolute difference of the item factors.
- Fault tolerance: ``torchrun --max-restarts 1 --nproc-per-node 2 -m lmrec train ...
  --distributed --checkpoint-dir DIR --checkpoint-every 5`` on a CSV of the training
  part, once uninterrupted and once with local rank 1 killed by ``SIGKILL`` as soon as
  the checkpoint reports epoch ``--kill-epoch`` (default 8), batch >= 1 (mid-epoch). torchrun
  tears the group down and restarts it; both ranks resume from the last checkpoint
  (at most 5 steps old). Same model seed 0.
- Scaling: BPR (64 factors, batch 4096, Adam) on the synthetic 10M set of
  ``lmrec synth --users 200000 --items 50000 --interactions 10000000 --out DIR``
  (``--synth DIR``, default ``/tmp/syn10m``; skipped when missing), 1 rank vs 2 ranks,
  one intra-op thread per rank. A full epoch is 2,442 steps (~17 min for one rank on
  this machine), so throughput is timed over ``--steps`` steps (default 40) after 5
  warm-up steps, by counting optimizer steps inside each rank; examples/s = steps x
  4096 / seconds and efficiency = 2-rank throughput / (2 x 1-rank throughput).

Run ``.venv/bin/python benchmarks/distributed.py --parts parity,faults`` (~5 min on 2
cores; no timings are reported from it) and
``flock /tmp/lmrec-timing.lock .venv/bin/python benchmarks/distributed.py --parts scaling``
(~4 min). Each run keeps the other parts' last numbers in
``benchmarks/results/distributed.json`` and rewrites ``benchmarks/results/distributed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "distributed.md"
RESULTS_JSON = RESULTS.with_suffix(".json")
BPR_SEEDS = (0, 1, 2)
WARMUP_STEPS = 5


# ---------------------------------------------------------------------- parity
def _rank_fit(train, params: dict, out: Path) -> None:
    """One rank of the 2-process BPR run; rank 0 saves the model and its fit time."""
    from lmrec.models.bpr import BPR
    from lmrec.train.distributed import barrier, is_main_process

    barrier()  # start the clock together
    start = time.perf_counter()
    model = BPR(distributed=True, **params).fit(train)
    elapsed = time.perf_counter() - start
    if is_main_process():
        model.save(out)
        (out / "fit_seconds.txt").write_text(f"{elapsed}")


def ndcg(model, test) -> float:
    from lmrec.eval.protocol import evaluate

    return evaluate(model, test, metrics=["ndcg@10"], show_progress=False).summary["ndcg@10"]


def bench_parity(split, tmp: Path) -> list[dict]:
    from lmrec.models.bpr import BPR
    from lmrec.train.distributed import run_local

    rows = []
    for seed in BPR_SEEDS:
        params = dict(seed=seed, n_threads=1)
        start = time.perf_counter()
        single = BPR(**params).fit(split.train)
        t1 = time.perf_counter() - start
        out = tmp / f"bpr2_{seed}"
        run_local(_rank_fit, 2, split.train, params, out)
        two = BPR.load(out)
        rows.append(
            {
                "seed": seed,
                "ndcg1": ndcg(single, split.test),
                "ndcg2": ndcg(two, split.test),
                "t1": t1,
                "t2": float((out / "fit_seconds.txt").read_text()),
                "maxdiff": float(np.abs(two.item_factors_ - single.item_factors_).max()),
            }
        )
        print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------- fault tolerance
def worker_pids(parent: int) -> dict[int, int]:
    """``{LOCAL_RANK: pid}`` of the worker processes torchrun (``parent``) started (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            env = dict(
                kv.split("=", 1)
                for kv in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in kv
            )
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        if "LOCAL_RANK" in env:
            found[int(env["LOCAL_RANK"])] = int(entry.name)
    return found


def checkpoint_position(ckpt: Path) -> tuple[int, int] | None:
    """``(epoch, batch)`` of the checkpoint in ``ckpt``, or None (none yet, or mid-rename)."""
    try:
        state = json.loads((ckpt / "checkpoint" / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return int(state["epoch"]), int(state.get("batch", 0))


def torchrun_train(
    data: Path,
    out: Path,
    ckpt: Path,
    params: list[str],
    *,
    kill_at: tuple[int, int] | None = None,
    kill_rank: int = 1,
    checkpoint_every: int = 5,
    timeout: float = 600,
) -> dict:
    """Train BPR under ``torchrun --max-restarts 1``; optionally SIGKILL one worker mid-run.

    ``kill_at=(epoch, batch)``: once the checkpoint reaches it, local rank ``kill_rank``
    is killed. Returns the wall time, where the kill happened and torchrun's stderr.
    """
    from lmrec.train.distributed import free_port

    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{free_port()}",
        "-m",
        "lmrec",
        "train",
        "--data",
        str(data),
        "--model",
        "bpr",
        *params,
        "--out",
        str(out),
        "--distributed",
        "--checkpoint-dir",
        str(ckpt),
        "--checkpoint-every",
        str(checkpoint_every),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = out.with_suffix(".log")
    start = time.perf_counter()
    killed = None
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True
        )
        try:
            while kill_at is not None and killed is None and proc.poll() is None:
                pos = checkpoint_position(ckpt)
                pids = worker_pids(proc.pid)
                if pos is not None and pos >= kill_at and kill_rank in pids:
                    os.kill(pids[kill_rank], signal.SIGKILL)
                    killed = {"checkpoint": pos, "pid": pids[kill_rank]}
                time.sleep(0.02)
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return {"seconds": time.perf_counter() - start, "killed": killed, "stderr": log.read_text()}


def bench_faults(split, tmp: Path, kill_epoch: int) -> dict:
    from lmrec.models.bpr import BPR

    csv = tmp / "train.csv"
    split.train.to_frame()[["user", "item"]].to_csv(csv, index=False)
    params = ["--param", "seed=0", "--param", "n_threads=1"]
    straight = torchrun_train(csv, tmp / "straight", tmp / "ck_straight", params)
    crashed = torchrun_train(
        csv, tmp / "crashed", tmp / "ck_crashed", params, kill_at=(kill_epoch, 1)
    )
    a, b = BPR.load(tmp / "straight"), BPR.load(tmp / "crashed")
    out = {
        "ndcg_straight": ndcg(a, split.test),
        "ndcg_crashed": ndcg(b, split.test),
        "t_straight": straight["seconds"],
        "t_crashed": crashed["seconds"],
        "killed": crashed["killed"],
        # torchrun saw the SIGKILL (exit code -9) and still ended with 0: it restarted
        "restarted": "exitcode: -9" in crashed["stderr"],
        "identical": bool(
            np.array_equal(a.item_factors_, b.item_factors_)
            and np.array_equal(a.user_factors_, b.user_factors_)
        ),
        "maxdiff": float(np.abs(a.item_factors_ - b.item_factors_).max()),
    }
    print(out, flush=True)
    return out


# ---------------------------------------------------------------------- scaling
class _Done(Exception):
    """Raised inside a rank once the timed steps are done (ends the fit early)."""


def _timed_fit(train, params: dict, steps: int, out: Path | None) -> float:
    """Fit BPR, timing optimizer steps WARMUP_STEPS+1 .. WARMUP_STEPS+steps; returns seconds."""
    from lmrec.models import bpr
    from lmrec.train import pairs

    clock: dict[str, float] = {"n": 0}
    step = pairs.Optimizer.step

    def counted(self):
        step(self)
        clock["n"] += 1
        if clock["n"] == WARMUP_STEPS:
            clock["t0"] = time.perf_counter()
        if clock["n"] == WARMUP_STEPS + steps:
            clock["t1"] = time.perf_counter()
            raise _Done

    pairs.Optimizer.step = counted  # type: ignore[method-assign]  # this process only (a benchmark probe)
    try:
        bpr.BPR(**params).fit(train)
    except _Done:
        pass
    finally:
        pairs.Optimizer.step = step  # type: ignore[method-assign]
    seconds = clock["t1"] - clock["t0"]
    if out is not None:
        out.write_text(f"{seconds}")
    return seconds


def _rank_timed(path: str, params: dict, steps: int, out: Path) -> None:
    from lmrec.data.ingest import ingest
    from lmrec.train.distributed import barrier, is_main_process

    train = ingest(path)
    barrier()
    _timed_fit(train, {**params, "distributed": True}, steps, out if is_main_process() else None)


def bench_scaling(path: Path, steps: int, tmp: Path) -> dict:
    from lmrec.data.ingest import ingest
    from lmrec.train.distributed import run_local

    params = dict(seed=0, n_threads=1, epochs=1)
    train = ingest(path)
    shape = (train.n_users, train.n_items, train.n_interactions)
    t1 = _timed_fit(train, params, steps, None)
    del train
    run_local(_rank_timed, 2, str(path), params, steps, tmp / "t2.txt")
    t2 = float((tmp / "t2.txt").read_text())
    n = steps * 4096
    out = {"shape": shape, "steps": steps, "t1": t1, "t2": t2, "eps1": n / t1, "eps2": n / t2}
    out["efficiency"] = out["eps2"] / (2 * out["eps1"])
    print(out, flush=True)
    return out


# ---------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--parts",
        default="parity,faults,scaling",
        help="comma-separated subset of parity,faults,scaling; the others keep "
        "their last results (benchmarks/results/distributed.json)",
    )
    parser.add_argument("--kill-epoch", type=int, default=8)
    parser.add_argument("--synth", type=Path, default=Path("/tmp/syn10m"))
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= {"parity", "faults", "scaling"}:
        parser.error(f"unknown --parts {args.parts!r}")
    from lmrec.data.sources import load_builtin
    from lmrec.data.split import random_split

    split = random_split(load_builtin("ml-100k"), ratios=(0.8, 0.2), seed=args.seed)
    saved = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    with tempfile.TemporaryDirectory() as d:
        if "parity" in parts:
            saved["parity"] = {
                "seed": args.seed,
                "n_train": split.train.n_interactions,
                "rows": bench_parity(split, Path(d)),
            }
            RESULTS_JSON.write_text(json.dumps(saved, indent=1))
        if "faults" in parts:
            saved["faults"] = bench_faults(split, Path(d), args.kill_epoch)
            RESULTS_JSON.write_text(json.dumps(saved, indent=1))
        if "scaling" in parts:
            if not args.synth.exists():
                parser.error(
                    f"{args.synth} does not exist; generate it with lmrec synth (see the docstring)"
                )
            saved["scaling"] = bench_scaling(args.synth, args.steps, Path(d))
            RESULTS_JSON.write_text(json.dumps(saved, indent=1))
    RESULTS.write_text(render(saved))
    print(RESULTS.read_text())


def render(saved: dict) -> str:
    """The markdown report of whatever parts ``saved`` holds."""
    lines = [
        "# Scaling out: data-parallel BPR with torch.distributed",
        "",
        "Generated by `benchmarks/distributed.py` (see its docstring for the protocol). "
        f"Machine: {platform.machine()}, 2 cores shared with other jobs (several other "
        "benchmarks were running), CPU only, torch gloo backend.",
        "",
    ]
    if "parity" in saved:
        p = saved["parity"]
        lines += [
            f"## Parity: 1 rank vs 2 ranks (MovieLens-100K, per-user 80/20 split seed "
            f"{p['seed']}, {p['n_train']} training pairs; global batch 4096, 20 epochs)",
            "",
            "| model seed | NDCG@10, 1 rank | NDCG@10, 2 ranks | ratio "
            "| max abs diff, item factors | fit s, 1 rank | fit s, 2 ranks |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in p["rows"]:
            lines.append(
                f"| {r['seed']} | {r['ndcg1']:.4f} | {r['ndcg2']:.4f} "
                f"| {r['ndcg2'] / r['ndcg1']:.4f} | {r['maxdiff']:.1e} | {r['t1']:.1f} "
                f"| {r['t2']:.1f} |"
            )
        m1 = np.mean([r["ndcg1"] for r in p["rows"]])
        m2 = np.mean([r["ndcg2"] for r in p["rows"]])
        lines += [
            f"| mean | {m1:.4f} | {m2:.4f} | {m2 / m1:.4f} | | | |",
            "",
            "Negatives (and every other per-example draw) come from a generator keyed by "
            "(seed, epoch, global batch); each rank draws for the whole global batch and "
            "keeps its rows, so 2 ranks compute the 1-rank gradients up to float summation "
            "order. Fit times are not a speed measurement (untimed run on a busy machine).",
            "",
        ]
    if "faults" in saved:
        f = saved["faults"]
        pos = tuple(f["killed"]["checkpoint"])
        lines += [
            "## Fault tolerance: torchrun --max-restarts 1, one worker SIGKILLed mid-epoch",
            "",
            "| run | NDCG@10 | wall s (incl. start-up) |",
            "|---|---|---|",
            f"| uninterrupted | {f['ndcg_straight']:.4f} | {f['t_straight']:.1f} |",
            f"| local rank 1 killed once the checkpoint reached (epoch, batch) = {pos}, "
            f"group restarted, resumed | {f['ndcg_crashed']:.4f} | {f['t_crashed']:.1f} |",
            "",
            f"Ratio killed+resumed / uninterrupted: "
            f"**{f['ndcg_crashed'] / f['ndcg_straight']:.4f}**; factors bitwise identical: "
            f"**{f['identical']}** (max abs diff {f['maxdiff']:.1e}); torchrun saw the kill "
            f"and restarted the group: {f['restarted']}. Same model seed 0, "
            "`--checkpoint-every 5` (checkpoints every 5 steps and after every epoch); the "
            "restarted group replays the lost steps with the same batches and negatives.",
            "",
        ]
    if "scaling" in saved:
        s = saved["scaling"]
        lines += [
            f"## Throughput: synthetic {s['shape'][2]:,} interactions "
            f"({s['shape'][0]:,} users x {s['shape'][1]:,} items), {s['steps']} timed steps "
            "of global batch 4096",
            "",
            "| ranks | s per step | examples/s | efficiency |",
            "|---|---|---|---|",
            f"| 1 | {s['t1'] / s['steps']:.3f} | {s['eps1']:,.0f} | |",
            f"| 2 | {s['t2'] / s['steps']:.3f} | {s['eps2']:,.0f} | {s['efficiency']:.2f} |",
            "",
            "Efficiency = 2-rank examples/s / (2 x 1-rank examples/s). Both ranks run on the "
            "same 2 cores, one thread each, so 2 ranks cannot be more than 2x. Only the "
            "gradient rows a batch touched travel between ranks (`all_reduce_grads_`: an "
            "all_gather of about 12k rows instead of an all-reduce of the 64 MB tables; "
            "with the dense all-reduce the efficiency was 0.23). What bounds the speed-up is "
            "the optimizer: dense Adam updates all 16M table parameters every step, on every "
            "rank, so only the batch work (sampling, lookups, dot products, backward) is "
            "split. A row-sparse (lazy) Adam would make a step O(batch) instead of O(table); "
            "that changes the optimizer, so it is not done here. Data parallelism pays off "
            "with one rank per GPU or machine.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
