"""``lmrec datasets synth`` / ``lmrec datasets ingest``: data at scale on one machine.

``lmrec synth`` is kept as an alias of ``lmrec datasets synth``.
"""

from __future__ import annotations

import argparse
import glob
import time
from typing import Any

from lmrec.cli._common import check_output, info
from lmrec.errors import ConfigError, DataError

_SYNTH_DESCRIPTION = (
    "Generate synthetic interactions block by block (bounded memory) and write "
    "part-NNNNN.parquet files (user, item, timestamp[, weight]) plus items.parquet "
    "(item, title, text, topic) into --out."
)
_INGEST_DESCRIPTION = (
    "Stream chunked Parquet/CSV interaction files into an lmrec data set directory "
    "(id maps + interactions in CSR order), with peak memory about the size of the final "
    "CSR matrix plus the id maps. 'lmrec split/train/compare --data DIR' then read it."
)


def register(sub: Any) -> None:
    """Add the top-level ``synth`` alias of ``datasets synth`` to the parser."""
    _add_synth(sub, "synth")


def register_datasets(dsub: Any) -> None:
    """Add ``synth`` and ``ingest`` to the ``lmrec datasets`` subcommands."""
    _add_synth(dsub, "synth")
    p = dsub.add_parser(
        "ingest",
        help="stream large Parquet/CSV files into a data set directory",
        description=_INGEST_DESCRIPTION,
    )
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="files, directories (their Parquet files with both id columns, else "
        "their CSV files) or glob patterns, read in the order given",
    )
    p.add_argument("--out", required=True, help="output data set directory")
    p.add_argument("--user-col", default="user", help="user id column (default: user)")
    p.add_argument("--item-col", default="item", help="item id column (default: item)")
    p.add_argument("--weight-col", help="interaction weight column, if any (default weight 1)")
    p.add_argument("--timestamp-col", help="timestamp column (epoch seconds or Parquet timestamps)")
    p.add_argument(
        "--duplicates",
        default="sum",
        choices=["sum", "last", "first", "max", "raise"],
        help="repeated (user, item) rows: sum weights (counts without a weight "
        "column), keep last/first/max, or fail (default: sum)",
    )
    p.add_argument("--sep", help="CSV delimiter (default ',', tab for .tsv)")
    p.add_argument(
        "--chunk-rows", type=int, default=1 << 20, help="rows read per chunk (default 1048576)"
    )
    p.add_argument("--name", help="data set label (default: the --out directory's name)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_ingest)


def _add_synth(sub: Any, name: str) -> None:
    p = sub.add_parser(
        name,
        help="write a synthetic data set as chunked Parquet (scale tests)",
        description=_SYNTH_DESCRIPTION,
    )
    p.add_argument("--users", type=int, required=True, help="number of users")
    p.add_argument("--items", type=int, required=True, help="number of items")
    p.add_argument("--interactions", type=int, required=True, help="distinct (user, item) pairs")
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    p.add_argument("--topics", type=int, default=20, help="number of topics (default 20)")
    p.add_argument("--weights", action="store_true", help="add a weight column")
    p.add_argument(
        "--rows-per-file",
        type=int,
        default=1 << 21,
        help="interactions per Parquet file (default 2097152)",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    """Check --out, then call :func:`lmrec.data.synthetic.write_synthetic`.

    ``write_synthetic`` validates every size and the seed before it generates anything.
    """
    from lmrec.data.synthetic import write_synthetic

    out = check_output(args.out, args.force, is_dir=True)
    t = time.perf_counter()
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
        f"{files.n_items:,} items to {files.path} in {time.perf_counter() - t:.1f} s "
        f"(peak RSS {_peak_rss_mib():,.0f} MiB)"
    )
    return 0


def _expand(patterns: list[str]) -> list[str]:
    """Paths from --data: glob patterns expand to their sorted matches (an error if none)."""
    out: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(glob.glob(pattern))
            if not found:
                raise DataError(f"--data pattern {pattern!r} matches no file; check the path.")
            out.extend(found)
        else:
            out.append(pattern)
    return out


def cmd_ingest(args: argparse.Namespace) -> int:
    """Stream the inputs with :func:`lmrec.data.ingest.ingest` and save the data set."""
    from lmrec.data.ingest import ingest

    if args.chunk_rows < 1:
        raise ConfigError(f"--chunk-rows must be >= 1; got {args.chunk_rows}.")
    out = check_output(args.out, args.force, is_dir=True)
    paths = _expand(args.data)
    t = time.perf_counter()
    ds = ingest(
        paths,
        user=args.user_col,
        item=args.item_col,
        weight=args.weight_col,
        timestamp=args.timestamp_col,
        duplicates=args.duplicates,
        chunk_rows=args.chunk_rows,
        sep=args.sep,
        name=args.name or out.name,
    )
    took = time.perf_counter() - t
    ds.save(out)
    m = ds.matrix
    csr = (m.indices.nbytes + m.data.nbytes + m.indptr.nbytes) / (1 << 20)
    info(
        f"ingested {ds.n_interactions:,} interactions ({ds.n_users:,} users x "
        f"{ds.n_items:,} items) in {took:.1f} s; CSR {csr:,.0f} MiB, peak RSS "
        f"{_peak_rss_mib():,.0f} MiB; saved to {out}"
    )
    print(out)
    return 0


def load_saved_dataset(args: argparse.Namespace):
    """The data set directory named by ``--data`` (written by ``lmrec datasets ingest``)."""
    from lmrec.data import Dataset

    if args.items or getattr(args, "users_file", None):
        raise ConfigError(
            f"--data {args.data} is a saved data set; --items/--users go with interaction "
            "files only."
        )
    ds = Dataset.load(args.data)
    info(f"loaded {ds} from {args.data}")
    return ds


def _peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux ``ru_maxrss`` is KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
