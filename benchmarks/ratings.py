"""Rating prediction on MovieLens-100K: lmrec's rating models against scikit-surprise, 5-fold.

Protocol (issue 22.6): the 100,000 ratings are split into 5 folds by one seeded
permutation (``--seed``, default 2026); each fold is the test set once, the other four
train. Every model sees exactly the same folds: lmrec's ``biasedmf`` and
``knnbaseline`` (default parameters) in this process, scikit-surprise's ``SVD``,
``SVDpp`` and ``KNNBaseline`` (their defaults, as in Surprise's published table) in a
separate Python (``--surprise-python``, a virtual environment where
``scikit-surprise`` installs; it does not need lmrec) reading the same fold files.
A test pair whose user or item is not in the fold's training data is predicted as
the training mean by lmrec (Surprise uses its baselines there). RMSE and MAE are
averaged over the folds; Surprise's published anchors are SVD 0.934, SVD++ 0.919,
KNNBaseline 0.931. Times are fit + predict seconds per fold on this machine, reported
as ratios to Surprise's SVD measured in the same run.

Command (wrapped in the benchmark lock; ~5 minutes on 2 idle cores, SVD++ dominates)::

    python3 -m venv /tmp/surprise && /tmp/surprise/bin/pip install numpy scikit-surprise
    flock /tmp/lmrec-bench.lock .venv/bin/python benchmarks/ratings.py \\
        --surprise-python /tmp/surprise/bin/python

Writes ``benchmarks/results/ratings.json`` and ``ratings.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
PUBLISHED = {"surprise SVD": 0.934, "surprise SVD++": 0.919, "surprise KNNBaseline": 0.931}

# Runs inside the Surprise environment: reads fold CSVs, prints one JSON line per model/fold.
SURPRISE_SCRIPT = r"""
import json, sys, time
import pandas as pd
from surprise import SVD, SVDpp, KNNBaseline, Dataset, Reader, accuracy
folder, n_folds, only = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
reader = Reader(rating_scale=(1, 5))
algos = {"surprise SVD": lambda: SVD(random_state=0), "surprise SVD++": lambda: SVDpp(random_state=0),
         "surprise KNNBaseline": lambda: KNNBaseline(verbose=False)}
for fold in range(n_folds):
    tr = pd.read_csv(f"{folder}/train{fold}.csv", dtype={"user": str, "item": str})
    te = pd.read_csv(f"{folder}/test{fold}.csv", dtype={"user": str, "item": str})
    trainset = Dataset.load_from_df(tr[["user", "item", "rating"]], reader).build_full_trainset()
    testset = list(te[["user", "item", "rating"]].itertuples(index=False, name=None))
    for name, make in algos.items():
        if name not in only:
            continue
        t = time.perf_counter()
        algo = make(); algo.fit(trainset); pred = algo.test(testset)
        secs = time.perf_counter() - t
        print(json.dumps({"model": name, "fold": fold, "rmse": accuracy.rmse(pred, verbose=False),
                          "mae": accuracy.mae(pred, verbose=False), "seconds": secs}), flush=True)
"""


def folds(frame: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each rating: one seeded permutation cut into equal parts."""
    order = np.random.default_rng(seed).permutation(len(frame))
    out = np.empty(len(frame), np.int64)
    out[order] = np.arange(len(frame)) % n_folds
    return out


def run_lmrec(
    frame: pd.DataFrame, fold_of: np.ndarray, n_folds: int, models: list[str]
) -> list[dict]:
    """Fit each lmrec rating model on each fold's training part and score its test part."""
    from lmrec.data import Dataset
    from lmrec.models import create_model

    rows = []
    for fold in range(n_folds):
        tr, te = frame[fold_of != fold], frame[fold_of == fold]
        train = Dataset.from_frame(tr, name=f"train{fold}")
        y = te["rating"].to_numpy(np.float64)
        for name in models:
            start = time.perf_counter()
            model = create_model(name).fit(train)
            u = model.user_ids_.index(te["user"], on_unknown="ignore")
            i = model.item_ids_.index(te["item"], on_unknown="ignore")
            known = (u >= 0) & (i >= 0)
            pred = np.full(len(te), float(tr["rating"].mean()))
            pred[known] = model.predict_ratings(u[known], i[known])
            secs = time.perf_counter() - start
            rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
            rows.append(
                {
                    "model": f"lmrec {name}",
                    "fold": fold,
                    "rmse": rmse,
                    "mae": float(np.mean(np.abs(pred - y))),
                    "seconds": secs,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def run_surprise(
    python: str, frame: pd.DataFrame, fold_of: np.ndarray, n_folds: int, only: list[str]
) -> list[dict]:
    """Write the folds and run Surprise in its own interpreter on them."""
    with tempfile.TemporaryDirectory() as tmp:
        for fold in range(n_folds):
            frame[fold_of != fold].to_csv(f"{tmp}/train{fold}.csv", index=False)
            frame[fold_of == fold].to_csv(f"{tmp}/test{fold}.csv", index=False)
        script = Path(tmp) / "run.py"
        script.write_text(SURPRISE_SCRIPT)
        proc = subprocess.run(
            [python, str(script), tmp, str(n_folds), ",".join(only)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(f"Surprise run failed:\n{proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def summarise(rows: list[dict]) -> pd.DataFrame:
    """Mean and spread over folds per model, with the published anchor and time ratio."""
    df = pd.DataFrame(rows)
    table = df.groupby("model").agg(
        rmse=("rmse", "mean"),
        rmse_sd=("rmse", "std"),
        mae=("mae", "mean"),
        seconds=("seconds", "mean"),
    )
    table["published_rmse"] = [PUBLISHED.get(m, np.nan) for m in table.index]
    ref = table["seconds"].get("surprise SVD", np.nan)
    table["time_vs_surprise_svd"] = table["seconds"] / ref
    return table.sort_values("rmse")


def markdown(frame: pd.DataFrame, index: bool = True) -> str:
    """A GitHub markdown table (floats to 4 decimals) without the tabulate dependency."""
    df = frame.reset_index() if index else frame
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surprise-python", help="Python of an environment with scikit-surprise")
    parser.add_argument(
        "--surprise-models", default="surprise SVD,surprise SVD++,surprise KNNBaseline"
    )
    parser.add_argument("--models", default="biasedmf,knnbaseline")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    from lmrec.data.sources import load_builtin

    frame = load_builtin("ml-100k").to_frame()[["user", "item", "rating"]]
    fold_of = folds(frame, args.folds, args.seed)
    rows = run_lmrec(frame, fold_of, args.folds, args.models.split(","))
    if args.surprise_python:
        rows += run_surprise(
            args.surprise_python, frame, fold_of, args.folds, args.surprise_models.split(",")
        )
    table = summarise(rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ratings.json").write_text(
        json.dumps({"folds": args.folds, "seed": args.seed, "rows": rows}, indent=1)
    )
    md = markdown(table)
    (RESULTS / "ratings.md").write_text(
        f"# Rating prediction, MovieLens-100K, {args.folds}-fold (seed {args.seed})\n\n{md}\n"
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    best_lmrec = table[table.index.str.startswith("lmrec")]["rmse"].min()
    surprise = table[table.index.str.startswith("surprise")]["rmse"]
    anchor = surprise.min() if len(surprise) else min(PUBLISHED.values())
    where = "measured" if len(surprise) else "published"
    print(
        f"best lmrec RMSE {best_lmrec:.4f} vs best Surprise ({where}) {anchor:.4f}: "
        f"{'below' if best_lmrec < anchor else 'NOT below'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
