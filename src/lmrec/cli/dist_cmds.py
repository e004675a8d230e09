"""Scaling-out flags of ``lmrec train``: ``--distributed`` (torchrun) and ``--engine spark``.

.. code-block:: console

    torchrun --nproc-per-node 2 -m lmrec train --data train.csv --model bpr --out m --distributed
    lmrec train --engine spark --master local[4] --data train.parquet --model als --out m

Under torchrun every rank parses, validates and reads the data; only rank 0 writes the
model directory and prints.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from lmrec.errors import ConfigError

SPARK_MODELS = ("als",)


def add_distributed_flag(p: argparse.ArgumentParser) -> None:
    """``--distributed``, ``--checkpoint-dir``, ``--engine`` and ``--master``."""
    g = p.add_argument_group("scaling out")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel training across the ranks of a torchrun launch "
                   "(models with a 'distributed' setting, e.g. bpr); rank 0 saves")  # fmt: skip
    g.add_argument("--checkpoint-dir",
                   help="save a checkpoint here after every epoch and resume from it "
                   "(any number of ranks); torch models only")  # fmt: skip
    g.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="with --checkpoint-dir: also checkpoint every STEPS optimizer steps "
                   "inside an epoch (resume mid-epoch, e.g. under torchrun --max-restarts)")  # fmt: skip
    g.add_argument("--device", choices=["auto", "cpu", "cuda"],
                   help="where torch models train (bpr, fm, twotower): 'auto' is CUDA when "
                   "available; data loading and negative sampling stay on the CPU")  # fmt: skip
    g.add_argument("--engine", default="local", choices=["local", "spark"],
                   help="'spark' fits with Spark MLlib (models: als) and saves an ordinary "
                   "lmrec model; needs lmrec[spark] and Java")  # fmt: skip
    g.add_argument("--master", help="Spark master URL (default local[2]); with --engine spark")


def scaling_params(
    args: argparse.Namespace, model_name: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Check the scaling flags against the model (before any data is read); returns ``params``.

    ``--distributed`` becomes the model's ``distributed=True`` setting, ``--device`` its
    ``device``.
    """
    from lmrec.models.config import build_config
    from lmrec.models.registry import get_model_class
    from lmrec.train.distributed import launched_by_torchrun

    fields = get_model_class(model_name).config_class.model_fields
    engine = getattr(args, "engine", "local")
    if getattr(args, "master", None) and engine != "spark":
        raise ConfigError("--master goes with --engine spark.")
    if engine == "spark":
        if model_name not in SPARK_MODELS:
            raise ConfigError(
                f"--engine spark fits {', '.join(SPARK_MODELS)}; got --model {model_name!r}."
            )
        if getattr(args, "distributed", False) or getattr(args, "checkpoint_dir", None):
            raise ConfigError("--distributed and --checkpoint-dir are for torch models, not Spark.")
        if getattr(args, "dataset", None):
            raise ConfigError("--engine spark reads --data FILE (any path Spark can read).")
        return params
    if getattr(args, "device", None):
        if "device" not in fields:
            raise ConfigError(f"Model {model_name!r} has no device setting; drop --device.")
        params = {**params, "device": args.device}
    if launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1 and not args.distributed:
        raise ConfigError(
            f"lmrec train was launched by torchrun with {os.environ['WORLD_SIZE']} processes "
            "but without --distributed: each would train the whole model alone. Add "
            "--distributed (models: bpr, fm, twotower) or run it without torchrun."
        )
    if getattr(args, "distributed", False):
        if "distributed" not in fields:
            raise ConfigError(
                f"Model {model_name!r} has no distributed training; drop --distributed."
            )
        params = {**params, "distributed": True}
        build_config(get_model_class(model_name).config_class, params)
    if getattr(args, "checkpoint_dir", None) and not _checkpoints(model_name):
        raise ConfigError(f"Model {model_name!r} does not checkpoint; drop --checkpoint-dir.")
    every = getattr(args, "checkpoint_every", None)
    if every is not None and (every < 1 or not getattr(args, "checkpoint_dir", None)):
        raise ConfigError("--checkpoint-every takes a step count >= 1 and needs --checkpoint-dir.")
    if every is not None and not _checkpoints(model_name, "checkpoint_every"):
        raise ConfigError(
            f"Model {model_name!r} sets its checkpoint interval in its config; "
            "drop --checkpoint-every (e.g. --param checkpoint_every=N)."
        )
    return params


def _checkpoints(model_name: str, arg: str = "checkpoint_dir") -> bool:
    """Whether the model's ``fit`` takes ``arg`` (``checkpoint_dir``: bpr, fm, ranker)."""
    import inspect

    from lmrec.models.registry import get_model_class

    return arg in inspect.signature(get_model_class(model_name).fit).parameters


def fit(model: Any, dataset: Any, args: argparse.Namespace) -> Any:
    """``model.fit(dataset)``, passing ``--checkpoint-dir`` along; leaves the process group after."""
    from lmrec.train.distributed import cleanup_distributed

    if getattr(args, "checkpoint_dir", None):
        every = getattr(args, "checkpoint_every", None)
        extra = {} if every is None else {"checkpoint_every": every}
        model.fit(dataset, checkpoint_dir=Path(args.checkpoint_dir), **extra)
    else:
        model.fit(dataset)
    if getattr(args, "distributed", False):
        cleanup_distributed()  # the model is complete on every rank; saving needs no group
    return model


def is_main_process() -> bool:
    """Whether this process saves and prints: rank 0 of a torchrun launch, or no launcher.

    Read from torchrun's ``RANK`` rather than the process group, which :func:`fit` has
    already left.
    """
    return os.environ.get("RANK", "0") == "0"


def train_spark(args: argparse.Namespace, params: dict[str, Any]) -> Any:
    """Fit ``--model als`` with Spark on ``--data``; the read flags name the columns."""
    from lmrec.cli._common import check_input
    from lmrec.models.als import ALSConfig
    from lmrec.spark import spark_train_als

    if "://" not in str(args.data):
        check_input(args.data, "Interaction file")
    if params.get("regularization_scaling", "count") != "count":
        raise ConfigError(
            "Spark's ALS always scales the penalty by each row's interaction count "
            "(regularization_scaling=count); drop the parameter or use the local engine."
        )
    cfg = ALSConfig(**params)
    sep = None if args.sep is None else ("\t" if args.sep in ("\\t", "tab") else args.sep)
    return spark_train_als(
        args.data, factors=cfg.factors, regularization=cfg.regularization, alpha=cfg.alpha,
        iterations=cfg.iterations, seed=cfg.seed, master=args.master or "local[2]",
        user_col=args.user_col, item_col=args.item_col, weight_col=args.weight_col, sep=sep,
    )  # fmt: skip
