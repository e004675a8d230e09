"""Several workers serve one model version: reloads and rollbacks reach every worker.

Workers of one cluster (``settings.cluster_id``; ``lmrec serve --workers N`` makes one
per run) share two tables in the event store's database:

``lmrec_serving``
    one row per cluster: the model directory and version every worker must serve, and
    a generation number bumped by every reload or rollback;
``lmrec_workers``
    one row per worker: the version and generation it serves, and a heartbeat.

A reload or rollback is validated by the worker that receives it (a broken model is
refused there and nothing changes), then published as the next generation. Every
worker polls the serving row every ``cluster_poll_s`` and loads (or rolls back to) the
published version. The request that published returns only when every live worker
(heartbeat younger than ``_STALE_S``) reports that version, so once it returns every
worker serves the new version. A worker that starts later loads the published version
before it answers its first request.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from lmrec.errors import LmrecError
from lmrec.serve.events import EventStore
from lmrec.serve.model_store import LoadedModel, ModelStore

log = logging.getLogger("lmrec.serve")

#: A worker whose heartbeat is older than this is presumed dead (not waited for).
_STALE_S = 5.0
#: Seconds between a worker's heartbeats.
_HEARTBEAT_S = 1.0


def _tables(sa, metadata):  # sqlalchemy is imported lazily (optional extra)
    serving = sa.Table(
        "lmrec_serving",
        metadata,
        sa.Column("cluster", sa.String(64), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    workers = sa.Table(
        "lmrec_workers",
        metadata,
        sa.Column("cluster", sa.String(64), primary_key=True),
        sa.Column("worker", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("heartbeat", sa.Float, nullable=False),
    )
    return serving, workers


@dataclass(frozen=True)
class Published:
    """What a reload or rollback reached: the version and how many workers serve it."""

    version: str
    generation: int
    workers: int
    in_sync: int


class Cluster:
    """This worker's membership of a cluster (see the module docstring).

    Parameters
    ----------
    cluster_id : str
        Shared by the workers that must serve the same version.
    store : EventStore
        Its database holds the cluster's tables.
    model_store : ModelStore
        This worker's models.
    on_swap : callable
        Called with the new :class:`LoadedModel` after this worker swapped models
        because another worker published a version (metrics, cache).
    """

    def __init__(
        self,
        cluster_id: str,
        store: EventStore,
        model_store: ModelStore,
        on_swap: Callable[[LoadedModel], None],
    ) -> None:
        from lmrec._optional import require

        sa = require("sqlalchemy", "serve")
        self._sa = sa
        self.engine = store.engine
        self.cluster_id = cluster_id
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.model_store = model_store
        self.on_swap = on_swap
        self.generation = 0
        self._last_beat = 0.0
        metadata = sa.MetaData()
        self.serving, self.workers = _tables(sa, metadata)
        metadata.create_all(self.engine)

    # ------------------------------------------------------------------ every worker
    def follow(self) -> bool:
        """Serve the published version if it is new to this worker; heartbeat. Blocking.

        Returns whether the model was swapped.
        """
        sa, t = self._sa, self.serving
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.generation, t.c.path, t.c.version).where(
                    t.c.cluster == self.cluster_id
                )
            ).first()
        swapped = False
        if row is not None and row.generation > self.generation:
            swapped = self._apply(row.path, row.version)
            self.generation = row.generation
            self._beat(force=True)
        else:
            self._beat()
        return swapped

    def _apply(self, path: str, version: str) -> bool:
        ms = self.model_store
        if ms.current.version == version:
            return False
        try:
            if ms.previous is not None and ms.previous.version == version:
                new = ms.rollback()
            else:
                new = ms.reload(path)
        except (LmrecError, OSError) as e:
            log.error("could not load published model %s (%s): %s", version, path, e)
            return False
        if new.version != version:
            log.error("published version %s, but %s holds %s", version, path, new.version)
        log.info("following the cluster: now serving %s", new.version)
        self.on_swap(new)
        return True

    def _beat(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_beat < _HEARTBEAT_S:
            return
        sa, t = self._sa, self.workers
        values = {
            "version": self.model_store.current.version,
            "generation": self.generation,
            "heartbeat": now,
        }
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(t)
                .where(t.c.cluster == self.cluster_id, t.c.worker == self.worker)
                .values(**values)
            )
            if done.rowcount == 0:
                conn.execute(
                    sa.insert(t).values(cluster=self.cluster_id, worker=self.worker, **values)
                )
        self._last_beat = now

    def leave(self) -> None:
        """Remove this worker's row (at shutdown)."""
        sa, t = self._sa, self.workers
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(t).where(t.c.cluster == self.cluster_id, t.c.worker == self.worker)
            )

    # ------------------------------------------------------------------ the publisher
    def publish(self, lm: LoadedModel, timeout: float) -> Published:
        """Make ``lm`` (already served here) the cluster's version; wait for every worker.

        Blocking. Returns how many live workers serve it when the wait ended (all of
        them, unless ``timeout`` seconds passed first).
        """
        sa, t = self._sa, self.serving
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(t)
                .where(t.c.cluster == self.cluster_id)
                .values(
                    generation=t.c.generation + 1,
                    path=str(lm.path),
                    version=lm.version,
                    updated_at=time.time(),
                )
            )
            if done.rowcount == 0:
                conn.execute(
                    sa.insert(t).values(
                        cluster=self.cluster_id,
                        generation=1,
                        path=str(lm.path),
                        version=lm.version,
                        updated_at=time.time(),
                    )
                )
            generation = conn.execute(
                sa.select(t.c.generation).where(t.c.cluster == self.cluster_id)
            ).scalar_one()
        self.generation = generation
        self._beat(force=True)
        deadline = time.monotonic() + timeout
        while True:
            live, in_sync = self._census(lm.version)
            if in_sync >= live or time.monotonic() > deadline:
                if in_sync < live:
                    log.warning("%d of %d workers serve %s", in_sync, live, lm.version)
                return Published(lm.version, generation, live, in_sync)
            time.sleep(0.05)

    def _census(self, version: str) -> tuple[int, int]:
        sa, t = self._sa, self.workers
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.version).where(
                    t.c.cluster == self.cluster_id, t.c.heartbeat > time.time() - _STALE_S
                )
            ).all()
        return len(rows), sum(r.version == version for r in rows)
