"""The feedback event store: SQLAlchemy Core, SQLite by default, PostgreSQL by URL.

Durability: a write returns only after its transaction has committed. SQLite runs in
WAL mode with ``synchronous=FULL``, so a committed event survives ``kill -9`` of the
server (and a power cut). Writes from all request handlers of a process go through
one writer thread that commits whatever has queued up in one transaction ("group
commit"): one fsync acknowledges many events, and SQLite never sees two writers of
the same process fighting for its lock.

Idempotency: ``idempotency_key`` is UNIQUE. A batch first drops keys already stored
(one ``SELECT ... WHERE idempotency_key IN (...)`` with bound parameters), then inserts
with the dialect's ``ON CONFLICT DO NOTHING`` (SQLite, PostgreSQL) so a race with
another process is a no-op too. Ids are always bound parameters, never SQL text.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

log = logging.getLogger("lmrec.serve")

#: Bound parameters per ``IN (...)`` query (SQLite allows 32,766; PostgreSQL 65,535).
_IN_CHUNK = 500
#: Events committed per transaction by the writer thread at most.
_MAX_GROUP = 5000


@dataclass(frozen=True)
class Event:
    """One interaction event, as stored."""

    idempotency_key: str
    user: str
    item: str
    type: str
    weight: float
    ts: float
    received_at: float = 0.0
    id: int | None = None


@dataclass(frozen=True)
class WriteResult:
    """What a write did: the events newly stored, and how many were duplicates."""

    inserted: list[Event]
    duplicates: int


def _table(metadata):  # sqlalchemy is imported lazily (optional extra)
    from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table

    return Table(
        "events",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("idempotency_key", String(128), nullable=False, unique=True),
        Column("user", String(4096), nullable=False),
        Column("item", String(4096), nullable=False),
        Column("type", String(32), nullable=False),
        Column("weight", Float, nullable=False),
        Column("ts", Float, nullable=False),
        Column("received_at", Float, nullable=False),
        Index("ix_events_user", "user"),
    )


def _deletions_table(metadata):
    """Audit of user deletions: when, how many users and events -- never who."""
    from sqlalchemy import BigInteger, Column, Float, Integer, String, Table

    return Table(
        "deletions",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("request_id", String(64), nullable=False),
        Column("time", Float, nullable=False),
        Column("n_users", Integer, nullable=False),
        Column("n_events", Integer, nullable=False),
    )


class EventStore:
    """Durable, idempotent storage of feedback events.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///events.db`` (created if missing) or a PostgreSQL URL.
    """

    def __init__(self, url: str) -> None:
        from lmrec._optional import require

        sa = require("sqlalchemy", "serve")
        self.url = url
        self._sa = sa
        if url.startswith("sqlite"):
            self.engine = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _record) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        self.metadata = sa.MetaData()
        self.table = _table(self.metadata)
        self.deletions = _deletions_table(self.metadata)
        self.metadata.create_all(self.engine)
        self._queue: queue.Queue[tuple[list[Event], Future] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        #: Exceptions that mean "the store is unavailable" (the service answers 503).
        self.errors: tuple[type[BaseException], ...] = (sa.exc.SQLAlchemyError, OSError)

    # ------------------------------------------------------------------ writing
    def write(self, events: Sequence[Event]) -> WriteResult:
        """Store ``events`` in one transaction (repeated keys: no-ops); blocks until committed."""
        with self.engine.begin() as conn:
            return self._insert(conn, list(events))

    def submit(self, events: Sequence[Event]) -> Future:
        """Queue ``events`` for the writer thread; the future resolves once they are committed."""
        self._ensure_writer()
        fut: Future = Future()
        self._queue.put((list(events), fut))
        return fut

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                t = threading.Thread(
                    target=self._run_writer, name="lmrec-event-writer", daemon=True
                )
                t.start()
                self._writer = t

    def _run_writer(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            n = len(first[0])
            while n < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(nxt)
                n += len(nxt[0])
            self._commit_group(group)

    def _commit_group(self, group: list[tuple[list[Event], Future]]) -> None:
        try:
            with self.engine.begin() as conn:
                results = [self._insert(conn, events) for events, _ in group]
            for (_, fut), res in zip(group, results, strict=True):
                fut.set_result(res)
        except (self._sa.exc.SQLAlchemyError, OSError, ValueError) as e:
            log.exception("event store write failed")
            for _, fut in group:
                fut.set_exception(e)
        finally:  # never leave a request waiting, whatever went wrong
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(RuntimeError("The event writer stopped unexpectedly."))

    def _insert(self, conn, events: list[Event]) -> WriteResult:
        sa, t = self._sa, self.table
        unique: dict[str, Event] = {}
        for ev in events:
            unique.setdefault(ev.idempotency_key, ev)
        keys = list(unique)
        existing: set[str] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            rows = conn.execute(
                sa.select(t.c.idempotency_key).where(t.c.idempotency_key.in_(chunk))
            )
            existing.update(r[0] for r in rows)
        now = time.time()
        new = [
            Event(ev.idempotency_key, ev.user, ev.item, ev.type, ev.weight, ev.ts, now)
            for key, ev in unique.items()
            if key not in existing
        ]
        if new:
            stmt, returning = self._insert_stmt()
            result = conn.execute(stmt, [_row(ev) for ev in new])
            if returning:
                # Another process may have stored some keys since the SELECT: the
                # conflict skips them, and only the rows really inserted come back.
                ids = dict(result.all())
                new = [
                    replace(ev, id=int(ids[ev.idempotency_key]))
                    for ev in new
                    if ev.idempotency_key in ids
                ]
        return WriteResult(inserted=new, duplicates=len(events) - len(new))

    def _insert_stmt(self):
        """The INSERT, and whether it returns the (key, id) of the rows really inserted."""
        dialect = self.engine.dialect.name
        t = self.table
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            return t.insert(), False
        stmt = (
            insert(t)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(t.c.idempotency_key, t.c.id)
        )
        return stmt, True

    # ------------------------------------------------------------------ reading
    def events_after(self, after_id: int = 0, limit: int = 10_000) -> list[Event]:
        """Up to ``limit`` events with ``id > after_id``, in id order."""
        sa, t = self._sa, self.table
        stmt = sa.select(t).where(t.c.id > after_id).order_by(t.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(stmt).mappings()]

    def iter_events(self, after_id: int = 0, batch: int = 10_000) -> Iterator[Event]:
        """Every event with ``id > after_id``, in id order, read ``batch`` at a time."""
        while True:
            chunk = self.events_after(after_id, batch)
            yield from chunk
            if len(chunk) < batch:
                return
            after_id = chunk[-1].id  # type: ignore[assignment]  # stored events have ids

    def count(self) -> int:
        """Number of stored events."""
        sa = self._sa
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one()
            )

    def events_of(self, user: str) -> list[Event]:
        """Every stored event of ``user``, in id order."""
        sa, t = self._sa, self.table
        stmt = sa.select(t).where(t.c.user == str(user)).order_by(t.c.id)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(stmt).mappings()]

    def last_deletion(self) -> int:
        """Id of the newest row of the deletion audit (0 when there is none): a worker that
        sees it grow rebuilds what it keeps in memory from the store."""
        sa, t = self._sa, self.deletions
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0))).scalar_one()
            )

    def delete_users(self, users: Sequence[str], *, request_id: str = "") -> int:
        """Delete every event of ``users`` (the right to erasure); returns how many went.

        One transaction. On SQLite the freed pages are overwritten (``secure_delete``) and
        the write-ahead log is checkpointed and truncated, so the events leave the disk
        too. A row of ``deletions`` records the request (id, time, counts) with no user id.
        """
        users = [str(u) for u in users]
        with self.engine.begin() as conn:
            if self.url.startswith("sqlite"):
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            n = 0
            for start in range(0, len(users), 500):
                part = users[start : start + 500]
                n += conn.execute(self.table.delete().where(self.table.c.user.in_(part))).rowcount
            conn.execute(
                self.deletions.insert().values(
                    request_id=request_id, time=time.time(), n_users=len(users), n_events=n
                )
            )
        if self.url.startswith("sqlite"):
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(self._sa.select(1))
        except self._sa.exc.SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        """Stop the writer thread (after it commits what is queued) and release connections.

        The store stays usable: a later write starts a new writer and new connections.
        """
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=30)
            self._writer = None
        self.engine.dispose()


def _row(ev: Event) -> dict[str, object]:
    return {
        "idempotency_key": ev.idempotency_key,
        "user": ev.user,
        "item": ev.item,
        "type": ev.type,
        "weight": ev.weight,
        "ts": ev.ts,
        "received_at": ev.received_at,
    }


def _event(r) -> Event:
    return Event(
        r["idempotency_key"],
        r["user"],
        r["item"],
        r["type"],
        float(r["weight"]),
        float(r["ts"]),
        float(r["received_at"]),
        int(r["id"]),
    )
