"""``lmrec explain``: why a model recommends an item (the library's ``model.explain``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lmrec.cli._common import check_input
from lmrec.errors import ConfigError


def register(sub: Any) -> None:
    """Add the ``explain`` subcommand to the parser."""
    e = sub.add_parser(
        "explain",
        help="which history items made a model recommend an item, with reasons",
        description="The history items that contributed most to ITEM's score for a known "
        "user (--user) or a new user's items (--history), in the model's own score units, "
        "and what ITEM shares with them in the catalog. The same answer as "
        "model.explain() and the service's /v1/explain. Example: lmrec explain --model "
        "models/ease --user 42 --item 50 --items movies.csv",
    )
    e.add_argument("--model", required=True, help="model directory from lmrec train")
    who = e.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user id the model was trained on")
    who.add_argument(
        "--history", metavar="ITEMS", help="a new user's item ids, comma-separated, oldest first"
    )
    e.add_argument("--item", required=True, help="the recommended item id to explain")
    e.add_argument(
        "--items",
        help="item catalog file (id column 'item'; title, genres, "
        "year, ...): titles and reasons in the explanation",
    )
    e.add_argument("-n", type=int, default=5, help="history items to name (default 5)")
    e.add_argument("--json", action="store_true", help="print the explanation as JSON")
    e.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    """Validate the flags, load the model (and catalog), print its explanation."""
    from lmrec._checks import check_int
    from lmrec.data import read_items
    from lmrec.models import load_model

    check_int(args.n, "-n", where="lmrec explain")
    check_input(args.model, "Model directory")
    catalog_path = check_input(args.items, "Item catalog") if args.items else None
    history = None
    if args.history is not None:
        history = [i.strip() for i in args.history.split(",") if i.strip()]
        if not history:
            raise ConfigError("--history lists no item ids; give them comma-separated.")
    catalog = read_items(catalog_path) if catalog_path is not None else None
    model = load_model(args.model)
    expl = model.explain(args.item, user=args.user, items=history, n=args.n, catalog=catalog)
    if args.json:
        print(json.dumps(expl.to_dict(), indent=2))
        return 0
    who = f"user {expl.user}" if expl.user is not None else f"a history of {expl.n_history} items"
    name = f"'{expl.title}'" if expl.title else f"item {expl.item}"
    print(f"{name} for {who}: {expl.model} score {expl.score:.4g} ({expl.method})")
    for c in expl.contributions:
        print(f"  {c.contribution:+.4g}  {repr(c.title) if c.title else 'item ' + c.item}")
    for line in expl.sentences:
        print(line)
    return 0
