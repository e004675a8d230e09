"""RecBole 1.2.1 sequence models as peers of benchmarks/sequential.py (run in RecBole's own venv).

Not part of lmrec: RecBole pins an old ``ray`` and breaks with NumPy 2 (see
shared/DESIGN.md), so it runs in its own virtualenv (``benchmarks/peers/setup.sh``)
and talks to the benchmark through files only:

input  ``DIR/seq/seq.inter`` -- every interaction of the split (train, valid, test) with a
       synthetic timestamp: the rank of the row in *lmrec's* order of the user's history
       (ties already broken), so RecBole's ``order: TO`` + ``LS valid_and_test`` split gives
       exactly lmrec's leave-one-out split (last item test, second-to-last valid);
output ``OUT.npz`` -- ``scores`` (n_users, n_items) float32 of the test step (history = train
       + valid, as RecBole's own test), with ``users`` and ``items`` (tokens) giving the
       rows and columns, plus ``best_epoch``, ``epochs`` and ``seconds``.

The benchmark then applies lmrec's exclusion and metrics to these scores, like every
other row. RecBole's early stopping uses its own validation NDCG@10 (full ranking).

Usage: python recbole_seq.py DIR MODEL LOSS OUT [--epochs N] [--stopping-step N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

# RecBole 1.2.1 still uses the NumPy aliases removed in NumPy 2.
np.float_ = np.float64  # type: ignore[attr-defined]
np.complex_ = np.complex128  # type: ignore[attr-defined]
np.unicode_ = np.str_  # type: ignore[attr-defined]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("model", choices=["SASRec", "GRU4Rec", "BERT4Rec"])
    p.add_argument("loss", choices=["CE", "BPR"])
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--stopping-step", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=2020)
    args = p.parse_args()

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import get_model, init_seed

    torch.set_num_threads(args.threads)
    params = {
        "data_path": args.data_dir,
        "dataset": "seq",
        "use_gpu": False,
        "seed": args.seed,
        "state": "WARNING",
        "show_progress": False,
        "epochs": args.epochs,
        "stopping_step": args.stopping_step,
        "checkpoint_dir": f"{args.out}.ckpt",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "mode": "full",
            "group_by": "user",
        },
        "metrics": ["NDCG", "Hit"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "loss_type": args.loss,
        "MAX_ITEM_LIST_LENGTH": 50,
        "train_neg_sample_args": (
            None if args.loss == "CE" else {"distribution": "uniform", "sample_num": 1}
        ),
    }
    config = Config(model=args.model, dataset="seq", config_dict=params)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train.dataset).to(config["device"])
    trainer = Trainer(config, model)
    start = time.perf_counter()

    def after_validation(epoch: int, valid_score: float) -> None:
        # the best scores so far, after every validation: a run stopped early (a time
        # budget) still leaves its best-so-far result, marked with the epochs it had
        if epoch == trainer.best_epoch_seen:
            write_scores(args, torch, trainer, model, dataset, test, start, finished=False)

    trainer.best_epoch_seen = -1
    original = trainer._save_checkpoint

    def save_and_mark(epoch: int, *a: object, **kw: object) -> None:
        original(epoch, *a, **kw)
        trainer.best_epoch_seen = epoch

    trainer._save_checkpoint = save_and_mark
    trainer.fit(train, valid, saved=True, show_progress=False, callback_fn=after_validation)
    write_scores(args, torch, trainer, model, dataset, test, start, finished=True)


def write_scores(args, torch, trainer, model, dataset, test, start, finished: bool) -> None:
    """Test-step scores of the best weights so far (RecBole saves them) to ``OUT.npz``."""
    seconds = time.perf_counter() - start
    # our own checkpoint file, so weights_only=False is safe here
    state = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(state["state_dict"])
    model.eval()
    n_items = dataset.item_num
    users, rows = [], []
    with torch.no_grad():
        for batch in test:
            interaction = batch[0]
            scores = model.full_sort_predict(interaction).view(-1, n_items)
            users.append(interaction["user_id"].numpy())
            rows.append(scores.float().numpy())
    uid = np.concatenate(users)
    scores = np.concatenate(rows)[:, 1:]  # column 0 is RecBole's padding item
    np.savez(
        f"{args.out}.partial.npz" if not finished else f"{args.out}.npz",
        scores=scores.astype(np.float32),
        users=np.asarray(dataset.id2token("user_id", uid), dtype=str),
        items=np.asarray(dataset.id2token("item_id", np.arange(1, n_items)), dtype=str),
        meta=json.dumps(
            {
                "best_epoch": trainer.best_epoch_seen + 1,
                "epochs": len(trainer.train_loss_dict),
                "seconds": seconds,
                "finished": finished,
                "best_valid_ndcg@10": float(trainer.best_valid_score),
            }
        ),
    )
    model.train()


if __name__ == "__main__":
    main()
