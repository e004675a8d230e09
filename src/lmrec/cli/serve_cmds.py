"""``lmrec serve`` (the HTTP service) and ``lmrec retrain`` (refit from stored feedback)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from lmrec.cli._common import check_input, check_output, info
from lmrec.errors import ConfigError


def register(sub: Any) -> None:
    """Add ``serve`` and ``retrain`` to the parser."""
    s = sub.add_parser(
        "serve",
        help="serve a model over HTTP (FastAPI + uvicorn; needs lmrec[serve])",
        description="Serve recommendations, similar items, explanations and feedback over "
        "HTTP. Example: lmrec serve models/ease --port 8000. Create an API key first with "
        "lmrec serve --create-key admin.",
    )
    s.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="model directory")
    s.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="TCP port (default 8000)")
    s.add_argument("--workers", type=int, help="worker processes (default 1)")
    s.add_argument(
        "--store", dest="store_url", help="event store URL (default sqlite:///lmrec-events.db)"
    )
    s.add_argument("--config", help="TOML or JSON file of serve settings (flags win)")
    s.add_argument("--keys", dest="keys_file", help="API keys file (default lmrec-keys.json)")
    s.add_argument("--catalog", help="CSV/Parquet with item,title columns for explanations")
    s.add_argument("--no-auth", action="store_true", help="serve without API keys (local use only)")
    lim = s.add_argument_group("limits (per worker; see docs of ServeSettings)")
    lim.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="requests accepted and not yet answered, at most; more get 503 + Retry-After "
        "(default 8; 0: no limit)",
    )
    lim.add_argument(
        "--rate-limit",
        type=float,
        metavar="RPS",
        help="requests/s per API key; more get 429 + Retry-After (default: no limit)",
    )
    lim.add_argument(
        "--rate-burst", type=int, metavar="N", help="requests a key may send at once above RPS"
    )
    lim.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="open connections at most; more get 503 and are closed (default 1000)",
    )
    lim.add_argument(
        "--request-timeout",
        type=float,
        dest="request_timeout_s",
        metavar="S",
        help="a request's headers and body must arrive within S seconds, else 408 (default 10)",
    )
    lim.add_argument(
        "--keep-alive",
        type=float,
        dest="keep_alive_s",
        metavar="S",
        help="close idle kept-alive connections after S seconds (default 5)",
    )
    lim.add_argument(
        "--drain",
        type=float,
        dest="drain_s",
        metavar="S",
        help="on SIGTERM, answer /readyz 503 and keep serving S seconds before shutting "
        "down (default 0)",
    )
    lim.add_argument(
        "--shutdown-timeout",
        type=float,
        dest="shutdown_timeout_s",
        metavar="S",
        help="on shutdown, give requests in flight S seconds to finish (default 30)",
    )
    s.add_argument(
        "--create-key",
        metavar="ROLE",
        choices=["read", "write", "admin"],
        help="create an API key with ROLE (read, write or admin), print it once, and exit",
    )
    s.add_argument(
        "--key-users",
        metavar="U1,U2",
        help="with --create-key: the key may act only for these user ids",
    )
    s.add_argument(
        "--key-tenants",
        metavar="T1,T2",
        help="with --create-key: the key may act only for users 'T:...' of these tenants",
    )
    s.add_argument(
        "--key-no-history",
        action="store_true",
        help="with --create-key: the key may not read user histories (explain for a user)",
    )
    s.add_argument(
        "--key-erase",
        action="store_true",
        help="with --create-key (write or admin): the key may delete users "
        "(DELETE /v1/users/{id}); no key can without it",
    )
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser(
        "retrain",
        help="build a new model version from a model plus the stored feedback events",
        description="Refit the model in --base (same model and hyperparameters) on its training "
        "data plus every event in --store, and write it to --out. Then load it with "
        "POST /v1/models/reload.",
    )
    r.add_argument("--store", required=True, help="event store URL (as given to lmrec serve)")
    r.add_argument("--base", required=True, help="the served model directory")
    r.add_argument("--out", required=True, help="new model directory to write")
    r.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    r.set_defaults(func=cmd_retrain)


def settings_from_args(args: argparse.Namespace):
    """ServeSettings from --config, then flags (flags win); validated, nothing loaded."""
    from lmrec.serve.settings import build_settings, read_settings_file

    values: dict[str, Any] = {}
    if args.config:
        values.update(read_settings_file(args.config))
    for key in (
        "host",
        "port",
        "workers",
        "store_url",
        "keys_file",
        "catalog",
        "rate_limit",
        "rate_burst",
        "max_connections",
        "request_timeout_s",
        "keep_alive_s",
        "drain_s",
        "shutdown_timeout_s",
    ):
        value = getattr(args, key)
        if value is not None:
            values[key] = value
    if args.max_concurrency is not None:
        values["max_concurrency"] = args.max_concurrency or None
    if args.model_dir is not None:
        values["model_dir"] = args.model_dir
    if args.no_auth:
        values["auth"] = False
    if "model_dir" not in values:
        raise ConfigError("lmrec serve needs MODEL_DIR (or model_dir in --config).")
    return build_settings(values)


def _id_list(value: str | None, flag: str) -> list[str] | None:
    if value is None:
        return None
    ids = [v.strip() for v in value.split(",") if v.strip()]
    if not ids:
        raise ConfigError(f"{flag} needs at least one id, e.g. {flag} a,b.")
    return ids


def cmd_serve(args: argparse.Namespace) -> int:
    from lmrec._optional import require

    if args.create_key:
        from lmrec.serve.auth import create_key

        path = Path(args.keys_file or "lmrec-keys.json")
        key_id, key = create_key(
            path,
            args.create_key,
            users=_id_list(args.key_users, "--key-users"),
            tenants=_id_list(args.key_tenants, "--key-tenants"),
            history=not args.key_no_history,
            erase=args.key_erase,
        )
        info(f"added {args.create_key} key {key_id} to {path}; it is shown only once:")
        print(key)
        return 0
    for module in ("fastapi", "uvicorn", "sqlalchemy", "prometheus_client"):
        require(module, "serve")
    settings = settings_from_args(args)
    check_input(settings.model_dir, "Model directory")
    if settings.catalog is not None:
        check_input(settings.catalog, "Catalog")
    if settings.auth:
        from lmrec.serve.auth import KeyRing

        if settings.keys_file is None or not len(KeyRing.load(settings.keys_file)):
            raise ConfigError(
                f"No API keys in {settings.keys_file}. Create one with "
                f"`lmrec serve --create-key admin --keys {settings.keys_file}`, "
                "or pass --no-auth for local experiments."
            )
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not settings.auth:
        logging.getLogger("lmrec.serve").warning("API keys are OFF (--no-auth): anyone may call")
    from lmrec.serve.protocol import LmrecHttpProtocol

    server_options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "http": LmrecHttpProtocol,
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
    }
    start = time.perf_counter()
    if settings.workers == 1:
        from lmrec.serve.app import build_app

        app = build_app(settings)
        info(
            f"model loaded in {time.perf_counter() - start:.2f}s; serving on "
            f"http://{settings.host}:{settings.port}"
        )
        uvicorn.run(app, **server_options)
        return 0
    import uuid

    from lmrec.serve.app import SETTINGS_ENV

    if settings.cluster_id is None:  # the workers of this run follow each other's reloads
        settings = settings.model_copy(update={"cluster_id": uuid.uuid4().hex})
    # Worker processes rebuild the app from these settings (uvicorn needs an import string).
    os.environ[SETTINGS_ENV] = json.dumps(settings.model_dump(mode="json"))
    uvicorn.run(
        "lmrec.serve.app:app_from_env", factory=True, workers=settings.workers, **server_options
    )
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from lmrec._optional import require
    from lmrec.serve.retrain import retrain

    require("sqlalchemy", "serve")
    out = check_output(args.out, args.force, is_dir=True)
    check_input(args.base, "Base model directory")
    start = time.perf_counter()
    model = retrain(args.store, args.base, out, overwrite=args.force)
    info(f"retrained {model!r} in {time.perf_counter() - start:.1f}s")
    print(out)
    return 0
