"""Sequence models on MovieLens-100K leave-one-out: lmrec vs. RecBole and RecTools, one evaluation.

Protocol (issue 19)
    MovieLens-100K (the built-in copy), each user's history in time order. The tie rule:
    ratings with equal timestamps (about half of consecutive ones) keep the order of the
    rows in the input file (``--ties input``, the default); ``--ties random`` shuffles the
    input rows with a fixed seed first, so the order among tied ratings is random and no
    model profits from id order. Leave-one-out: each user's last item is test, the
    second-to-last valid, the rest train (users with fewer than 3 ratings keep all in
    train). Test: full ranking over all 1,682 items, the user's train and valid items
    excluded, history = train + valid (what every model sees for the test step);
    NDCG@10 and HR@10, ties among scores by item index (``lmrec.ops.topk``).
One evaluation code for every row
    Every row produces a score matrix (users x items) for the test step; one function
    masks, ranks and scores it with ``lmrec.eval.metrics``; CIs and paired differences
    are percentile bootstraps over users (1,000 resamples, seed 0).
Rows
    lmrec ``sasrec`` (item_repr ``id``, ``text``, ``id+text``) and ``gru4rec`` with their
    defaults, early-stopped on valid NDCG@10 and scored on the train + valid sequence;
    ``ease`` and ``als`` with hyperparameters chosen on valid, then refitted on
    train + valid; ``sasrec`` (id) also refitted on train + valid for its best valid
    epoch count (the protocol of the refitted RecTools row). Peers: RecBole 1.2.1 SASRec
    (CE, its default; BPR, one negative -- RecBole has no BCE), GRU4Rec (CE)
    and BERT4Rec in their own virtualenv (``benchmarks/peers/recbole_seq.py``), trained
    on exactly this split with their default hyperparameters, early-stopped on their
    validation NDCG@10 (a run cut by the time budget reports its best epoch so far, and
    the table says so), scored by our code. RecTools 0.19 SASRec
    (``benchmarks/peers/rectools_sasrec.py``, its own seen-item filter, its top-10 lists
    scored by our code): with its defaults
    (3 epochs, no early stopping, trained on train + valid), and with lmrec's
    architecture budget (64 factors, 2 blocks, 2 heads, max_len 50, dropout 0.2, batch
    128, its softmax loss) at lr 1e-3, 2e-3 and 5e-3, trained on train with top-10 lists after
    every epoch, up to ``--peer-epochs`` and stopping after ``--peer-stopping`` epochs
    without a better valid NDCG@10: the learning rate and epoch are chosen on the same
    valid step as lmrec's rows, by the shared metric code. Two rows: that epoch's model
    with history = train + valid (lmrec's sequence-row protocol), and a seeded refit on
    train + valid for that many epochs (the EASE/ALS protocol). ``--peer-libs`` picks the
    peer libraries.
Cold items (``--part cold``)
    10% of the items (seeded) are "new": their interactions before the median timestamp
    are dropped, so they never occur in train; train = all other interactions before the
    cut. Each user with a training history ranks only the new items; truth = the user's
    interactions with them after the cut. Rows: sasrec ``text``, ``id+text``, ``text2cf``,
    and a baseline without personalisation: the new items ranked by the popularity their
    content predicts (:func:`content_popularity`), the same list for every user.
    ``--cold-draws`` (5) draws of the new items, the users of all draws pooled: one
    draw has about 100 users, too few to tell the rows apart.
Seeds (``--part seeds``)
    The sasrec rows (``id``, ``text``, ``id+text``) trained with each of ``--seeds``
    (seed 0 read from the quality run's per-user file when present): per-user NDCG@10
    averaged over the seeds, so that the paired bootstrap between two item
    representations measures the representation, not one draw of the training
    randomness; per-seed ratios shown beside it. The seed-averaged sasrec (id) and
    (id+text) are also compared with the quality table's refitted RecTools row and EASE
    (one run each), for the peer and non-sequential targets.
Cost (``--part cost``, under flock)
    Seconds to the best validation epoch of sasrec (id) and the top-20 lists of all
    943 users; reported as ratios to an EASE fit measured in the same run.
Serving (``--part serve``, under flock)
    ``lmrec serve`` (one worker, no auth, list cache off so every request is scored) of
    sasrec and, as the same-run reference, EASE (a session through ``score_history``);
    wrk (C) posts 2,000 distinct 50-item sessions (k=20) over 1 and 2 connections for
    ``--duration`` s each: p50/p99 latency and requests/s.
Scale (``--part scale``)
    One sasrec epoch (``loss="sampled"``, ``max_len=50``) on synthetic logs of 1M, 3M and
    10M events (``lmrec.data.synthetic``): examples/s and seconds per epoch vs events.

Commands::

    benchmarks/peers/setup.sh                       # RecBole's virtualenv, once
    .venv/bin/python benchmarks/sequential.py --part quality --ties input
    .venv/bin/python benchmarks/sequential.py --part quality --ties input --peer-libs rectools
    .venv/bin/python benchmarks/sequential.py --part quality --ties random
    .venv/bin/python benchmarks/sequential.py --part cold
    .venv/bin/python benchmarks/sequential.py --part seeds --seeds 0,1,2
    flock /tmp/lmrec-bench.lock .venv/bin/python benchmarks/sequential.py --part cost
    python benchmarks/sequential.py --part cost --devices cuda,cpu   # on a GPU machine
    flock /tmp/lmrec-bench.lock .venv/bin/python benchmarks/sequential.py --part scale
    flock /tmp/lmrec-bench.lock .venv/bin/python benchmarks/sequential.py --part serve

Results go to ``benchmarks/results/sequential_*.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec.data import Dataset, leave_one_out_split
from lmrec.data.sequences import user_sequences
from lmrec.data.sources import load_builtin
from lmrec.eval.bootstrap import bootstrap_ci, paired_bootstrap_diff
from lmrec.eval.metrics import compute_ranking_metrics
from lmrec.models import create_model
from lmrec.models.seq.config import SequenceConfig
from lmrec.models.validation import validation_metric
from lmrec.ops.topk import mask_rows, topk

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PEER_PY = Path(os.environ.get("RECBOLE_PYTHON", "/tmp/seqpeers/recbole-venv/bin/python"))
RECTOOLS_PY = Path(os.environ.get("RECTOOLS_PYTHON", "/tmp/seqpeers/rectools-venv/bin/python"))
METRICS = ["ndcg@10", "hit_rate@10"]
SEED = 2026
ID_TEXT = "lmrec sasrec (id+text)"
POPULARITY_WEIGHTED = "lmrec sasrec (id+text, popularity-weighted text)"
PATIENCE_30 = "lmrec sasrec (id+text, patience 30)"
POPULARITY_PATIENCE_30 = "lmrec sasrec (id+text, popularity-weighted text, patience 30)"
LMREC_ROWS = {
    "lmrec sasrec (id)": ("sasrec", {"item_repr": "id"}),
    "lmrec sasrec (text)": ("sasrec", {"item_repr": "text"}),
    "lmrec sasrec (id+text)": ("sasrec", {"item_repr": "id+text"}),
    POPULARITY_WEIGHTED: ("sasrec", {"item_repr": "id+text", "text_weight": "popularity"}),
    "lmrec gru4rec (id)": ("gru4rec", {"item_repr": "id"}),
}
#: Rows of the seeds part only (``--part seeds``), not of the quality table.
SEEDS_ONLY_ROWS = {
    PATIENCE_30: ("sasrec", {"item_repr": "id+text", "patience": 30}),
    POPULARITY_PATIENCE_30: (
        "sasrec",
        {"item_repr": "id+text", "text_weight": "popularity", "patience": 30},
    ),
}
LMREC_REFIT = "lmrec sasrec (id), refit on train + valid"
RECTOOLS_DEFAULTS = "RecTools SASRec (its defaults: 3 epochs)"
RECTOOLS_VALID = "RecTools SASRec (lmrec arch, best valid epoch)"
RECTOOLS_REFIT = "RecTools SASRec (lmrec arch, refit on train + valid)"
#: Learning rates tried for RecTools' SASRec with lmrec's architecture (the best on valid
#: is kept): lmrec's default (2e-3), the 1e-3 and 5e-3 that were lmrec's defaults before.
RECTOOLS_LRS = (1e-3, 2e-3, 5e-3)
#: A baseline of the cold-item variant with no personalisation: every user gets the new
#: items ranked by the popularity their content predicts (:func:`content_popularity`).
CONTENT_POPULARITY = "content popularity (text -> log count, one list for all)"
#: The cold-item variant's rows: name -> (model, parameters).
COLD_ROWS = {
    "lmrec sasrec (text)": ("sasrec", {"item_repr": "text"}),
    "lmrec sasrec (id+text)": ("sasrec", {"item_repr": "id+text"}),
    "lmrec sasrec (id+text, id_dropout=0.5)": (
        "sasrec",
        {"item_repr": "id+text", "id_dropout": 0.5},
    ),
    "lmrec sasrec (text, epochs on new items)": (
        "sasrec",
        {"item_repr": "text", "epochs_from": "new_items"},
    ),
    "lmrec sasrec (id+text, epochs on new items)": (
        "sasrec",
        {"item_repr": "id+text", "epochs_from": "new_items"},
    ),
    POPULARITY_WEIGHTED: LMREC_ROWS[POPULARITY_WEIGHTED],
    PATIENCE_30: SEEDS_ONLY_ROWS[PATIENCE_30],
    POPULARITY_PATIENCE_30: SEEDS_ONLY_ROWS[POPULARITY_PATIENCE_30],
    "lmrec text2cf": ("text2cf", {}),
    CONTENT_POPULARITY: ("content popularity", {}),
}
#: Cold rows compared with id+text at its defaults (each changes one or two settings).
ID_TEXT_VARIANTS = (
    "lmrec sasrec (id+text, id_dropout=0.5)",
    POPULARITY_WEIGHTED,
    PATIENCE_30,
    POPULARITY_PATIENCE_30,
)
PEERS = {
    "RecBole SASRec (CE)": ("SASRec", "CE"),
    "RecBole SASRec (BPR, 1 neg)": ("SASRec", "BPR"),
    "RecBole GRU4Rec (CE)": ("GRU4Rec", "CE"),
    "RecBole BERT4Rec": ("BERT4Rec", "CE"),
}


# ---------------------------------------------------------------------- data
def movielens(ties: str) -> Dataset:
    """ML-100K with the input rows in file order, or shuffled (seeded) for ``ties="random"``."""
    ds = load_builtin("ml-100k")
    frame = ds.to_frame().iloc[np.argsort(ds.column("order"), kind="stable")]
    if ties == "random":
        frame = frame.iloc[np.random.default_rng(SEED).permutation(len(frame))]
    return Dataset.from_frame(
        frame.reset_index(drop=True), items=ds.items, users=ds.users, name=f"ml-100k/{ties}"
    )


class Task:
    """The leave-one-out split and what the shared evaluation needs."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.split = leave_one_out_split(ds)
        self.train_valid = self.split.train.concat(self.split.valid, name="train+valid")
        self.history = user_sequences(self.train_valid)
        self.seen = self.train_valid.matrix
        test = self.split.test
        self.users = np.flatnonzero(test.user_counts() > 0)
        self.truth = sp.csr_matrix(test.matrix[self.users])
        self.truth.data[:] = 1.0

    def evaluate(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """Per-user metrics of a (n_users, n_items) test-step score matrix (the one evaluation)."""
        block = np.array(scores[self.users], dtype=np.float32, copy=True)
        block[~np.isfinite(block)] = -np.inf
        mask_rows(block, self.seen[self.users])
        recs, _ = topk(block, 10)
        return self.evaluate_lists(recs)

    def evaluate_lists(self, recs: np.ndarray) -> dict[str, np.ndarray]:
        """Per-user metrics of top-10 index lists of the test users (-1 padded)."""
        _, per_user = compute_ranking_metrics(recs, self.truth, METRICS, n_items=self.ds.n_items)
        return per_user

    def evaluate_valid(self, recs: np.ndarray) -> dict[str, np.ndarray]:
        """Per-user metrics of (n_users, 10) index lists for the validation step (a peer's
        epoch choice; lmrec's models use ``validation_metric``, the same metric)."""
        valid = self.split.valid
        users = np.flatnonzero(valid.user_counts() > 0)
        truth = sp.csr_matrix(valid.matrix[users])
        truth.data[:] = 1.0
        _, per_user = compute_ranking_metrics(recs[users], truth, METRICS, n_items=self.ds.n_items)
        return per_user

    def token_lists(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """A peer's top-10 lists of item tokens ('' padded) as (n_users, 10) indices, -1 padded."""
        rows = self.ds.user_ids.index(users.astype(object), on_unknown="raise")
        lists = np.full((self.ds.n_users, 10), -1, np.int64)
        for r, got in zip(rows, items, strict=True):
            idx = self.ds.item_ids.index(got[got != ""].astype(object), on_unknown="ignore")
            lists[r, : len(idx)] = idx
        return lists

    def export_for_recbole(self, directory: Path) -> Path:
        """``seq.inter``: every interaction, timestamp = rank in lmrec's order of the user."""
        d = directory / "seq"
        d.mkdir(parents=True, exist_ok=True)
        full = user_sequences(self.ds)
        lengths = full.lengths()
        users = np.repeat(np.arange(len(lengths)), lengths)
        rank = np.arange(len(users)) - np.repeat(full.indptr[:-1], lengths)
        frame = pd.DataFrame(
            {
                "user_id:token": self.ds.user_ids.lookup(users).astype(str),
                "item_id:token": self.ds.item_ids.lookup(full.items).astype(str),
                "timestamp:float": rank.astype(float),
            }
        )
        frame.to_csv(d / "seq.inter", sep="\t", index=False)
        return directory


# ---------------------------------------------------------------------- rows
def lmrec_sequence_row(task: Task, model_name: str, params: dict) -> tuple[np.ndarray, dict]:
    model = create_model(model_name, {"seed": 0, **params})
    start = time.perf_counter()
    model.fit(task.split.train, valid=task.split.valid)
    seconds = time.perf_counter() - start
    scores = model.score_sequences(task.history.rows(np.arange(task.ds.n_users)))
    info = {
        "fit_seconds": seconds,
        "best_epoch": model.best_epoch_,
        "epochs": len(model.history_),
        "valid_ndcg@10": max(h.get("valid_ndcg@10", 0) for h in model.history_),
    }
    return scores, info


def lmrec_refit_row(
    task: Task, model_name: str, params: dict, epochs: int
) -> tuple[np.ndarray, dict]:
    """An lmrec sequence row refitted on train + valid for its best valid epoch count (the
    protocol of the refitted RecTools row), scored on the train + valid sequence."""
    model = create_model(model_name, {"seed": 0, **params, "epochs": epochs})
    start = time.perf_counter()
    model.fit(task.train_valid)
    seconds = time.perf_counter() - start
    scores = model.score_sequences(task.history.rows(np.arange(task.ds.n_users)))
    return scores, {"fit_seconds": seconds, "best_epoch": epochs, "epochs": len(model.history_)}


def tuned_row(task: Task, model_name: str, grid: list[dict]) -> tuple[np.ndarray, dict]:
    """Pick hyperparameters on valid (fit on train), refit on train + valid, score known users."""
    best, best_params = -1.0, grid[0]
    for params in grid:
        m = create_model(model_name, params).fit(task.split.train)
        value = validation_metric(m, task.split.valid, "ndcg@10")
        if value > best:
            best, best_params = value, params
    model = create_model(model_name, best_params).fit(task.train_valid)
    scores = model.score(model.user_ids_.ids)
    return scores, {"params": best_params, "valid_ndcg@10": best}


def recbole_row(
    task: Task, work: Path, model: str, loss: str, epochs: int, stopping: int
) -> tuple[np.ndarray, dict]:
    out = work / f"recbole_{model}_{loss}"
    found = [f for f in (f"{out}.npz", f"{out}.partial.npz") if Path(f).exists()]
    if not found:  # (a .partial.npz holds the best epoch so far of a run cut short)
        cmd = [
            str(PEER_PY),
            str(HERE / "peers" / "recbole_seq.py"),
            str(work),
            model,
            loss,
            str(out),
            "--epochs",
            str(epochs),
            "--stopping-step",
            str(stopping),
        ]
        subprocess.run(cmd, check=True)
        found = [f"{out}.npz"]
    z = np.load(found[0])
    scores = np.full((task.ds.n_users, task.ds.n_items), -np.inf, np.float32)
    rows = task.ds.user_ids.index(z["users"].astype(object), on_unknown="raise")
    cols = task.ds.item_ids.index(z["items"].astype(object), on_unknown="raise")
    scores[np.ix_(rows, cols)] = z["scores"]
    return scores, json.loads(str(z["meta"]))


def rectools_row(
    task: Task, work: Path, epochs: int, lr: float | None = None
) -> tuple[np.ndarray, dict]:
    """RecTools' SASRec trained ``epochs`` epochs on train + valid, with its defaults or
    (``lr`` given) lmrec's architecture at that learning rate: its top-10 lists (seen
    items filtered by RecTools) as index lists."""
    if lr is None:
        z = rectools_run(work, f"rectools_SASRec_{epochs}", "--epochs", str(epochs))
    else:
        flags = ("--epochs", str(epochs), "--arch", "lmrec", "--lr", str(lr))
        z = rectools_run(work, f"rectools_SASRec_lmrec_lr{lr:g}_{epochs}", *flags)
    return task.token_lists(z["users"], z["items"]), json.loads(str(z["meta"]))


def rectools_run(work: Path, name: str, *flags: str) -> np.lib.npyio.NpzFile:
    """The adapter's output ``work/name.npz``, running it in RecTools' virtualenv first
    unless a previous run left it there."""
    out = work / name
    if not Path(f"{out}.npz").exists():
        cmd = [str(RECTOOLS_PY), str(HERE / "peers" / "rectools_sasrec.py"), str(work), str(out)]
        subprocess.run([*cmd, *flags], check=True)
    return np.load(f"{out}.npz")


def rectools_validation(
    task: Task, work: Path, max_epochs: int, patience: int
) -> tuple[np.ndarray, dict]:
    """RecTools' SASRec (lmrec's architecture) trained on train with per-epoch lists, at
    each of ``RECTOOLS_LRS``: the learning rate and epoch of the best valid NDCG@10 by the
    shared metric code, and the test lists of that epoch's model (history = train +
    valid, lmrec's sequence-row protocol)."""
    runs: dict[float, Any] = {}
    curves: dict[float, list[float]] = {}
    for lr in RECTOOLS_LRS:
        runs[lr] = rectools_run(
            work,
            rectools_valid_stem(lr, patience),
            *("--arch", "lmrec", "--lr", str(lr)),
            *("--valid-epochs", str(max_epochs), "--patience", str(patience)),
        )
        curves[lr] = [
            float(
                np.mean(task.evaluate_valid(task.token_lists(runs[lr]["users"], lists))["ndcg@10"])
            )
            for lists in runs[lr]["valid_items"]
        ]
    lr = max(RECTOOLS_LRS, key=lambda k: max(curves[k]))  # the first on a tie
    epoch, z = int(np.argmax(curves[lr])), runs[lr]
    info = {
        "lr": lr,
        "best_epoch": epoch + 1,
        "epochs": len(curves[lr]),
        "valid_ndcg@10": curves[lr][epoch],
        "valid_by_lr": {f"{k:g}": round(max(c), 4) for k, c in curves.items()},
        "valid_curve": [round(v, 4) for v in curves[lr]],
        "seconds": json.loads(str(z["meta"]))["seconds"],
    }
    return task.token_lists(z["users"], z["test_items"][epoch]), info


def slug(name: str) -> str:
    """A row name as a file-name part (the caches of every part are named by it)."""
    return "".join(c if c.isalnum() else "_" for c in name)


def rectools_valid_stem(lr: float, patience: int) -> str:
    """The cache stem of RecTools' validation run at ``lr`` stopping after ``patience``."""
    return f"rectools_SASRec_lmrec_lr{lr:g}_p{patience}_valid"


def selected_rows(arg: str | None, known: Iterable[str]) -> set[str] | None:
    """The row names given to ``--rows`` (separated by ``;``, since names contain commas),
    or None for every row. An unknown name stops the run before any training, with the
    part's row names, so that a typo does not silently run nothing."""
    if not arg:
        return None
    only = {name.strip() for name in arg.split(";") if name.strip()}
    unknown = sorted(only - set(known))
    if unknown:
        raise SystemExit(f"--rows: unknown row(s) {unknown}; this part's rows: {sorted(known)}")
    return only


# ---------------------------------------------------------------------- report
def markdown(table: pd.DataFrame) -> str:
    """A GitHub table (floats with 4 decimals) without the optional ``tabulate``."""
    cols = [table.index.name or "", *table.columns]
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for name, row in table.iterrows():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(name), *cells]) + " |")
    return "\n".join(lines)


def summarise(
    per_user: dict[str, dict[str, np.ndarray]], infos: dict[str, dict], pairs: list[tuple[str, str]]
) -> tuple[pd.DataFrame, list[dict]]:
    rows = []
    for name, pu in per_user.items():
        mean, lo, hi = bootstrap_ci(pu["ndcg@10"], n_resamples=1000, seed=0)
        rows.append(
            {
                "model": name,
                "ndcg@10": mean,
                "ndcg@10 ci": f"[{lo:.4f}, {hi:.4f}]",
                "hit_rate@10": float(np.mean(pu["hit_rate@10"])),
                "best_epoch": infos[name].get("best_epoch"),
                "fit_s": infos[name].get("fit_seconds", infos[name].get("seconds")),
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    diffs = []
    for a, b in pairs:
        if a in per_user and b in per_user:
            d = paired_bootstrap_diff(
                per_user[a]["ndcg@10"], per_user[b]["ndcg@10"], n_resamples=1000, seed=0
            )
            ratio = float(np.mean(per_user[a]["ndcg@10"]) / np.mean(per_user[b]["ndcg@10"]))
            diffs.append({"a": a, "b": b, "ratio": ratio, **d})
    return table, diffs


def committed_rows(ties: str) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict]]:
    """The quality table's per-user metrics and row infos as committed in ``results/``.

    Only NDCG@10 is stored per user; with one test item per user (leave-one-out) the
    hit rate at 10 is exactly ``NDCG@10 > 0``.
    """
    stem = RESULTS / f"sequential_{ties}"
    ndcg = dict(np.load(f"{stem}_per_user.npz"))
    infos = json.loads(stem.with_suffix(".json").read_text())["infos"]
    per_user = {
        name: {"ndcg@10": v, "hit_rate@10": (v > 0).astype(np.float64)} for name, v in ndcg.items()
    }
    return per_user, infos


def run_quality(args: argparse.Namespace) -> None:
    task = Task(movielens(args.ties))
    work = RESULTS / f"sequential_work_{args.ties}"
    task.export_for_recbole(work)
    per_user, infos = {}, {}
    only = selected_rows(
        args.rows,
        [*LMREC_ROWS, LMREC_REFIT, "lmrec ease", "lmrec als", *PEERS]
        + [RECTOOLS_DEFAULTS, RECTOOLS_VALID, RECTOOLS_REFIT],
    )
    if args.reuse_committed and only is None:
        raise SystemExit("--reuse-committed keeps the rows that --rows does not name; name some")
    committed = committed_rows(args.ties) if args.reuse_committed else ({}, {})

    def add(name: str, run: object, lists: bool = False, keep: bool = True) -> None:
        """Run a row (or read its cached per-user metrics: rows can run in parallel
        processes with --rows, and a last run without --rows assembles the table;
        with --reuse-committed, a row --rows does not name is read from results/)."""
        cache = work / f"row_{slug(name)}.json"
        if keep and cache.exists():
            saved = json.loads(cache.read_text())
            per_user[name] = {m: np.asarray(v) for m, v in saved["per_user"].items()}
            infos[name] = saved["info"]
        elif only is not None and name not in only and name in committed[0]:
            per_user[name], infos[name] = committed[0][name], committed[1].get(name, {})
        elif (not args.cached_only or not keep) and (only is None or name in only):
            scores, info = run()  # type: ignore[operator]
            per_user[name] = (
                task.evaluate_lists(scores[task.users]) if lists else task.evaluate(scores)
            )
            infos[name] = info
            if keep:  # peers are read from their score files each time (cheap, never stale)
                cache.write_text(
                    json.dumps(
                        {
                            "per_user": {m: v.tolist() for m, v in per_user[name].items()},
                            "info": info,
                        },
                        default=str,
                    )
                )
        else:
            return
        print(
            f"{name:32s} ndcg@10={np.mean(per_user[name]['ndcg@10']):.4f} {infos[name]}", flush=True
        )

    for name, (model, params) in LMREC_ROWS.items():
        add(name, lambda m=model, p=params: lmrec_sequence_row(task, m, p))
    refit_epochs = infos.get("lmrec sasrec (id)", {}).get("best_epoch")
    if refit_epochs:
        add(
            LMREC_REFIT,
            lambda: lmrec_refit_row(task, "sasrec", {"item_repr": "id"}, refit_epochs),
        )
    add(
        "lmrec ease", lambda: tuned_row(task, "ease", [{"l2": v} for v in (50, 100, 200, 400, 800)])
    )
    grid = [
        {"factors": f, "l2": r, "alpha": a, "seed": 0}
        for f in (64, 128)
        for r in (0.01, 0.1)
        for a in (1.0, 5.0)
    ]
    add("lmrec als", lambda: tuned_row(task, "als", grid))
    libs = set(args.peer_libs.split(",")) if args.peers else set()
    for name, (model, loss) in PEERS.items() if "recbole" in libs else ():
        out = work / f"recbole_{model}_{loss}"
        if args.cached_only and not any(
            Path(f).exists() for f in (f"{out}.npz", f"{out}.partial.npz")
        ):
            continue
        add(
            name,
            lambda m=model, lo=loss: recbole_row(
                task, work, m, lo, args.peer_epochs, args.peer_stopping
            ),
            keep=False,
        )
    if "rectools" in libs:
        if not args.cached_only or (work / "rectools_SASRec_3.npz").exists():
            add(
                RECTOOLS_DEFAULTS,
                lambda: rectools_row(task, work, 3),
                lists=True,
                keep=False,
            )
        if not args.cached_only or all(
            (work / f"{rectools_valid_stem(lr, args.peer_stopping)}.npz").exists()
            for lr in RECTOOLS_LRS
        ):
            picked: dict = {}

            def validated() -> tuple[np.ndarray, dict]:
                lists, info = rectools_validation(task, work, args.peer_epochs, args.peer_stopping)
                picked.update(info)
                return lists, info

            add(RECTOOLS_VALID, validated, lists=True, keep=False)
            picked = picked or infos.get(RECTOOLS_VALID, {})  # the committed row's choice
            epochs, lr = picked.get("best_epoch"), picked.get("lr")
            refit = work / f"rectools_SASRec_lmrec_lr{lr:g}_{epochs}.npz" if epochs else None
            if refit is not None and (not args.cached_only or refit.exists()):
                add(
                    RECTOOLS_REFIT,
                    lambda: rectools_row(task, work, epochs, lr),
                    lists=True,
                    keep=False,
                )
                infos.get(RECTOOLS_REFIT, {}).update(
                    best_epoch=epochs, lr=lr, **{"valid_ndcg@10": picked["valid_ndcg@10"]}
                )
    pairs = [
        ("lmrec sasrec (id+text)", "lmrec sasrec (id)"),
        (POPULARITY_WEIGHTED, "lmrec sasrec (id)"),
        ("lmrec sasrec (text)", "lmrec sasrec (id)"),
        ("lmrec sasrec (id)", "RecBole SASRec (CE)"),
        ("lmrec sasrec (id)", RECTOOLS_REFIT),
        ("lmrec sasrec (id)", RECTOOLS_VALID),
        (LMREC_REFIT, RECTOOLS_REFIT),
        ("lmrec sasrec (id)", "lmrec ease"),
    ]
    table, diffs = summarise(per_user, infos, pairs)
    stem = RESULTS / f"sequential_{args.ties}"
    np.savez_compressed(f"{stem}_per_user.npz", **{k: v["ndcg@10"] for k, v in per_user.items()})
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "ties": args.ties,
                "table": table.reset_index().to_dict("records"),
                "diffs": diffs,
                "infos": infos,
            },
            indent=2,
            default=str,
        )
    )
    md = (
        markdown(table)
        + "\n\n"
        + "\n".join(
            f"- {d['a']} / {d['b']}: ratio {d['ratio']:.3f}, diff {d['mean_diff']:+.4f} "
            f"[{d['low']:+.4f}, {d['high']:+.4f}]"
            for d in diffs
        )
    )
    stem.with_suffix(".md").write_text(md + "\n")
    print(md)


def by_test_item_popularity(
    task: Task, per_user: dict[str, np.ndarray], names: list[str]
) -> list[str]:
    """Markdown lines: mean NDCG@10 of ``names`` per quartile of the test item's count in
    train + valid (where in the catalog a representation gains or loses), with each
    row's difference from the first."""
    counts = task.train_valid.item_counts()[task.truth.indices]  # one test item per user
    edges = np.quantile(counts, [0.25, 0.5, 0.75])
    group = np.digitize(counts, edges)
    lines = [
        "By the test item's interactions in train + valid (quartiles of the test users; "
        f"edges {', '.join(f'{e:g}' for e in edges)}):",
        "",
        "| test item | users | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    bounds = [counts.min(), *edges, counts.max()]
    for g in range(4):
        rows = group == g
        base = per_user[names[0]][rows].mean()
        cells = [f"{base:.4f}"] + [
            f"{per_user[n][rows].mean():.4f} ({per_user[n][rows].mean() - base:+.4f})"
            for n in names[1:]
        ]
        label = f"{bounds[g]:g}-{bounds[g + 1]:g}"
        lines.append(f"| {label} | {int(rows.sum())} | " + " | ".join(cells) + " |")
    return lines


def run_seeds(args: argparse.Namespace) -> None:
    """The sasrec rows over several training seeds, per-user NDCG@10 averaged over them;
    also against the quality table's refitted RecTools row and EASE (one run each)."""
    task = Task(movielens(args.ties))
    work = RESULTS / f"sequential_work_{args.ties}"
    work.mkdir(parents=True, exist_ok=True)
    seeds = [int(v) for v in args.seeds.split(",")]
    id_, text, id_text = "lmrec sasrec (id)", "lmrec sasrec (text)", ID_TEXT
    names = [id_, text, id_text, POPULARITY_WEIGHTED, PATIENCE_30, POPULARITY_PATIENCE_30]
    quality = RESULTS / f"sequential_{args.ties}_per_user.npz"
    committed, saved_infos = committed_rows(args.ties) if quality.exists() else ({}, {})
    saved = {name: pu["ndcg@10"] for name, pu in committed.items()}
    ndcg: dict[str, dict[int, np.ndarray]] = {n: {} for n in names}
    valid: dict[str, dict[int, float]] = {n: {} for n in names}  # best valid NDCG@10
    for name in names:
        model, params = {**LMREC_ROWS, **SEEDS_ONLY_ROWS}[name]
        for seed in seeds:
            cache = work / f"seed{seed}_{slug(name)}.npy"
            info_file = cache.with_suffix(".json")
            if seed == 0 and name in saved:
                ndcg[name][seed] = saved[name]
                info = saved_infos.get(name, {})
            elif cache.exists():
                ndcg[name][seed] = np.load(cache)
                info = json.loads(info_file.read_text()) if info_file.exists() else {}
            else:
                scores, info = lmrec_sequence_row(task, model, {**params, "seed": seed})
                ndcg[name][seed] = task.evaluate(scores)["ndcg@10"]
                np.save(cache, ndcg[name][seed])
                info_file.write_text(json.dumps(info))
            valid[name][seed] = info.get("valid_ndcg@10", float("nan"))
            print(f"{name} seed {seed}: {ndcg[name][seed].mean():.4f}", flush=True)
    mean = {n: np.mean([ndcg[n][s] for s in seeds], axis=0) for n in names}
    lines = [
        f"Seeds {', '.join(map(str, seeds))}; ties: {args.ties}. Per-user NDCG@10 averaged "
        "over the seeds; CIs: percentile bootstrap over users (1,000 resamples, seed 0); "
        "valid: the best validation NDCG@10, averaged over the seeds.",
        "",
        "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean [95% CI] | valid |",
        "|---|" + "---:|" * (len(seeds) + 2),
    ]
    for n in names:
        m, lo, hi = bootstrap_ci(mean[n], n_resamples=1000, seed=0)
        cells = " | ".join(f"{ndcg[n][s].mean():.4f}" for s in seeds)
        v = np.mean([valid[n][s] for s in seeds])
        lines.append(f"| {n} | {cells} | {m:.4f} [{lo:.4f}, {hi:.4f}] | {v:.4f} |")
    lines.append("")
    diffs = []
    for a, b in [
        (id_text, id_),
        (POPULARITY_WEIGHTED, id_),
        (POPULARITY_WEIGHTED, id_text),
        (PATIENCE_30, id_),
        (PATIENCE_30, id_text),
        (POPULARITY_PATIENCE_30, id_),
        (POPULARITY_PATIENCE_30, PATIENCE_30),
        (text, id_),
    ]:
        d = paired_bootstrap_diff(mean[a], mean[b], n_resamples=1000, seed=0)
        ratio = float(mean[a].mean() / mean[b].mean())
        per_seed = ", ".join(f"{ndcg[a][s].mean() / ndcg[b][s].mean():.3f}x" for s in seeds)
        diffs.append({"a": a, "b": b, "ratio": ratio, **d})
        lines.append(
            f"- {a} / {b}: {ratio:.3f}x, diff {d['mean_diff']:+.4f} "
            f"[{d['low']:+.4f}, {d['high']:+.4f}] (per seed: {per_seed})"
        )
    # single-run references from the quality table: the peer and non-sequential targets,
    # with the sasrec side averaged over the seeds
    for ref in (RECTOOLS_REFIT, "lmrec ease"):
        if ref not in saved:
            continue
        for a in (n for n in names if n != text):
            d = paired_bootstrap_diff(mean[a], saved[ref], n_resamples=1000, seed=0)
            ratio = float(mean[a].mean() / saved[ref].mean())
            diffs.append({"a": a, "b": ref, "ratio": ratio, **d})
            lines.append(
                f"- {a} (mean over seeds) / {ref} (one run): {ratio:.3f}x, diff "
                f"{d['mean_diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
            )
    lines += ["", *by_test_item_popularity(task, mean, names)]
    stem = RESULTS / f"sequential_seeds_{args.ties}"
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "seeds": seeds,
                "ties": args.ties,
                "ndcg@10": {n: {str(s): float(ndcg[n][s].mean()) for s in seeds} for n in names},
                "valid_ndcg@10": {n: {str(s): valid[n][s] for s in seeds} for n in names},
                "diffs": diffs,
            },
            indent=2,
            default=str,
        )
    )
    print("\n".join(lines))


def cold_split(ds: Dataset, draw: int) -> tuple[Dataset, Dataset, np.ndarray, np.ndarray]:
    """Draw ``draw`` of the cold-item variant: (train, test, new-item mask, test users).

    10% of the active items (seeded by ``SEED + draw``) are new: their interactions
    before the median timestamp are dropped; test = interactions with them after it;
    the test users have a training history and a test interaction.
    """
    ts, items = ds.column("timestamp"), ds.column("item_idx")
    cut = float(np.median(ts))
    active = np.flatnonzero(ds.item_counts() > 0)
    rng = np.random.default_rng(SEED + draw)
    new = rng.choice(active, size=len(active) // 10, replace=False)
    is_new = np.zeros(ds.n_items, bool)
    is_new[new] = True
    train = ds.subset((ts < cut) & ~is_new[items], name=f"cold-train-{draw}")
    test = ds.subset((ts >= cut) & is_new[items], name=f"cold-test-{draw}")
    users = np.flatnonzero((train.user_counts() > 0) & (test.user_counts() > 0))
    return train, test, is_new, users


def content_popularity(train: Dataset, l2: float = 1.0) -> np.ndarray:
    """Each item's popularity as its content predicts it (float32, (n_items,)): ridge
    regression (penalty ``l2``) from the item features text2cf uses (MiniLM vector and
    attributes) to log(1 + training interactions), fitted on the items with interactions
    and applied to every item, so items without any get a popularity from their text."""
    from lmrec.models.text2cf import ItemFeatureConfig, item_features

    feats, _ = item_features(train, ItemFeatureConfig())
    counts = train.item_counts()
    warm = counts > 0
    x, y = feats[warm].astype(np.float64), np.log1p(counts[warm])
    w = np.linalg.solve(x.T @ x + l2 * np.eye(x.shape[1]), x.T @ (y - y.mean()))
    return (feats @ w + y.mean()).astype(np.float32)


def cold_row(
    name: str, train: Dataset, test: Dataset, is_new: np.ndarray, users: np.ndarray
) -> tuple[dict[str, np.ndarray], dict]:
    """Per-user NDCG@10 and Recall@20 of one cold row, each user ranking only the new items."""
    model_name, params = COLD_ROWS[name]
    truth = sp.csr_matrix(test.matrix[users])
    truth.data[:] = 1.0
    if model_name == "content popularity":
        scores = np.tile(content_popularity(train), (len(users), 1))
        info: dict = {}
    elif model_name == "sasrec":
        model = create_model(model_name, params)
        if params.get("epochs_from", "valid") == "valid":
            inner = leave_one_out_split(train, valid=False)  # last train item of each user: valid
            model.fit(inner.train, valid=inner.test)
        else:  # the model holds out part of train itself, then refits on all of it
            model.fit(train)
        scores = model.score_sequences(user_sequences(train).rows(users))
        info = {"best_epoch": model.best_epoch_}
    else:
        model = create_model(model_name, params)
        model.fit(train)
        scores = model.score(model.user_ids_.ids[users])
        info = {}
    block = np.array(scores, dtype=np.float32, copy=True)
    block[:, ~is_new] = -np.inf
    recs, _ = topk(block, 20)
    _, pu = compute_ranking_metrics(recs, truth, ["ndcg@10", "recall@20"], n_items=len(is_new))
    return {"ndcg@10": pu["ndcg@10"], "hit_rate@10": pu["recall@20"]}, info


def run_cold(args: argparse.Namespace) -> None:
    """Cold items: 10% of items appear only after the median time; rank only them.

    ``--cold-draws`` seeded draws of the new items, each with its own fits; the users of
    every draw are pooled (a user appears once per draw) before the bootstrap.
    """
    ds = movielens("input")
    only = selected_rows(args.rows, COLD_ROWS)
    per_draw: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in COLD_ROWS}
    epochs: dict[str, list] = {name: [] for name in COLD_ROWS}
    header = []
    for draw in range(args.cold_draws):
        train, test, is_new, users = cold_split(ds, draw)
        header.append(
            f"draw {draw}: {int(is_new.sum())} new items, {len(users)} users, "
            f"{test.n_interactions} test interactions after the cut"
        )
        tag = "" if draw == 0 else f"d{draw}_"
        for name in COLD_ROWS:
            cache = RESULTS / f"sequential_work_cold_{tag}{slug(name)}.json"
            if cache.exists():
                saved = json.loads(cache.read_text())
                pu = {m: np.asarray(v) for m, v in saved["per_user"].items()}
                info = saved["info"]
            elif only is None or name in only:
                pu, info = cold_row(name, train, test, is_new, users)
                payload = {"per_user": {m: v.tolist() for m, v in pu.items()}, "info": info}
                cache.write_text(json.dumps(payload))
                print(f"draw {draw} {name:28s} ndcg@10={np.mean(pu['ndcg@10']):.4f} {info}")
            else:
                continue
            per_draw[name].append(pu)
            epochs[name].append(info.get("best_epoch"))
    complete = {n: v for n, v in per_draw.items() if len(v) == args.cold_draws}
    per_user = {
        n: {m: np.concatenate([d[m] for d in v]) for m in ("ndcg@10", "hit_rate@10")}
        for n, v in complete.items()
    }
    infos = {  # '-' for a model without epochs (text2cf)
        n: {"best_epoch": "/".join(map(str, epochs[n])) if any(epochs[n]) else "-"}
        for n in complete
    }
    pairs = [(a, "lmrec text2cf") for a in per_user if a != "lmrec text2cf"]
    pairs += [  # each model with epochs chosen on new items against itself stopped on known ones
        (a, a.replace(", epochs on new items", ""))
        for a in per_user
        if "epochs on new items" in a and a.replace(", epochs on new items", "") in per_user
    ]
    if ID_TEXT in per_user:  # id+text with one setting changed against its defaults
        pairs += [(a, ID_TEXT) for a in ID_TEXT_VARIANTS if a in per_user]
    if CONTENT_POPULARITY in per_user:  # every model against the list without personalisation
        pairs += [(a, CONTENT_POPULARITY) for a in per_user if a.startswith("lmrec")]
    table, diffs = summarise(per_user, infos, pairs)
    table = table.rename(columns={"hit_rate@10": "recall@20"}).drop(columns="fit_s")
    md = (
        "\n".join(f"- {h}" for h in header)
        + "\n\nUsers of every draw pooled (a user once per draw); best epoch per draw.\n\n"
        + markdown(table)
        + "\n\n"
        + "\n".join(
            f"- {d['a']} / {d['b']}: ratio {d['ratio']:.3f}, NDCG@10 diff {d['mean_diff']:+.4f} "
            f"[{d['low']:+.4f}, {d['high']:+.4f}]"
            for d in diffs
        )
    )
    suffix = "" if args.cold_draws == 5 else f"_{args.cold_draws}draws"  # 5: the default
    (RESULTS / f"sequential_cold{suffix}.md").write_text(md + "\n")
    print(md)


def run_cost(args: argparse.Namespace) -> None:
    """Seconds to the best validation epoch and for the top-20 of all users, vs an EASE fit.

    With ``--devices cpu,cuda`` the same sasrec (same seed, same split) is trained on each
    device in turn: the CUDA speed-up is a ratio of two runs of one process on one machine.
    """
    task = Task(movielens("input"))
    start = time.perf_counter()
    create_model("ease", {"l2": 400}).fit(task.split.train)
    ease_s = time.perf_counter() - start
    out: dict[str, object] = {"ease_fit_s": ease_s}
    for device in args.devices.split(","):
        name = "sasrec" if device == "auto" else f"sasrec[{device}]"
        model = create_model("sasrec", {"device": device, "seed": 0})
        start = time.perf_counter()
        model.fit(task.split.train, valid=task.split.valid)
        total = time.perf_counter() - start
        best = model.history_[model.best_epoch_ - 1]
        users = model.user_ids_.ids
        start = time.perf_counter()
        model.recommend(users, k=20)
        known_s = time.perf_counter() - start
        sequences = task.history.rows(np.arange(task.ds.n_users))
        start = time.perf_counter()
        model.recommend_for_items([list(model.item_ids_.lookup(s)) for s in sequences], k=20)
        session_s = time.perf_counter() - start
        ndcg = float(np.mean(task.evaluate(model.score_sequences(sequences))["ndcg@10"]))
        out[name] = {
            "fit_s": total,
            "best_epoch": model.best_epoch_,
            "to_best_epoch_s": best["elapsed_s"],
            "epochs": len(model.history_),
            "examples_per_s": float(np.mean([h["examples_per_s"] for h in model.history_])),
            "top20_all_users_s": known_s,
            "top20_all_sessions_s": session_s,
            "test_ndcg@10": ndcg,
        }
        print(name, out[name], f"(EASE fit {ease_s:.2f}s)", flush=True)
    suffix = "" if args.devices == "auto" else "_" + args.devices.replace(",", "_")
    (RESULTS / f"sequential_cost{suffix}.json").write_text(json.dumps(out, indent=2))


def run_scale(args: argparse.Namespace) -> None:
    """One sasrec epoch (sampled softmax) per synthetic log size: examples/s, seconds/epoch."""
    from lmrec.data.synthetic import synthetic_interactions

    out = []
    for n in [int(float(x)) for x in args.sizes.split(",")]:
        ds = synthetic_interactions(n // 50, 20_000, n, seed=0, with_text=False)
        model = create_model(
            "sasrec", {"epochs": 1, "loss": "sampled", "n_negatives": 1024, "batch_size": 256}
        )
        start = time.perf_counter()
        model.fit(ds)
        h = model.history_[0]
        row = {
            "events": n,
            "users": ds.n_users,
            "items": ds.n_items,
            "epoch_s": h["seconds"],
            "examples_per_s": h["examples_per_s"],
            "fit_s": time.perf_counter() - start,
        }
        out.append(row)
        print(row, flush=True)
    (RESULTS / "sequential_scale.json").write_text(json.dumps(out, indent=2))


WRK_LUA = """
local bodies = {}
for line in io.lines(os.getenv("SESSIONS")) do bodies[#bodies + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/recommend", {["Content-Type"] = "application/json"},
                    bodies[(n % #bodies) + 1])
end
"""


def run_serve(args: argparse.Namespace) -> None:
    """p50/p99 of /v1/recommend for 50-item sessions under wrk (sasrec vs an EASE reference)."""
    import shutil
    import socket
    import tempfile
    import urllib.request

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    task = Task(movielens("input"))
    tmp = Path(tempfile.mkdtemp(prefix="lmrec-seq-serve-"))
    rng = np.random.default_rng(SEED)
    long_users = np.flatnonzero(task.history.lengths() >= 50)
    with open(tmp / "sessions.txt", "w") as f:  # 2,000 distinct 50-item sessions, in order
        for u in rng.choice(long_users, 2000):
            items = task.ds.item_ids.lookup(task.history.of(int(u))[-50:]).astype(str).tolist()
            f.write(json.dumps({"items": items, "k": 20}) + "\n")
    (tmp / "session.lua").write_text(WRK_LUA)
    (tmp / "serve.toml").write_text("cache_size = 0\n")
    out = {}
    # latency does not depend on how long sasrec trained: 2 epochs of the default architecture
    for name, params in (("ease", {"l2": 100}), ("sasrec", {"epochs": 2})):
        model = create_model(name, params).fit(task.train_valid)
        model.save(tmp / name)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        lmrec = Path(sys.executable).with_name("lmrec")
        server = subprocess.Popen(
            [
                str(lmrec),
                "serve",
                str(tmp / name),
                "--no-auth",
                "--port",
                str(port),
                "--store",
                f"sqlite:///{tmp / name}.db",
                "--config",
                str(tmp / "serve.toml"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            out[name] = {}
            for conns in (1, 2):
                res = subprocess.run(
                    [
                        "wrk",
                        "-t1",
                        f"-c{conns}",
                        f"-d{args.duration}s",
                        "--latency",
                        "-s",
                        str(tmp / "session.lua"),
                        f"http://127.0.0.1:{port}",
                    ],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "SESSIONS": str(tmp / "sessions.txt")},
                    check=True,
                )
                out[name][f"c{conns}"] = _wrk_numbers(res.stdout)
                print(name, conns, out[name][f"c{conns}"], flush=True)
        finally:
            server.terminate()
            server.wait(30)
    (RESULTS / "sequential_serve.json").write_text(json.dumps(out, indent=2))


def _wrk_numbers(text: str) -> dict[str, float]:
    """p50/p99 (ms), requests/s and non-2xx count from ``wrk --latency`` output."""
    import re

    def ms(value: str) -> float:
        num, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(num) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]

    got = {f"p{p}_ms": ms(m) for p, m in re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M)}
    got["requests_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    got["non_2xx"] = float(bad.group(1)) if bad else 0.0
    return got


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--part",
        default="quality",
        choices=["quality", "seeds", "cold", "cost", "scale", "serve"],
    )
    p.add_argument("--seeds", default="0,1,2", help="--part seeds: training seeds")
    p.add_argument("--duration", type=int, default=20, help="--part serve: seconds per wrk run")
    p.add_argument("--ties", default="input", choices=["input", "random"])
    p.add_argument(
        "--rows",
        help="row names to run, separated by ';' (names contain commas; default: all)",
    )
    p.add_argument("--no-peers", dest="peers", action="store_false")
    p.add_argument(
        "--cached-only",
        action="store_true",
        help="assemble the table from rows already computed (run nothing)",
    )
    p.add_argument(
        "--reuse-committed",
        action="store_true",
        help="--part quality: rows that --rows does not name keep their committed per-user "
        "results (results/sequential_<ties>_per_user.npz), e.g. peers whose virtualenv is "
        "not on this machine",
    )
    p.add_argument(
        "--peer-libs",
        default="recbole,rectools",
        help="comma-separated peer libraries to run or read (recbole, rectools)",
    )
    p.add_argument(
        "--peer-epochs",
        type=int,
        default=300,
        help="most epochs of a peer's validation run (RecBole; RecTools SASRec, lmrec arch)",
    )
    p.add_argument(
        "--peer-stopping",
        type=int,
        default=SequenceConfig.model_fields["patience"].default,
        help="a peer's validation run stops after this many epochs without a better valid "
        "NDCG@10 (default: lmrec's sequence models' patience)",
    )
    p.add_argument(
        "--cold-draws",
        type=int,
        default=5,
        help="--part cold: seeded draws of the new items (each trains every row)",
    )
    p.add_argument("--sizes", default="1e6,3e6,1e7", help="--part scale: events per run")
    p.add_argument(
        "--devices",
        default="auto",
        help="--part cost: comma-separated sasrec devices, each trained in turn "
        "(e.g. cpu,cuda for the CUDA speed-up; default: auto)",
    )
    args = p.parse_args()
    RESULTS.mkdir(exist_ok=True)
    parts = {
        "quality": run_quality,
        "seeds": run_seeds,
        "cold": run_cold,
        "cost": run_cost,
        "scale": run_scale,
        "serve": run_serve,
    }
    parts[args.part](args)


if __name__ == "__main__":
    main()
