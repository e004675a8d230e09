"""``lmrec synth``: write a large synthetic data set as chunked Parquet files."""

from __future__ import annotations

import argparse
from typing import Any

from lmrec.cli._common import check_output, info


def register(sub: Any) -> None:
    """Add the scale subcommands (``synth``) to the parser."""
    p = sub.add_parser(
        "synth",
        help="write a synthetic data set as chunked Parquet (scale tests)",
        description="Generate synthetic interactions block by block (bounded memory) and write "
        "part-NNNNN.parquet files (user, item, timestamp[, weight]) plus items.parquet "
        "(item, title, text, topic) into --out.",
    )
    p.add_argument("--users", type=int, required=True, help="number of users")
    p.add_argument("--items", type=int, required=True, help="number of items")
    p.add_argument("--interactions", type=int, required=True, help="distinct (user, item) pairs")
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    p.add_argument("--topics", type=int, default=20, help="number of topics (default 20)")
    p.add_argument("--weights", action="store_true", help="add a weight column")
    p.add_argument("--rows-per-file", type=int, default=1 << 21,
                   help="interactions per Parquet file (default 2097152)")  # fmt: skip
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    """Check --out, then call :func:`lmrec.data.synthetic.write_synthetic`.

    ``write_synthetic`` validates every size and the seed before it generates anything.
    """
    from lmrec.data.synthetic import write_synthetic

    out = check_output(args.out, args.force, is_dir=True)
    files = write_synthetic(
        out,
        args.users,
        args.items,
        args.interactions,
        seed=args.seed,
        n_topics=args.topics,
        with_weight=args.weights,
        rows_per_file=args.rows_per_file,
        overwrite=args.force,
    )
    info(
        f"wrote {files.n_interactions:,} interactions in {len(files.files)} file(s) and "
        f"{files.n_items:,} items to {files.path}"
    )
    return 0
