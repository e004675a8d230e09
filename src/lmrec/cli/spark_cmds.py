"""``lmrec split --engine spark``: the Spark engine behind the split command's flags."""

from __future__ import annotations

import argparse
import json

from lmrec.cli._common import check_input, check_output, info
from lmrec.errors import ConfigError


def cmd_split_spark(args: argparse.Namespace) -> int:
    """Split ``--data`` with :func:`lmrec.spark.split.spark_split`, checking the flags first.

    The same flags as the local split; the ones the Spark engine cannot honour (a built-in
    ``--dataset``, catalogs, the protocols it does not compute) fail before Spark starts.
    """
    from lmrec.spark.session import check_java
    from lmrec.spark.split import SPARK_PROTOCOLS, spark_split

    if args.dataset or args.items or args.users_file:
        raise ConfigError(
            "--engine spark reads --data FILE (any path Spark can read); --dataset, --items "
            "and --users go with the local engine."
        )
    if args.protocol not in SPARK_PROTOCOLS:
        raise ConfigError(
            f"--engine spark splits with --protocol {' or '.join(SPARK_PROTOCOLS)}; got "
            f"{args.protocol!r}. Drop --engine spark to use the local engine."
        )
    if "://" not in str(args.data):
        check_input(args.data, "Interaction file")
    out = check_output(args.out, args.force, is_dir=True)
    check_java()
    header = not args.no_header
    # Without a header the id columns default to positions 0 and 1, as in the local reader.
    user_col = 0 if args.no_header and args.user_col == "user" else args.user_col
    item_col = 1 if args.no_header and args.item_col == "item" else args.item_col
    sep = None if args.sep is None else ("\t" if args.sep in ("\\t", "tab") else args.sep)
    meta = spark_split(
        args.data,
        out,
        protocol=args.protocol,
        ratios=args.ratios,
        seed=args.seed,
        master=args.master or "local[2]",
        user_col=user_col,
        item_col=item_col,
        weight_col=args.weight_col,
        rating_col=args.rating_col,
        timestamp_col=args.timestamp_col,
        sep=sep,
        header=header,
        duplicates=args.duplicates,
        drop_invalid=args.drop_invalid,
        overwrite=True,
    )
    info(f"{meta['protocol']} split (Spark): {json.dumps(meta['counts'])}")
    for note in meta["notes"]:
        info(f"  - {note}")
    print(out)
    return 0
