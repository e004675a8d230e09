"""RecTools' SASRec as a peer of benchmarks/sequential.py (run in its own virtualenv).

Reads the same ``DIR/seq/seq.inter`` as the RecBole adapter (timestamps = rank in lmrec's
order). RecTools has no early stopping of its own. Two modes:

fixed (default)
    Trains ``--epochs`` epochs (its default 3, or the count given) on train + valid (each
    user's history without the last item) and writes each user's top-``k`` list (seen
    items filtered, its own ``filter_viewed``) to ``OUT.npz`` (``users``, ``items``
    (n_users, k) tokens, ``meta``) for the benchmark's shared metric code.
validation (``--valid-epochs N``)
    Trains on train only (each user's history without the last two items), and after
    every epoch writes the top-``k`` lists of the validation step (history = train, train
    items filtered) and of the test step (the same model, history = train + valid) as
    ``valid_items`` / ``test_items`` (n_epochs, n_users, k); stops after ``N`` epochs or
    after ``--patience`` epochs without a better validation NDCG@10 (one target per
    user, ``1 / log2(rank + 2)``; the benchmark re-scores every epoch's lists with its
    shared code and picks the epoch). The random state is restored after each per-epoch
    evaluation, so epoch ``e`` of this run is the model a fixed run of ``e`` epochs on
    the same data gives.

Users with fewer than 3 items keep everything in train (lmrec's leave-one-out rule).
``--arch lmrec`` gives SASRec the architecture budget of lmrec's ``sasrec`` defaults
where RecTools exposes it (n_factors 64, 2 blocks, 2 heads, session_max_len 50, dropout
0.2, lr 5e-3, batch 128, its full-softmax loss, id embeddings only); ``--arch defaults``
keeps RecTools' own (n_factors 256, 4 heads, session_max_len 100). Seeded (``--seed``),
``deterministic=True``.

Usage: python rectools_sasrec.py DIR OUT [--arch defaults|lmrec [--lr LR]] [--epochs N]
       [--valid-epochs N --patience P] [--k 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
import typing as tp

import numpy as np
import pandas as pd

LMREC_ARCH = {
    "n_factors": 64,
    "n_blocks": 2,
    "n_heads": 2,
    "session_max_len": 50,
    "dropout_rate": 0.2,
    "lr": 5e-3,
    "batch_size": 128,
    "loss": "softmax",
}


def rectools_frame(part: pd.DataFrame) -> pd.DataFrame:
    """Interactions in RecTools' columns; the rank in lmrec's order is the time."""
    from rectools import Columns

    return pd.DataFrame(
        {
            Columns.User: part["user"],
            Columns.Item: part["item"],
            Columns.Weight: 1.0,
            Columns.Datetime: pd.Timestamp("2020-01-01") + pd.to_timedelta(part["rank"], "s"),
        }
    )


def top_lists(model: tp.Any, users: np.ndarray, dataset: tp.Any, k: int) -> np.ndarray:
    """(n_users, k) item tokens ('' padded), seen items of ``dataset`` filtered."""
    from rectools import Columns

    recs = model.recommend(users=users, dataset=dataset, k=k, filter_viewed=True)
    recs = recs.sort_values([Columns.User, Columns.Rank])
    table = np.full((len(users), k), "", dtype=object)
    pos = {u: i for i, u in enumerate(users)}
    for u, g in recs.groupby(Columns.User):
        table[pos[u], : len(g)] = g[Columns.Item].astype(str).to_numpy()
    return table.astype(str)


def ndcg_one(lists: np.ndarray, truth: np.ndarray) -> float:
    """Mean NDCG@k with one relevant item per user ('' where the user has none: skipped)."""
    has = truth != ""
    hit = lists[has] == truth[has, None]
    gains = (hit / np.log2(np.arange(lists.shape[1]) + 2)).sum(axis=1)
    return float(gains.mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("--arch", choices=["defaults", "lmrec"], default="defaults")
    p.add_argument("--epochs", type=int, default=3, help="fixed mode: epochs on train + valid")
    p.add_argument(
        "--valid-epochs",
        type=int,
        default=0,
        help="validation mode: most epochs on train, lists after each (0: fixed mode)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=10,
        help="validation mode: stop after this many epochs without a better validation NDCG@10",
    )
    p.add_argument("--lr", type=float, help="--arch lmrec: learning rate (default: lmrec's)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch
    from pytorch_lightning import Callback, Trainer
    from rectools.dataset import Dataset
    from rectools.models import SASRecModel

    inter = pd.read_csv(f"{args.data_dir}/seq/seq.inter", sep="\t", dtype={0: str, 1: str})
    inter.columns = ["user", "item", "rank"]
    from_end = inter.groupby("user")["rank"].transform("max") - inter["rank"]  # 0: last item
    short = inter.groupby("user")["rank"].transform("size") < 3
    users = inter["user"].unique()
    arch = LMREC_ARCH if args.arch == "lmrec" else {}
    if arch and args.lr is not None:
        arch = {**arch, "lr": args.lr}
    meta: dict[str, tp.Any] = {"arch": args.arch, **arch, "seed": args.seed}
    torch.manual_seed(args.seed)  # this process is ours: RecTools seeds through torch
    start = time.perf_counter()
    if not args.valid_epochs:
        dataset = Dataset.construct(rectools_frame(inter[(from_end > 0) | short]))
        model = SASRecModel(epochs=args.epochs, deterministic=True, verbose=0, **arch)
        model.fit(dataset)
        meta.update(seconds=time.perf_counter() - start, epochs=args.epochs)
        np.savez(
            args.out,
            users=users.astype(str),
            items=top_lists(model, users, dataset, args.k),
            meta=json.dumps(meta),
        )
        return

    train = Dataset.construct(rectools_frame(inter[(from_end > 1) | short]))
    train_valid = Dataset.construct(rectools_frame(inter[(from_end > 0) | short]))
    pos = {u: i for i, u in enumerate(users)}
    valid_truth = np.full(len(users), "", dtype=object)
    rows = inter[(from_end == 1) & ~short]
    valid_truth[[pos[u] for u in rows["user"]]] = rows["item"].to_numpy()
    valid_truth = valid_truth.astype(str)
    valid_lists: list[np.ndarray] = []
    test_lists: list[np.ndarray] = []
    curve: list[float] = []

    class EpochLists(Callback):
        """Top-k lists after every epoch (random state restored after); stops on patience."""

        def __deepcopy__(self, memo: dict) -> EpochLists:  # RecTools deep-copies its trainer
            return self

        def on_train_epoch_end(self, trainer: tp.Any, pl_module: tp.Any) -> None:
            rng = torch.get_rng_state()
            model.is_fitted = True  # recommend() mid-fit: the weights are this epoch's
            valid_lists.append(top_lists(model, users, train, args.k))
            test_lists.append(top_lists(model, users, train_valid, args.k))
            model.is_fitted = False
            pl_module.train()
            torch.set_rng_state(rng)  # its dataloaders draw a seed: training goes on as without
            curve.append(ndcg_one(valid_lists[-1], valid_truth))
            print(f"epoch {len(curve)} valid ndcg@10 {curve[-1]:.4f}", flush=True)
            if len(curve) - 1 - int(np.argmax(curve)) >= args.patience:
                trainer.should_stop = True

    def trainer() -> Trainer:
        return Trainer(
            max_epochs=args.valid_epochs,
            min_epochs=1,
            deterministic=True,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
            devices=1,
            callbacks=[EpochLists()],
        )

    model = SASRecModel(deterministic=True, verbose=0, get_trainer_func=trainer, **arch)
    model.fit(train)
    meta.update(seconds=time.perf_counter() - start, valid_ndcg_curve=curve)
    np.savez(
        args.out,
        users=users.astype(str),
        valid_items=np.stack(valid_lists),
        test_items=np.stack(test_lists),
        meta=json.dumps(meta),
    )


if __name__ == "__main__":
    main()
