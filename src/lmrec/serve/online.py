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
lists are keyed by it, so a stale list can never be served.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

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
        self.last_id = 0
        self.n_events = 0

    def apply(self, events: Iterable[Event]) -> None:
        """Fold ``events`` in; the latest weight per (user, item) wins."""
        with self._lock:
            for ev in events:
                fb = self._users.get(ev.user, _EMPTY)
                items = dict(fb.items)
                items[ev.item] = ev.weight
                self._users[ev.user] = UserFeedback(fb.generation + 1, items)
                self.n_events += 1
                if ev.id is not None and ev.id > self.last_id:
                    self.last_id = ev.id

    def get(self, user: str) -> UserFeedback:
        """The user's feedback (generation 0 and no items when there is none)."""
        return self._users.get(user, _EMPTY)

    def sync(self, store: EventStore, *, max_events: int = 100_000) -> int:
        """Apply events stored since the last sync (by any process); returns how many."""
        n = 0
        while n < max_events:
            chunk = store.events_after(self.last_id, 10_000)
            if not chunk:
                break
            self.apply(chunk)
            n += len(chunk)
        return n

    def __len__(self) -> int:
        return len(self._users)


class LRUCache:
    """A small thread-safe least-recently-used cache with hit/miss callbacks (for metrics)."""

    def __init__(
        self,
        size: int,
        on_hit: Callable[[], None] | None = None,
        on_miss: Callable[[], None] | None = None,
    ) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self._on_hit = on_hit
        self._on_miss = on_miss
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> object | None:
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

    def put(self, key: Hashable, value: object) -> None:
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

    def __len__(self) -> int:
        return len(self._data)
