"""Flags and checks shared by several subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lmrec.errors import ConfigError


def add_read_flags(p: argparse.ArgumentParser) -> None:
    """Flags that describe how to read an interaction file."""
    g = p.add_argument_group("reading interaction files")
    g.add_argument("--user-col", default="user", help="user id column (default: user)")
    g.add_argument("--item-col", default="item", help="item id column (default: item)")
    g.add_argument("--rating-col", help="explicit rating column, if any")
    g.add_argument("--weight-col", help="interaction weight column, if any (default weight 1)")
    g.add_argument("--timestamp-col", help="timestamp column (epoch seconds or ISO dates)")
    g.add_argument("--sep", help="field delimiter (default: detected among , tab ; | ::)")
    g.add_argument(
        "--no-header",
        action="store_true",
        help="the file has no header row; columns are then 0-based positions",
    )
    g.add_argument(
        "--duplicates",
        default="raise",
        choices=["raise", "last", "first", "sum", "max"],
        help="what to do with repeated (user, item) pairs (default: raise)",
    )
    g.add_argument(
        "--drop-invalid",
        action="store_true",
        help="skip rows with invalid values (they are counted and reported)",
    )
    g.add_argument(
        "--timestamp-format",
        metavar="FORMAT",
        help="the timestamp column's one format: an epoch unit (s, ms, us, ns), iso, "
        "or a strftime layout such as '%%d/%%m/%%Y' (default: decided from the whole "
        "column)",
    )
    g.add_argument(
        "--on-overflow",
        default="raise",
        choices=["raise", "clip"],
        help="a weight or rating beyond float32's range: fail (default) or clip it "
        "into range and count it",
    )
    g.add_argument(
        "--encoding",
        default="utf-8",
        help="text encoding of the file (default utf-8; UTF-16 is detected)",
    )


def _col(value: str | None, header: bool) -> Any:
    if value is None or header:
        return value
    try:
        return int(value)
    except ValueError as e:
        raise ConfigError(f"With --no-header, columns are 0-based positions; got {value!r}.") from e


def read_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`lmrec.data.read_interactions` from the read flags."""
    header = not args.no_header
    user = _col(args.user_col, header) if not (args.no_header and args.user_col == "user") else 0
    item = _col(args.item_col, header) if not (args.no_header and args.item_col == "item") else 1
    kw: dict[str, Any] = {
        "user": user,
        "item": item,
        "rating": _col(args.rating_col, header),
        "weight": _col(args.weight_col, header),
        "timestamp": _col(args.timestamp_col, header),
        "header": header,
        "duplicates": args.duplicates,
        "on_invalid": "drop" if args.drop_invalid else "raise",
        "timestamp_format": getattr(args, "timestamp_format", None),
        "on_overflow": getattr(args, "on_overflow", "raise"),
        "encoding": getattr(args, "encoding", "utf-8"),
    }
    if args.sep is not None:
        kw["sep"] = "\t" if args.sep in ("\\t", "tab") else args.sep
    return kw


def check_output(path: str | Path, force: bool, *, is_dir: bool = False) -> Path:
    """Fail early if ``path`` exists (without --force) or its parent is not writable."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(
            f"{path} already exists; pass --force to overwrite it or choose another path."
        )
    if path.exists() and is_dir != path.is_dir():
        kind = "a directory" if path.is_dir() else "a file"
        raise ConfigError(f"{path} is {kind}; choose another output path.")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise PermissionError(13, "Output location is not writable", str(parent))
    return path


def check_input(path: str | Path, what: str) -> Path:
    """Fail early if an input file or directory does not exist."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, f"{what} not found", str(path))
    return path


def info(msg: str) -> None:
    """Status line on stderr (so stdout stays clean for data)."""
    print(msg, file=sys.stderr)


def split_file_kwargs(path: str | Path) -> dict[str, Any]:
    """Read options for a CSV written by ``lmrec split``: its columns, from split.json.

    ``lmrec split`` keeps the input's column names (``userId``, ...); split.json records
    them. Older splits (and splits without that record) use ``user``/``item`` and the
    optional ``weight``/``rating``/``timestamp`` columns when present.
    """
    import json

    import pandas as pd

    path = Path(path)
    columns = set(pd.read_csv(path, nrows=0).columns)
    kw: dict[str, Any] = {"sep": ","}
    meta_file = path.parent / "split.json"
    names: dict[str, Any] = {}
    if meta_file.is_file():
        try:
            recorded = json.loads(meta_file.read_text()).get("columns") or {}
            names = recorded.get("names") or {}
            fmt = recorded.get("timestamp_format")
        except (ValueError, AttributeError):
            names, fmt = {}, None
        if names and fmt and fmt not in ("datetime",):
            kw["timestamp_format"] = fmt
    for role in ("user", "item"):
        if names.get(role) in columns:
            kw[role] = names[role]
    for role in ("weight", "rating", "timestamp"):
        col = names.get(role, role)
        if col in columns:
            kw[role] = col
    if "weight" not in kw and "weight" in columns:
        kw["weight"] = "weight"
    return kw
