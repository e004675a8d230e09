"""RecTools' SASRec as a peer of benchmarks/sequential.py (run in its own virtualenv).

Reads the same ``DIR/seq/seq.inter`` as the RecBole adapter (timestamps = rank in lmrec's
order). RecTools has no early stopping: it trains ``--epochs`` epochs (its default 3, or
the count given) on train + valid (each user's history without the last item) and
writes each user's top-``k`` list (seen items filtered, its own ``filter_viewed``) to
``OUT.npz`` (``users``, ``items`` (n_users, k) tokens, ``seconds``) for the benchmark's
shared metric code.

Usage: python rectools_sasrec.py DIR OUT [--epochs N] [--k 10]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from rectools import Columns
    from rectools.dataset import Dataset
    from rectools.models import SASRecModel

    inter = pd.read_csv(f"{args.data_dir}/seq/seq.inter", sep="\t", dtype={0: str, 1: str})
    inter.columns = ["user", "item", "rank"]
    last = inter.groupby("user")["rank"].transform("max")
    # users with fewer than 3 items keep everything in train (lmrec's leave-one-out rule)
    count = inter.groupby("user")["rank"].transform("size")
    train = inter[(inter["rank"] < last) | (count < 3)]
    frame = pd.DataFrame(
        {
            Columns.User: train["user"],
            Columns.Item: train["item"],
            Columns.Weight: 1.0,
            Columns.Datetime: pd.Timestamp("2020-01-01") + pd.to_timedelta(train["rank"], "s"),
        }
    )
    dataset = Dataset.construct(frame)
    model = SASRecModel(epochs=args.epochs, deterministic=True, verbose=0)
    start = time.perf_counter()
    import torch

    torch.manual_seed(args.seed)  # this process is ours: RecTools seeds through torch
    model.fit(dataset)
    seconds = time.perf_counter() - start
    users = inter["user"].unique()
    recs = model.recommend(users=users, dataset=dataset, k=args.k, filter_viewed=True)
    recs = recs.sort_values([Columns.User, Columns.Rank])
    table = np.full((len(users), args.k), "", dtype=object)
    pos = {u: i for i, u in enumerate(users)}
    for u, g in recs.groupby(Columns.User):
        table[pos[u], : len(g)] = g[Columns.Item].astype(str).to_numpy()
    np.savez(
        args.out,
        users=users.astype(str),
        items=table.astype(str),
        meta=json.dumps({"seconds": seconds, "epochs": args.epochs}),
    )


if __name__ == "__main__":
    main()
