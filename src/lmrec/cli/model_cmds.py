"""``lmrec train``, ``lmrec recommend`` and ``lmrec tune``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lmrec._config_files import read_config_file
from lmrec.cli import dist_cmds
from lmrec.cli._common import check_input, check_output, info
from lmrec.cli._inputs import add_catalog_flags, read_pairs
from lmrec.cli.data_cmds import add_data_source, load_input, write_csv
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.data.idmap import OnUnknown

TUNE_SPACE_HELP = """\
search space file (--space): one line per hyperparameter, TOML (or the same as JSON)
  l2 = ["float_log", 10, 5000]          log-uniform float; also ["log", 10, 5000],
                                        ["loguniform", 10, 5000], ["float", 10, 5000, "log"]
  factors = ["int_log", 8, 512]         log-uniform int ("log" on an int parameter)
  iterations = ["int", 5, 30]           uniform int; ["float", 0, 1] uniform float
  similarity = ["categorical", ["cosine", "bm25"]]
  shrinkage = ["float", 0, 100, {similarity = "cosine"}]   only when similarity is cosine
  lr = {type = "float", low = 1e-4, high = 1e-2, log = true}   optuna's keyword form
Parameters are the model's config fields (lmrec models); --param fixes one instead."""


def register(sub: Any) -> None:
    """Add the model subcommands to the parser."""
    t = sub.add_parser(
        "train",
        help="train a model and save it to a directory",
        description="Train a registered model on an interaction file and save it "
        "(safetensors + JSON, no pickle). Example: lmrec train --data train.csv "
        "--model ease --param l2=300 --out models/ease",
    )
    add_data_source(t, multiple=True)
    add_model_flags(t)
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    dist_cmds.add_distributed_flag(t)
    t.set_defaults(func=cmd_train)

    r = sub.add_parser(
        "recommend",
        help="write top-k recommendations to a CSV (user,item,rank,score)",
    )
    r.add_argument("--model", required=True, help="model directory from lmrec train")
    who = r.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--users", help="file of user ids: one per line, or a CSV with a 'user' column"
    )
    who.add_argument("--all", action="store_true", help="every user the model knows")
    r.add_argument("-k", type=int, default=20, help="list length (default 20)")
    r.add_argument(
        "--include-seen",
        action="store_true",
        help="do not exclude items the user interacted with in training",
    )
    r.add_argument(
        "--on-unknown",
        default="raise",
        choices=["raise", "warn", "ignore", "skip"],
        help="unknown user ids, as the library's on_unknown: fail (raise, the default), leave "
        "them out with a warning (warn) or silently (ignore); skip is the old name of warn",
    )
    r.add_argument("--output", required=True, help="CSV file to write ('-' for stdout)")
    r.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    r.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="FILE",
        help="interactions (user,item columns, e.g. split/valid.csv) whose items are "
        "also left out of each user's list (repeatable)",
    )
    r.add_argument(
        "--titles",
        metavar="FILE",
        help="item catalog (CSV/Parquet) whose title column is added to each row as 'title'",
    )
    r.add_argument("--title-col", help="title column of --titles (default: title)")
    g = r.add_argument_group("columns of the --exclude and --titles files")
    g.add_argument("--user-col", default="user", help="user id column of --exclude (default: user)")
    g.add_argument("--item-col", default="item", help="item id column of --exclude (default: item)")
    g.add_argument(
        "--items-item-col",
        metavar="COLUMN",
        help="item id column of --titles (default: --item-col if present, else item)",
    )
    how = r.add_mutually_exclusive_group()
    how.add_argument(
        "--ann",
        action="store_true",
        help="use the ANN index in MODEL_DIR/index (lmrec index build) whatever the catalog size",
    )
    how.add_argument(
        "--exact", action="store_true", help="exact top-k even when an ANN index exists"
    )
    r.add_argument(
        "--ann-min-items",
        type=int,
        default=100_000,
        help="without --ann/--exact, use an existing index from this many items (default 100000)",
    )
    r.set_defaults(func=cmd_recommend)

    u = sub.add_parser(
        "tune",
        help="search hyperparameters on a validation split with optuna",
        description="Fit on train, score on valid, keep the best parameters, refit on "
        "train+valid. Writes best_params.json, trials.csv and the refitted model. Without "
        "--space, the model's built-in space is searched (lmrec models lists the models).",
        epilog=TUNE_SPACE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    u.add_argument("--model", required=True, help="registered model name")
    u.add_argument(
        "--split", required=True, help="directory from lmrec split (train.csv, valid.csv)"
    )
    u.add_argument("--items", help="item catalog file (see --items-item-col)")
    u.add_argument("--users", dest="users_file", help="user attribute file (see --users-user-col)")
    add_catalog_flags(u)
    u.add_argument("--metric", default="ndcg@10", help="validation metric (default ndcg@10)")
    u.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    u.add_argument(
        "--sampler",
        default="tpe",
        choices=["tpe", "random", "grid"],
        help="optuna sampler: TPE (default), random, or a grid of the space "
        "(4 points per numeric range)",
    )
    u.add_argument(
        "--space",
        metavar="FILE",
        help="search space file (.toml or .json; format below) instead of the "
        "model's built-in space",
    )
    u.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fixed hyperparameter (repeatable)",
    )
    u.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    u.add_argument("--out", required=True, help="output directory")
    u.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    u.set_defaults(func=cmd_tune)


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--param``, ``--config`` and ``--seed``."""
    p.add_argument("--model", required=True, help="registered model name (see: lmrec models)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="hyperparameter, repeatable (e.g. --param l2=300)",
    )
    p.add_argument("--config", help="JSON or TOML file of hyperparameters (--param wins)")
    p.add_argument("--seed", type=int, help="seed, for models that take one")
    p.add_argument(
        "--text-template",
        help="item text template for text models, e.g. "
        "'{title} ({year}). Genres: {genres}' (default: every string column)",
    )


def model_params(args: argparse.Namespace, model_name: str) -> dict[str, Any]:
    """Hyperparameters from --config, --param and --seed, validated against the model config."""
    from lmrec.models.config import build_config, parse_params
    from lmrec.models.registry import get_model_class

    cls = get_model_class(model_name)
    params: dict[str, Any] = {}
    if getattr(args, "config", None):
        params.update(read_config_file(check_input(args.config, "Config file"), "Config file"))
    params.update(parse_params(args.param))
    if getattr(args, "seed", None) is not None:
        if "seed" not in cls.config_class.model_fields:
            raise ConfigError(f"Model {model_name!r} takes no seed; drop --seed.")
        params["seed"] = args.seed
    if getattr(args, "text_template", None) is not None:
        if "text_template" not in cls.config_class.model_fields:
            raise ConfigError(f"Model {model_name!r} reads no item text; drop --text-template.")
        params["text_template"] = args.text_template
    build_config(cls.config_class, params)  # validate before any data is read
    return params


def check_timestamps_for(args: argparse.Namespace, models: list[str]) -> None:
    """Refuse, before reading any data, sequence models on a file read without timestamps."""
    from lmrec.models.capabilities import SequenceModel, supports
    from lmrec.models.registry import get_model_class

    data = getattr(args, "data", None) or getattr(args, "train", None)
    if data is None or getattr(args, "timestamp_col", None) is not None:
        return
    paths = data if isinstance(data, list) else [data]  # train's --data repeats
    if all((Path(p) / "dataset.json").is_file() for p in paths):  # saved sets know columns
        return
    for name in models:
        if supports(get_model_class(name), SequenceModel):
            raise ConfigError(
                f"--model {name} reads each user's history in time order, so it needs the "
                "timestamp column of the interaction file: pass --timestamp-col COLUMN "
                "(epoch seconds or dates)."
            )


def cmd_train(args: argparse.Namespace) -> int:
    from lmrec.models import create_model

    out = check_output(args.out, args.force, is_dir=True)
    check_timestamps_for(args, [args.model])
    params = dist_cmds.scaling_params(args, args.model, model_params(args, args.model))
    paths = list(args.data or [])
    if len(paths) > 1 and args.engine == "spark":
        raise ConfigError("--engine spark reads one --data file; merge the files first.")
    if len(paths) <= 1:
        args.data = paths[0] if paths else None  # the single-file path, as every command has
    start = time.perf_counter()
    if args.engine == "spark":
        model = dist_cmds.train_spark(args, args.model, params)
    else:
        from lmrec.cli._inputs import load_data_files

        dataset = load_data_files(args, paths) if len(paths) > 1 else load_input(args)
        model = dist_cmds.fit(create_model(args.model, params), dataset, args)
    if not dist_cmds.is_main_process():  # under torchrun only rank 0 saves and reports
        return 0
    info(f"trained {model!r} in {time.perf_counter() - start:.1f}s")
    model.save(out)
    print(out)
    return 0


def read_user_list(path: str) -> np.ndarray:
    """User ids from a file: a CSV with a 'user' column, or one id per line."""
    from lmrec.data.catalogs import read_id_list

    p = check_input(path, "User list")
    return read_id_list(p, column="user")


def cmd_recommend(args: argparse.Namespace) -> int:
    from lmrec.models import load_model
    from lmrec.models.base import check_k

    check_k(args.k, "lmrec recommend (-k)")
    if args.output != "-":
        check_output(args.output, args.force)
    check_input(args.model, "Model directory")
    if args.exclude and args.ann:
        raise ConfigError("--exclude works with exact top-k; drop --ann (or --exclude).")
    if args.title_col and not args.titles:
        raise ConfigError("--title-col goes with --titles FILE.")
    users = None if args.all else read_user_list(args.users)
    titles = _read_titles(args) if args.titles else None
    exclude = read_pairs(args.exclude, "--exclude file", user=args.user_col, item=args.item_col)
    model = load_model(args.model)
    users = model._user_ids.ids if users is None else _known_users(model, users, args)
    on_unknown: OnUnknown = "raise"  # unknown users are already handled, in the CLI's words
    index = None if exclude is not None else _ann_index(args, model)
    if index is not None:
        from lmrec.retrieval.attached import recommend_ann

        recs = recommend_ann(
            model, index, users, k=args.k, exclude_seen=not args.include_seen, on_unknown=on_unknown
        )
    elif exclude is not None:
        recs = _recommend_excluding(model, users, args, exclude, on_unknown)
    else:
        recs = model.recommend(
            users, k=args.k, exclude_seen=not args.include_seen, on_unknown=on_unknown
        )
    if titles is not None:
        recs["title"] = recs["item"].map(titles).fillna("")
        missing = int((~recs["item"].isin(titles.index)).sum())
        if missing:
            info(f"note: {missing} recommended item(s) have no title in {args.titles}.")
    if args.output == "-":
        recs.to_csv(__import__("sys").stdout, index=False)
    else:
        write_csv(recs, Path(args.output))
        info(
            f"wrote {len(recs)} recommendations for {recs['user'].nunique()} users to {args.output}"
        )
    return 0


def _known_users(model: Any, users: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """``users`` the model knows; unknown ones fail or are skipped as --on-unknown says."""
    known = model.user_ids_.index(users, on_unknown="ignore") >= 0
    if known.all():
        return users
    unknown = [str(u) for u in users[~known]]
    shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
    if args.on_unknown == "raise":
        raise ConfigError(
            f"{len(unknown)} user id(s) in {args.users} are not in the model's training data: "
            f"{shown}. Pass --on-unknown warn (or ignore) to leave them out."
        )
    if args.on_unknown == "skip":
        info("lmrec recommend: warning: --on-unknown skip is now called --on-unknown warn")
    if args.on_unknown != "ignore":
        info(
            f"lmrec recommend: warning: skipped {len(unknown)} user id(s) unknown to the model "
            f"(--on-unknown {args.on_unknown}): {shown}"
        )
    if not known.any():
        raise ConfigError(f"No user in {args.users} is known to the model; nothing to recommend.")
    return users[known]


def _read_titles(args: argparse.Namespace) -> pd.Series:
    from lmrec.cli._inputs import read_titles

    return read_titles(args, args.titles)


def _recommend_excluding(
    model: Any, users: Any, args: argparse.Namespace, pairs: pd.DataFrame, on_unknown: str
) -> pd.DataFrame:
    """``model.recommend`` with the --exclude pairs dropped from the lists too."""
    from lmrec.eval.protocol import exclusion_matrix

    uidx = model.user_ids_.index(users, on_unknown=on_unknown, kind="user")
    uidx = uidx[uidx >= 0]
    extra = exclusion_matrix(model.user_ids_, model.item_ids_, pairs["user"], pairs["item"])
    items, scores = model.recommend_indices(
        uidx, args.k, exclude_seen=not args.include_seen, exclude=extra
    )
    valid = items >= 0
    return pd.DataFrame(
        {
            "user": np.repeat(model.user_ids_.lookup(uidx), valid.sum(axis=1)),
            "item": model.item_ids_.lookup(items[valid]),
            "rank": np.broadcast_to(np.arange(1, args.k + 1), items.shape)[valid],
            "score": scores[valid],
        }
    )


def _ann_index(args: argparse.Namespace, model: Any) -> Any:
    """The ANN index to recommend with: --ann forces it, --exact refuses it, else by catalog size."""
    from lmrec.retrieval.attached import has_model_index, load_model_index

    if args.ann_min_items < 0:
        raise ConfigError(f"--ann-min-items must be >= 0 (got {args.ann_min_items}).")
    if args.exact or (not args.ann and model.n_items < args.ann_min_items):
        return None
    if not has_model_index(args.model):
        if args.ann:
            raise ConfigError(
                f"--ann: {args.model} has no ANN index; build one with: "
                f"lmrec index build --model {args.model}"
            )
        return None
    index = load_model_index(args.model, model)
    info(f"using the {index.params['kind']} index in {Path(args.model) / 'index'}")
    return index


def cmd_tune(args: argparse.Namespace) -> int:
    from lmrec.models.config import parse_params
    from lmrec.tune import resolve_space, tune

    out = check_output(args.out, args.force, is_dir=True)
    split_dir = Path(check_input(args.split, "Split directory"))
    for name in ("train.csv", "valid.csv"):
        check_input(split_dir / name, f"{name} of the split")
    space = check_input(args.space, "Search space file") if args.space else None
    fixed = parse_params(args.param)
    resolve_space(args.model, space, fixed)  # a bad space fails before any data is read
    train, valid = _load_split_pair(split_dir, args)
    result = tune(
        args.model,
        train,
        valid,
        metric=args.metric,
        n_trials=args.trials,
        sampler=args.sampler,
        seed=args.seed,
        fixed_params=fixed,
        space=space,
    )
    model = result.refit(train, valid)
    result.save(out)
    model.save(out / "model")
    info(f"best {args.metric} on valid = {result.best_value:.4f} with {result.best_params}")
    print(out)
    return 0


def _load_split_pair(split_dir: Path, args: argparse.Namespace):
    """train.csv and valid.csv of a split directory over one shared id universe."""
    from lmrec.cli._common import split_file_kwargs
    from lmrec.cli._inputs import read_catalogs
    from lmrec.data import read_interactions
    from lmrec.data.dataset import datasets_with_shared_ids

    train, _ = read_interactions(
        split_dir / "train.csv", **split_file_kwargs(split_dir / "train.csv")
    )
    valid, _ = read_interactions(
        split_dir / "valid.csv", **split_file_kwargs(split_dir / "valid.csv")
    )
    items, users = read_catalogs(args)
    train_ds, valid_ds = datasets_with_shared_ids(
        [train, valid], items=items, users=users, names=["train", "valid"]
    )
    return train_ds, valid_ds
