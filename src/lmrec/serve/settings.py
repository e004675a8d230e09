"""Settings of the HTTP service: one frozen pydantic model, built from CLI flags or a file.

There is no module-level settings object: :func:`lmrec.serve.app.create_app` takes a
:class:`ServeSettings` instance, so two apps with different settings can live in one
process (tests do exactly that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lmrec._config_files import read_config_file
from lmrec.errors import ConfigError

#: Largest ``k`` any configuration may allow (keeps responses and top-k work bounded).
HARD_MAX_K = 1000
#: Largest list (history, exclusions, candidates, feedback batch) any configuration may allow.
HARD_MAX_LIST = 10_000


class ServeSettings(BaseModel):
    """Everything ``lmrec serve`` can be told; CLI flags and ``--config`` files fill it in.

    Examples
    --------
    >>> s = ServeSettings(model_dir="models/ease", auth=False)
    >>> s.max_k, s.store_url
    (100, 'sqlite:///lmrec-events.db')
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model_dir: Path
    """Model directory (from ``lmrec train``) served at startup."""
    host: str = "127.0.0.1"
    """Interface to bind; the default serves this machine only."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port."""
    workers: int = Field(default=1, ge=1, le=64)
    """Worker processes. Each loads the model; online updates reach the other workers
    within ``sync_interval_s`` through the event store."""
    store_url: str = "sqlite:///lmrec-events.db"
    """SQLAlchemy URL of the feedback event store (``sqlite:///file.db`` or
    ``postgresql+psycopg://user@host/db``)."""
    auth: bool = True
    """Require API keys. Turn off only for local experiments."""
    keys_file: Path | None = Path("lmrec-keys.json")
    """JSON file of hashed API keys and roles (``lmrec serve --create-key ROLE``)."""
    tenant_separator: str = Field(default=":", min_length=1, max_length=8)
    """A user id ``acme:42`` belongs to tenant ``acme``; API keys may be limited to tenants."""
    metrics_auth: bool = False
    """Require a read key for ``/metrics`` too (scrapers usually cannot send one)."""
    max_k: int = Field(default=100, ge=1, le=HARD_MAX_K)
    """Largest list length a request may ask for."""
    max_list: int = Field(default=1000, ge=1, le=HARD_MAX_LIST)
    """Largest list in a request: session items, exclusions, candidates, feedback events."""
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    """Requests with a larger body are refused with 413."""
    max_id_length: int = Field(default=256, ge=1, le=4096)
    """Longest user or item id accepted."""
    precompute_k: int = Field(default=100, ge=1, le=HARD_MAX_K)
    """Length of the top-k list precomputed for every known user at (re)load."""
    precompute_max_users: int = Field(default=2_000_000, ge=0)
    """Skip precomputation (and use the LRU cache only) for models with more users."""
    ann: bool = True
    """Serve from the ANN index saved beside the model (``lmrec index build``) when the
    catalog has at least ``ann_min_items`` items; false always scores exactly."""
    ann_min_items: int = Field(default=100_000, ge=0)
    """Smallest catalog served from an ANN index (smaller ones are fast enough exactly)."""
    cache_size: int = Field(default=10_000, ge=0)
    """Entries of the LRU cache of computed recommendation lists (0 disables it)."""
    max_concurrency: int | None = Field(default=8, ge=1)
    """Requests a worker accepts and has not answered yet, at most; one more is answered
    at once with 503 and ``Retry-After`` (null: no limit). Keep it small: a worker is one
    event loop, and every admitted request waits for those ahead of it."""
    rate_limit: float | None = Field(default=None, gt=0)
    """Requests per second allowed per API key (per client address without a valid key)
    and per worker; past it, 429 with ``Retry-After``. Null: no rate limit."""
    rate_burst: int | None = Field(default=None, ge=1)
    """Requests a key may send at once above ``rate_limit`` (default: one second's worth)."""
    max_connections: int = Field(default=1000, ge=1)
    """Open connections per worker, at most; past it a new connection gets 503 and is closed."""
    request_timeout_s: float = Field(default=10.0, gt=0)
    """A request's headers and body must arrive within this many seconds (else 408 and
    the connection is closed): slow or silent clients cannot hold connections."""
    keep_alive_s: float = Field(default=5.0, gt=0)
    """Idle kept-alive connections are closed after this many seconds."""
    drain_s: float = Field(default=0.0, ge=0)
    """On SIGTERM, keep serving this long with ``/readyz`` answering 503 (so load balancers
    stop sending) and every response closing its connection, then shut down."""
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    """On shutdown, requests in flight get this long to finish before they are cancelled."""
    cluster_id: str | None = Field(default=None, min_length=1, max_length=64)
    """Workers with the same cluster id serve the same model version: a reload or rollback
    on one reaches all of them (through tables in the event store) before it returns.
    ``lmrec serve --workers N`` sets a fresh one per run; set it yourself to make servers
    on several hosts that share a PostgreSQL event store follow each other."""
    cluster_poll_s: float = Field(default=0.2, gt=0, le=60)
    """How often a clustered worker looks for a newly published model version."""
    cluster_sync_timeout_s: float = Field(default=60.0, gt=0)
    """A reload or rollback waits at most this long for every worker to serve it."""
    sync_interval_s: float = Field(default=1.0, gt=0)
    """How often a worker reads events written by other workers into its online overlay."""
    reload_root: Path | None = None
    """Model directories ``/v1/models/reload`` may load must lie under this directory
    (default: the parent of ``model_dir``)."""
    catalog: Path | None = None
    """Optional CSV or Parquet with ``item`` and ``title`` columns, for readable explanations."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS; empty (the default) sends no CORS headers at all."""
    log_level: str = "info"
    """Log level of the service and uvicorn."""

    @model_validator(mode="after")
    def _check(self) -> ServeSettings:
        if self.auth and self.keys_file is None:
            raise ValueError("auth is on but keys_file is not set; set keys_file or auth=false")
        return self

    @property
    def allowed_reload_root(self) -> Path:
        """The directory reloads are confined to."""
        root = self.reload_root if self.reload_root is not None else self.model_dir.parent
        return Path(root).resolve()


def build_settings(values: dict[str, Any]) -> ServeSettings:
    """Validate ``values``, turning pydantic errors into one readable :class:`ConfigError`."""
    try:
        return ServeSettings(**values)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
            for err in e.errors()
        )
        valid = ", ".join(sorted(ServeSettings.model_fields))
        raise ConfigError(f"Invalid serve settings: {problems}. Valid keys: {valid}.") from e


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """Key/values from a TOML (``.toml``) or JSON file; a ``[serve]`` table is used if present."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "Config file not found", str(path))
    data = read_config_file(path, "Config file")
    serve = data.get("serve", data)
    if not isinstance(serve, dict):
        raise ConfigError(f"{path}: [serve] must be a table of settings.")
    return dict(serve)
