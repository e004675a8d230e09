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


def add_distributed_flag(p: argparse.ArgumentParser) -> None:
    """``--distributed``, ``--checkpoint-dir``, ``--engine`` and ``--master``."""
    g = p.add_argument_group("scaling out")
    g.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training across the ranks of a torchrun launch "
        "(models with a 'distributed' setting, e.g. bpr); rank 0 saves",
    )
    g.add_argument(
        "--checkpoint-dir",
        help="save a checkpoint here after every epoch and resume from it "
        "(any number of ranks); torch models only",
    )
    g.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="with --checkpoint-dir: also checkpoint every STEPS optimizer steps "
        "inside an epoch (resume mid-epoch, e.g. under torchrun --max-restarts)",
    )
    g.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        help="where torch models train (bpr, fm, twotower): 'auto' is CUDA when "
        "available; data loading and negative sampling stay on the CPU",
    )
    g.add_argument(
        "--engine",
        default="local",
        choices=["local", "spark"],
        help="'spark' fits with Spark MLlib (models: als) and saves an ordinary "
        "lmrec model; needs lmrec[spark] and Java",
    )
    g.add_argument("--master", help="Spark master URL (default local[2]); with --engine spark")


def scaling_params(
    args: argparse.Namespace, model_name: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Check the scaling flags against the model (before any data is read); returns ``params``.

    ``--distributed`` becomes the model's ``distributed=True`` setting, ``--device`` its
    ``device``.
    """
    from lmrec.models.capabilities import (
        CheckpointedModel,
        DistributedModel,
        SparkEngineModel,
        supports,
    )
    from lmrec.models.config import build_config
    from lmrec.models.registry import get_model_class, models_supporting
    from lmrec.train.distributed import launched_by_torchrun

    cls = get_model_class(model_name)
    engine = getattr(args, "engine", "local")
    if getattr(args, "master", None) and engine != "spark":
        raise ConfigError("--master goes with --engine spark.")
    if engine == "spark":
        if not supports(cls, SparkEngineModel):
            raise ConfigError(
                f"--engine spark fits {', '.join(models_supporting(SparkEngineModel))}; "
                f"got --model {model_name!r}."
            )
        if getattr(args, "distributed", False) or getattr(args, "checkpoint_dir", None):
            raise ConfigError("--distributed and --checkpoint-dir are for torch models, not Spark.")
        if getattr(args, "dataset", None):
            raise ConfigError("--engine spark reads --data FILE (any path Spark can read).")
        return params
    torch_models = ", ".join(models_supporting(DistributedModel))
    if getattr(args, "device", None):
        if not supports(cls, DistributedModel):
            raise ConfigError(
                f"Model {model_name!r} does not train with torch; drop --device "
                f"(models with --device: {torch_models})."
            )
        params = {**params, "device": args.device}
    if launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1 and not args.distributed:
        raise ConfigError(
            f"lmrec train was launched by torchrun with {os.environ['WORLD_SIZE']} processes "
            "but without --distributed: each would train the whole model alone. Add "
            f"--distributed (models: {torch_models}) or run it without torchrun."
        )
    if getattr(args, "distributed", False):
        if not supports(cls, DistributedModel):
            raise ConfigError(
                f"Model {model_name!r} has no distributed training; drop --distributed "
                f"(models with --distributed: {torch_models})."
            )
        params = {**params, "distributed": True}
        build_config(cls.config_class, params)
    checkpoints = supports(cls, CheckpointedModel)
    if getattr(args, "checkpoint_dir", None) and not checkpoints:
        raise ConfigError(
            f"Model {model_name!r} does not checkpoint; drop --checkpoint-dir (models that "
            f"do: {', '.join(models_supporting(CheckpointedModel))})."
        )
    every = getattr(args, "checkpoint_every", None)
    if every is not None and (every < 1 or not getattr(args, "checkpoint_dir", None)):
        raise ConfigError("--checkpoint-every takes a step count >= 1 and needs --checkpoint-dir.")
    # checkpoint_steps: a class attribute of CheckpointedModel, which `checkpoints` found
    # among the bases (mypy cannot narrow a class object to a protocol's class).
    if every is not None and not (checkpoints and cls.checkpoint_steps):  # type: ignore[attr-defined]
        raise ConfigError(
            f"Model {model_name!r} sets its checkpoint interval in its config; "
            "drop --checkpoint-every (e.g. --param checkpoint_every=N)."
        )
    return params


def fit(model: Any, dataset: Any, args: argparse.Namespace) -> Any:
    """``model.fit(dataset)``, passing ``--checkpoint-dir`` along; leaves the process group after."""
    from lmrec.models.capabilities import FitOptions
    from lmrec.train.distributed import cleanup_distributed

    ckpt = getattr(args, "checkpoint_dir", None)
    options = FitOptions(
        checkpoint_dir=None if ckpt is None else Path(ckpt),
        checkpoint_every=getattr(args, "checkpoint_every", None),
    )
    model.fit(dataset, options=options)
    if getattr(args, "distributed", False):
        cleanup_distributed()  # the model is complete on every rank; saving needs no group
    return model


def is_main_process() -> bool:
    """Whether this process saves and prints: rank 0 of a torchrun launch, or no launcher.

    Read from torchrun's ``RANK`` rather than the process group, which :func:`fit` has
    already left.
    """
    return os.environ.get("RANK", "0") == "0"


def train_spark(args: argparse.Namespace, model_name: str, params: dict[str, Any]) -> Any:
    """Fit ``--model`` with Spark on ``--data`` (models declaring SparkEngineModel); the
    read flags name the columns."""
    from lmrec.cli._common import check_input
    from lmrec.models.registry import get_model_class
    from lmrec.spark import spark_fit

    if "://" not in str(args.data):
        check_input(args.data, "Interaction file")
    sep = None if args.sep is None else ("\t" if args.sep in ("\\t", "tab") else args.sep)
    return spark_fit(
        get_model_class(model_name),
        args.data,
        params=params,
        master=args.master or "local[2]",
        user_col=args.user_col,
        item_col=args.item_col,
        weight_col=args.weight_col,
        sep=sep,
    )
