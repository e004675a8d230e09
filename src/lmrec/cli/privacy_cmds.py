"""``lmrec forget`` and ``lmrec anonymize``: thin over :mod:`lmrec.privacy`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lmrec.cli._common import add_read_flags, check_input, check_output, info
from lmrec.errors import ConfigError


def register(sub: Any) -> None:
    """Add the privacy subcommands to the parser."""
    f = sub.add_parser(
        "forget",
        help="remove users from a model (exact unlearning, or retraining) and write a new one",
        description="Write a new model version without the listed users: models that can "
        "forget exactly do it from their own state (the result equals a fit without the "
        "users); the others are retrained on --data without them. The audit record printed "
        "on stdout holds no user id. Example: lmrec forget --model models/ease --users "
        "gone.txt --out models/ease-v2",
    )
    f.add_argument("--model", required=True, help="model directory (lmrec train)")
    f.add_argument(
        "--users",
        required=True,
        help="file of user ids to forget: one per line, or a CSV with a 'user' column",
    )
    f.add_argument("--out", required=True, help="model directory to write (the new version)")
    f.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    f.add_argument(
        "--data",
        help="training interactions, needed to retrain models that cannot "
        "forget exactly (CSV/TSV/Parquet or a data set directory)",
    )
    f.add_argument("--dataset", help="built-in training data set instead of --data (e.g. ml-100k)")
    f.add_argument(
        "--method",
        default="auto",
        choices=["auto", "exact", "retrain"],
        help="auto (default): exact when the model can, else retrain",
    )
    f.add_argument(
        "--store",
        help="event store URL (sqlite:///events.db or postgresql://...): "
        "also delete the users' events there",
    )
    add_read_flags(f)
    f.set_defaults(func=cmd_forget)

    a = sub.add_parser(
        "anonymize",
        help="replace user (and item) ids by keyed HMAC-SHA256 pseudonyms",
        description="Pseudonymise an interaction file with a secret key kept in its own file "
        "(outside the data). The same key gives the same pseudonyms, so files still join. "
        "Example: lmrec anonymize --data log.csv --out log.anon.csv --key-file ~/.lmrec.key "
        "--new-key --map reid.csv",
    )
    a.add_argument("--data", required=True, help="CSV, TSV or Parquet file with an id column")
    a.add_argument("--out", required=True, help="file to write (same format as --data)")
    a.add_argument("--key-file", required=True, help="file holding the secret key (hex)")
    a.add_argument(
        "--new-key",
        action="store_true",
        help="create --key-file with a fresh random key (never overwrites one)",
    )
    a.add_argument("--user-col", default="user", help="user id column (default 'user')")
    a.add_argument("--item-col", default="item", help="item id column (default 'item')")
    a.add_argument("--items", action="store_true", help="pseudonymise the item ids too")
    a.add_argument(
        "--map",
        help="also write the re-identification map (pseudonym -> id) here; "
        "it stays with the data owner",
    )
    a.add_argument("--force", action="store_true", help="overwrite --out/--map if they exist")
    a.set_defaults(func=cmd_anonymize)


def cmd_forget(args: argparse.Namespace) -> int:
    from lmrec.cli.data_cmds import load_input
    from lmrec.cli.model_cmds import read_user_list
    from lmrec.models import load_model
    from lmrec.privacy.forget import forget_users

    check_input(args.model, "Model directory")
    users = read_user_list(args.users)
    out = check_output(args.out, args.force, is_dir=True)
    if Path(args.out).resolve() == Path(args.model).resolve():
        raise ConfigError("--out must differ from --model: the new version is written beside it.")
    if args.data and args.dataset:
        raise ConfigError("Give --data or --dataset, not both.")
    store = _open_store(args.store) if args.store else None
    model = load_model(args.model)
    data = None
    if args.data or args.dataset:
        args.items, args.users_file = None, None
        data = load_input(args)
    new, report = forget_users(model, users, data=data, method=args.method)
    new.save(out)
    record = report.to_dict()
    if store is not None:
        record["events_deleted"] = _delete_events(store, users, report.request_id)
    info(f"forgot {report.n_users} user(s) ({report.method}); wrote {out}")
    json.dump(record, sys.stdout)
    sys.stdout.write("\n")
    return 0


def _open_store(url: str) -> Any:
    """The event store at ``url`` (the service's store; needs the serve extra)."""
    from lmrec.serve.events import EventStore

    return EventStore(url)


def _delete_events(store: Any, users: Any, request_id: str) -> int:
    try:
        return int(store.delete_users([str(u) for u in users], request_id=request_id))
    finally:
        store.close()


def cmd_anonymize(args: argparse.Namespace) -> int:
    import pandas as pd

    from lmrec.privacy.anonymize import anonymize_frame, new_key, read_key

    src = check_input(args.data, "Interaction file")
    out = check_output(args.out, args.force)
    map_path = check_output(args.map, args.force) if args.map else None
    key_path = Path(args.key_file).expanduser()
    if key_path.resolve().parent in {out.resolve().parent, src.resolve().parent}:
        info(
            f"warning: the key {key_path} sits beside the data; keep it somewhere the data "
            "is never copied to"
        )
    if args.new_key:
        key = new_key(key_path)
        info(f"wrote a new key to {key_path} (mode 0600); keep it secret and backed up")
    else:
        check_input(key_path, "Key file")
        key = read_key(key_path)
    suffix = src.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(src)
    else:
        frame = pd.read_csv(src, sep="\t" if suffix in (".tsv", ".tab") else ",", dtype=str)
    cols = [args.user_col] + ([args.item_col] if args.items else [])
    anon, reid = anonymize_frame(frame, key, cols)
    if suffix == ".parquet":
        anon.to_parquet(out, index=False)
    else:
        anon.to_csv(out, sep="\t" if suffix in (".tsv", ".tab") else ",", index=False)
    if map_path is not None:
        reid.to_csv(map_path, index=False)
    info(f"pseudonymised {', '.join(cols)} of {len(frame):,} rows; wrote {out}")
    return 0
