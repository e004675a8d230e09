"""``lmrec finetune``: fine-tune the LM ranker (or a retrieve-then-rerank pipeline).

A front end to ``lmrec train --model ranker|pipeline`` with one flag per choice that
matters when fine-tuning (mode, LoRA rank/alpha/targets, few-shot size, bf16, side
features, checkpoints), instead of nested ``--param`` values. The result is an
ordinary model directory for ``lmrec recommend``, ``evaluate`` and ``serve``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from lmrec.cli._common import check_input, check_output, info, read_kwargs
from lmrec.cli.data_cmds import add_data_source, load_input
from lmrec.errors import ConfigError


def register(sub: Any) -> None:
    """Add ``lmrec finetune`` to the parser."""
    f = sub.add_parser(
        "finetune",
        help="fine-tune the LM cross-encoder ranker (LoRA, head-only or full)",
        description="Fine-tune a cross-encoder ranker on history prompts and save it. With "
        "--pipeline, a retriever's top-N is reranked (model 'pipeline'). Example: lmrec "
        "finetune --dataset ml-100k --mode lora --lora-r 8 --steps 200 --pipeline "
        "--candidates 20 --out models/pipe",
    )
    add_data_source(f)
    f.add_argument("--out", required=True, help="model directory to write")
    f.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    f.add_argument(
        "--base-model",
        default="all-MiniLM-L6-v2",
        help="encoder: the bundled default or a local transformers directory",
    )
    f.add_argument(
        "--mode",
        default="lora",
        choices=["lora", "head", "full"],
        help="what trains: LoRA adapters + head (default), head only, everything",
    )
    f.add_argument("--lora-r", type=int, default=8, help="LoRA rank (default 8)")
    f.add_argument("--lora-alpha", type=int, default=16, help="LoRA alpha (default 16)")
    f.add_argument(
        "--target-modules",
        default="query,value",
        help="comma-separated module names that get LoRA (default query,value)",
    )
    size = f.add_mutually_exclusive_group()
    size.add_argument("--shots", type=int, help="few-shot: train on exactly this many examples")
    size.add_argument(
        "--max-examples",
        type=int,
        default=4000,
        help="sub-sample the training examples to at most this many (default 4000)",
    )
    f.add_argument("--steps", type=int, default=200, help="optimiser steps (default 200)")
    f.add_argument(
        "--lr", type=float, help="peak learning rate (default 1e-3; head 3e-3; full 5e-5)"
    )
    f.add_argument(
        "--batch-size", type=int, default=16, help="examples per optimiser step (default 16)"
    )
    f.add_argument(
        "--grad-accum", type=int, default=1, help="micro-batches accumulated per step (default 1)"
    )
    f.add_argument("--max-length", type=int, default=128, help="tokens per prompt pair")
    f.add_argument("--n-history", type=int, default=10, help="history items in the prompt")
    f.add_argument(
        "--n-layers",
        type=int,
        help="keep only the first n transformer layers (faster; default all)",
    )
    f.add_argument("--bf16", action="store_true", help="bfloat16 autocast during training")
    f.add_argument(
        "--device",
        default="cpu",
        choices=["auto", "cpu", "cuda"],
        help="where fine-tuning runs (auto: CUDA when available; default cpu)",
    )
    f.add_argument(
        "--side-features",
        action="store_true",
        help="wide and deep: add item/user statistics as a linear term",
    )
    f.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="validation AUC every n steps, with early stopping (default off)",
    )
    f.add_argument("--checkpoint-dir", help="resumable checkpoints go here")
    f.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="with --checkpoint-dir: checkpoint every n steps (default 0: off)",
    )
    f.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the example draw, negatives and initialisation (default 0)",
    )
    p = f.add_argument_group("pipeline")
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="train a retrieve-then-rerank pipeline instead of a bare ranker",
    )
    p.add_argument("--retriever", default="ease", help="registered retriever (default ease)")
    p.add_argument(
        "--retriever-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="retriever hyperparameter, repeatable (e.g. l2=439)",
    )
    p.add_argument("--candidates", type=int, default=100, help="top-N reranked (default 100)")
    p.add_argument("--int8", action="store_true", help="score with the merged int8 ranker")
    p.add_argument(
        "--blend",
        type=float,
        default=0.0,
        help="weight of the retriever's score in the final score (default 0)",
    )
    p.add_argument("--valid", help="validation interactions: choose --blend on them (fit_blend)")
    f.set_defaults(func=cmd_finetune)


def ranker_params(args: argparse.Namespace) -> dict[str, Any]:
    """The LMRanker hyperparameters named by the flags (validated)."""
    from lmrec.models.config import build_config
    from lmrec.ranker.model import LMRankerConfig

    lr = args.lr if args.lr is not None else {"lora": 1e-3, "head": 3e-3, "full": 5e-5}[args.mode]
    targets = tuple(t.strip() for t in args.target_modules.split(",") if t.strip())
    if not targets:
        raise ConfigError("--target-modules names no module; e.g. --target-modules query,value")
    params: dict[str, Any] = {
        "model": args.base_model,
        "mode": args.mode,
        "lora_r": args.lora_r,
        "lora_alpha": args.lora_alpha,
        "target_modules": targets,
        "max_steps": args.steps,
        "warmup_steps": max(1, args.steps // 10),
        "lr": lr,
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "max_length": args.max_length,
        "n_history": args.n_history,
        "bf16": args.bf16,
        "side_features": args.side_features,
        "eval_every": args.eval_every,
        "checkpoint_every": args.checkpoint_every,
        "seed": args.seed,
        "n_layers": args.n_layers,
        "device": args.device,
    }
    if args.shots is not None:
        params["few_shot"] = args.shots
    else:
        params["max_examples"] = args.max_examples
    build_config(LMRankerConfig, params)
    return params


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune the ranker (or the pipeline) named by the flags and save it to ``--out``."""
    from lmrec.models.config import parse_params

    out = check_output(args.out, args.force, is_dir=True)
    ranker = ranker_params(args)
    valid = None
    if not args.pipeline and (args.valid or args.int8 or args.blend or args.retriever_param):
        raise ConfigError("--valid, --int8, --blend and --retriever-param need --pipeline.")
    if args.pipeline and args.checkpoint_dir:
        raise ConfigError("--checkpoint-dir works for a bare ranker; drop it or --pipeline.")
    if args.checkpoint_every and not args.checkpoint_dir:
        raise ConfigError(
            "--checkpoint-every needs --checkpoint-dir (where the checkpoints go); add it "
            "or drop --checkpoint-every."
        )
    if args.valid:
        from lmrec.data import load_dataset

        valid, _ = load_dataset(check_input(args.valid, "Validation file"), **read_kwargs(args))
    dataset = load_input(args)
    start = time.perf_counter()
    if args.pipeline:
        from lmrec.ranker.pipeline import RetrieveRerank

        model: Any = RetrieveRerank(
            retriever=args.retriever,
            retriever_params=parse_params(args.retriever_param),
            n_candidates=args.candidates,
            ranker_params=ranker,
            int8=args.int8,
            blend=args.blend,
        )
        model.fit(dataset)
        trained = model.ranker_
    else:
        from lmrec.ranker.model import LMRanker

        model = trained = LMRanker(**ranker)
        from lmrec.models.capabilities import FitOptions

        model.fit(dataset, options=FitOptions(checkpoint_dir=args.checkpoint_dir))
    n_train, n_total = trained.trainable_parameters()
    info(
        f"fine-tuned {args.mode} ranker in {time.perf_counter() - start:.1f}s: "
        f"{n_train:,} of {n_total:,} parameters trained ({n_train / n_total:.2%})"
    )
    if valid is not None:
        blend = model.fit_blend(valid)
        info(f"blend weight of the retriever chosen on --valid: {blend:.2f}")
    model.save(out)
    print(out)
    return 0
