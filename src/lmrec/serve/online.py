"""Online updates without retraining: a per-user overlay of feedback events.

Every event accepted by ``/v1/feedback`` lands here right after it is committed to the
event store. For the next request of that user the service

- excludes every item the user gave feedback on, and
- for models that fold in (ALS, EASE, kNN, content, hybrid), rescores the user from the
  updated history: training row + items with positive feedback.

The overlay is rebuilt from the store at startup, and each worker process reads events
written by the others every ``sync_interval_s``. Applying an event twice is harmless
(the overlay is a set per user), so the store's ids only serve to read new rows.

Cache invalidation: each user has a generation number, bumped by every event; cached
lists are keyed by it, so a stale list can never be served. Generations come from one
counter of the overlay (never reused), so a user deleted and then seen again cannot
meet a list cached before the deletion.

Deletion (``DELETE /v1/users/{id}``): :meth:`OnlineOverlay.reset_user` sets a user's
entry to what the store still holds (nothing, after the deletion), and every worker
rebuilds its overlay from the store when it sees a new deletion in the store's audit
table (:meth:`OnlineOverlay.refresh_after_deletions`), so feedback of a deleted user
leaves the memory of the other worker processes too, without any of them learning who.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from lmrec.serve.events import Event, EventStore


@dataclass(frozen=True)
class UserFeedback:
    """A user's feedback since the model was trained: item -> latest weight."""

    generation: int
    items: dict[str, float]

    @property
    def positive(self) -> list[str]:
        """Items to add to the user's history (weight > 0)."""
        return [i for i, w in self.items.items() if w > 0]


_EMPTY = UserFeedback(0, {})


class OnlineOverlay:
    """Feedback events per user, kept in memory (thread-safe)."""

    def __init__(self) -> None:
        self._users: dict[str, UserFeedback] = {}
        self._lock = threading.Lock()
        # Held while events read from the store are applied, so a reset or a rebuild never
        # interleaves with a sync that read the store before a deletion.
        self._sync_lock = threading.Lock()
        self._clock = 0  # the last generation handed out
        self.last_id = 0
        self.n_events = 0
        self.deletions_seen: int | None = None  # the store's last deletion, when last seen

    def apply(self, events: Iterable[Event]) -> None:
        """Fold ``events`` in; the latest weight per (user, item) wins."""
        with self._lock:
            self._apply(self._users, events)

    def _apply(self, users: dict[str, UserFeedback], events: Iterable[Event]) -> None:
        for ev in events:
            fb = users.get(ev.user, _EMPTY)
            items = dict(fb.items)
            items[ev.item] = ev.weight
            self._clock += 1
            users[ev.user] = UserFeedback(self._clock, items)
            self.n_events += 1
            if ev.id is not None and ev.id > self.last_id:
                self.last_id = ev.id

    def get(self, user: str) -> UserFeedback:
        """The user's feedback (generation 0 and no items when there is none)."""
        return self._users.get(user, _EMPTY)

    def sync(self, store: EventStore, *, max_events: int = 100_000) -> int:
        """Apply events stored since the last sync (by any process); returns how many."""
        n = 0
        with self._sync_lock:
            while n < max_events:
                chunk = store.events_after(self.last_id, 10_000)
                if not chunk:
                    break
                self.apply(chunk)
                n += len(chunk)
        return n

    def reset_user(self, user: str, store: EventStore) -> int:
        """Make ``user``'s entry what ``store`` holds of them now (nothing, once their
        events are deleted); returns how many feedback items the old entry had."""
        with self._sync_lock:
            # events past ``last_id`` are not synced yet: the next sync brings them, in order
            kept = [e for e in store.events_of(user) if (e.id or 0) <= self.last_id]
            with self._lock:
                old = self._users.pop(user, _EMPTY)
                self._apply(self._users, kept)
        return len(old.items)

    def refresh_after_deletions(self, store: EventStore) -> bool:
        """Rebuild the overlay from ``store`` if it recorded a user deletion since the last
        call (by any worker); returns whether it did. The first call only notes the mark."""
        mark = store.last_deletion()
        if self.deletions_seen is None or mark == self.deletions_seen:
            self.deletions_seen = mark
            return False
        with self._sync_lock:
            items: dict[str, dict[str, float]] = {}
            last, n = 0, 0
            for ev in store.iter_events():  # read outside the request lock
                items.setdefault(ev.user, {})[ev.item] = ev.weight
                last, n = max(last, ev.id or 0), n + 1
            with self._lock:
                users = {}
                for user, its in items.items():
                    self._clock += 1
                    users[user] = UserFeedback(self._clock, its)
                self._users, self.n_events = users, n
                # events applied meanwhile (ids past ``last``) come back with the next sync
                self.last_id = last
        self.deletions_seen = mark
        return True

    def __len__(self) -> int:
        return len(self._users)


V = TypeVar("V")


class LRUCache(Generic[V]):
    """A small thread-safe least-recently-used cache with hit/miss callbacks (for metrics)."""

    def __init__(
        self,
        size: int,
        on_hit: Callable[[], None] | None = None,
        on_miss: Callable[[], None] | None = None,
    ) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._on_hit = on_hit
        self._on_miss = on_miss
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        if self.size == 0:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
        if value is not None and self._on_hit is not None:
            self._on_hit()
        elif value is None and self._on_miss is not None:
            self._on_miss()
        return value

    def put(self, key: Hashable, value: V) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def discard(self, match: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key ``match``es; returns how many went."""
        with self._lock:
            gone = [k for k in self._data if match(k)]
            for k in gone:
                del self._data[k]
        return len(gone)

    def __len__(self) -> int:
        return len(self._data)
