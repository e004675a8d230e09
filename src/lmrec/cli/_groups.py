"""What ``lmrec evaluate`` and ``lmrec compare`` add for issue 22: ``--items`` / ``--users``
attributes, ``--groups`` breakdowns, every metric of the library (pointwise ones routed to
:func:`lmrec.eval.ratings.evaluate_pointwise`), and ``--report report.html``.

Kept apart from ``eval_cmds`` so the commands call a few functions and stay thin.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd

from lmrec.cli._common import check_output, info
from lmrec.errors import ConfigError, DataWarning

POINTWISE = ("rmse", "mae", "auc", "f1", "log_loss")
#: List metrics that need an item attribute (--items).
NEEDS_FEATURES = ("ild", "miscalibration")


def add_group_flags(p: argparse.ArgumentParser) -> None:
    """``--items``/``--users`` (when the command has none yet), ``--groups``, ``--attribute``,
    ``--report``."""
    have = {s for a in p._actions for s in a.option_strings}  # other flag groups may add them
    if "--items" not in have:
        p.add_argument(
            "--items",
            help="item catalog file (column 'item' plus attributes such as "
            "genres): for diversity, calibration and item groups",
        )
    if "--users" not in have:
        p.add_argument(
            "--users",
            dest="users_file",
            help="user attribute file (column 'user' plus "
            "attributes such as gender, age): for user groups",
        )
    p.add_argument(
        "--groups",
        help="comma-separated attributes to break results down by: user "
        "columns (gender, occupation; age gives age bands), item columns (genres), "
        "activity (user activity bands) or popularity (head/mid/tail items)",
    )
    p.add_argument(
        "--attribute",
        help="item attribute for intra-list diversity and calibration "
        "(default: genres when the catalog has it)",
    )
    p.add_argument("--report", metavar="HTML", help="also write a self-contained HTML report here")


def check_group_outputs(args: argparse.Namespace) -> None:
    """Validate output paths before any work."""
    if getattr(args, "report", None):
        check_output(args.report, True)


def split_metrics(names: list[str]) -> tuple[list[str], list[str]]:
    """List metrics (``name@k``) and pointwise metrics, in the order given."""
    point = [n for n in names if n.split("@")[0].strip().lower() in POINTWISE]
    return [n for n in names if n not in point], [n.strip().lower() for n in point]


def read_catalogs(
    args: argparse.Namespace, items: pd.DataFrame | None = None, users: pd.DataFrame | None = None
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The catalog and user attribute tables: from --items / --users (by their id column
    flags), else those given."""
    from lmrec.cli._inputs import read_catalogs as read_flagged

    flagged_items, flagged_users = read_flagged(args)
    return (
        items if flagged_items is None else flagged_items,
        users if flagged_users is None else flagged_users,
    )


def item_features(
    items: pd.DataFrame | None, item_ids: Any, args: argparse.Namespace, list_metrics: list[str]
) -> Any:
    """The p(g|i) rows of the --attribute column in the order of ``item_ids``, or None.

    Raises ConfigError when a metric needs them and there is no catalog or attribute.
    """
    from lmrec.eval.groups import ItemGroups

    needs = [m for m in list_metrics if m.split("@")[0].strip().lower() in NEEDS_FEATURES]
    attribute = getattr(args, "attribute", None)
    cols = [] if items is None else [str(c) for c in items.columns]
    if attribute is None:
        attribute = "genres" if "genres" in cols else None
    if attribute is None or items is None:
        if needs:
            raise ConfigError(
                f"{', '.join(needs)} need an item attribute: pass --items with a catalog that has a "
                f"genres column, or name another column with --attribute"
                + (f" (the catalog has {', '.join(cols)})." if cols else ".")
            )
        return None
    if attribute not in cols:
        raise ConfigError(
            f"--attribute {attribute!r} is not a column of the catalog; it has {', '.join(cols)}."
        )
    frame = items.copy()
    frame.index = frame.index.astype(str)
    values = frame[attribute].reindex(pd.Index(np.asarray(item_ids).astype(str)))
    return ItemGroups.from_labels(values.to_numpy(), separator="|", attribute=attribute).membership


def groups_list(args: argparse.Namespace) -> list[str]:
    return [g.strip() for g in (getattr(args, "groups", None) or "").split(",") if g.strip()]


def print_groups(
    result: Any, users: pd.DataFrame | None, groups: list[str], history_counts: pd.Series | None
) -> None:
    """Per-group means (with bootstrap CIs) and the best-worst gap of every per-user metric."""
    from lmrec.eval.groups import activity_bands, age_bands, group_breakdown, group_gap

    for name in groups:
        if name == "activity":
            if history_counts is None:
                continue
            labels = activity_bands(history_counts)
        elif name == "age_band" or name == "age":
            if users is None:
                raise ConfigError(f"Group {name!r} needs a user table (--users FILE).")
            labels = age_bands(users["age"])
        elif users is not None and name in users.columns:
            labels = users[name].astype(str)
        else:
            continue  # item groups: in the report
        labels.index = labels.index.astype(str)
        per_user = result.per_user.copy()
        per_user.index = per_user.index.astype(str)
        table = group_breakdown(per_user, labels, n_resamples=500)
        print(f"\n{result.name} by {name}")
        with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
            print(table.to_string())
        for metric in per_user.columns:
            with warnings.catch_warnings():  # fewer than two groups: no gap line
                warnings.simplefilter("ignore", DataWarning)
                gap = group_gap(per_user[metric], labels, n_resamples=500, min_users=5)
            if np.isfinite(gap["gap"]):
                print(
                    f"gap {metric}: {gap['best']} - {gap['worst']} = {gap['gap']:.4f} "
                    f"[{gap['low']:.4f}, {gap['high']:.4f}]"
                )


def check_groups_known(
    groups: list[str], items: pd.DataFrame | None, users: pd.DataFrame | None
) -> None:
    """Refuse group names the attributes do not have, listing those they do."""
    known = {"activity", "popularity"}
    if items is not None:
        known |= {str(c) for c in items.columns}
    if users is not None:
        known |= {str(c) for c in users.columns}
        if "age" in users.columns:
            known.add("age_band")
    bad = [g for g in groups if g not in known]
    if bad:
        raise ConfigError(
            f"--groups: unknown attribute(s) {', '.join(map(repr, bad))}. Available: "
            f"{', '.join(sorted(known))} (user attributes come from --users, item attributes "
            "from --items)."
        )


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (for the report's provenance)."""
    return "lmrec " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))


def write_model_report(
    args: argparse.Namespace,
    models: dict[str, Any],
    test: Any,
    items: Any,
    users: Any,
    fingerprint: dict[str, str],
    ratings: dict | None = None,
) -> None:
    """The HTML report of fitted models on ``test``."""
    from lmrec.report import inputs_from_models

    inputs = inputs_from_models(models, test, items=items, users=users)
    inputs.command, inputs.fingerprint = command_line(args), fingerprint
    inputs.ratings = ratings or {}
    _write(args, inputs)


def write_recs_report(
    args: argparse.Namespace,
    recs: pd.DataFrame,
    test: pd.DataFrame,
    train: pd.DataFrame | None,
    items: Any,
    users: Any,
    fingerprint: dict[str, str],
) -> None:
    """The HTML report of recommendation lists from any system."""
    from lmrec.report import inputs_from_recommendations

    inputs = inputs_from_recommendations(recs, test, train=train, items=items, users=users)
    inputs.command, inputs.fingerprint = command_line(args), fingerprint
    _write(args, inputs)


def _write(args: argparse.Namespace, inputs: Any) -> None:
    import time

    from lmrec.report import write_report

    start = time.perf_counter()
    k = min(args.k) if getattr(args, "k", None) else 10
    write_report(
        args.report,
        inputs,
        k=k,
        groups=groups_list(args),
        attribute=getattr(args, "attribute", None),
    )
    info(f"wrote {args.report} in {time.perf_counter() - start:.1f}s")


def file_fingerprint(**paths: Any) -> dict[str, str]:
    """sha256 (first 16 hex digits) and size of each input file; a repeated flag's files
    (``--train a --train b``) are ``train``, ``train 2``, ..."""
    out = {}
    for key, value in paths.items():
        values = [v for v in (value if isinstance(value, (list, tuple)) else [value]) if v]
        for n, path in enumerate(values):
            out[key if n == 0 else f"{key} {n + 1}"] = _fingerprint_one(path)
    return out


def _fingerprint_one(path: Any) -> str:
    import hashlib
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        return str(path)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return f"{p.name} sha256:{digest} ({p.stat().st_size:,} bytes)"
