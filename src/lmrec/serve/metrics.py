"""Prometheus metrics of one app, in its own registry (never the process-global one).

Exposed at ``GET /metrics``:

- ``lmrec_request_latency_seconds{endpoint,method}`` -- histogram per route template;
- ``lmrec_requests_total{endpoint,method,status}`` and ``lmrec_errors_total{endpoint,kind}``;
- ``lmrec_cache_requests_total{result}`` and the gauge ``lmrec_cache_hit_ratio``;
- ``lmrec_recommendations_total{strategy,fallback}``;
- ``lmrec_model_info{name,version}`` (1 for the served version), ``lmrec_model_load_seconds``,
  ``lmrec_startup_seconds``;
- ``lmrec_store_write_latency_seconds`` -- histogram of event-store commits;
- ``lmrec_feedback_events_total{result}`` (``inserted`` or ``duplicate``);
- ``lmrec_refused_requests_total{reason}`` (``rate`` limit or ``concurrency`` limit;
  refusals are counted in ``lmrec_requests_total`` too).
"""

from __future__ import annotations

from lmrec._optional import require

#: Latency buckets (seconds): fine below 10 ms, where the service's target lives.
_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Metrics:
    """The app's collectors, registered in a private ``CollectorRegistry``."""

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve")
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = prom.Histogram(
            "lmrec_request_latency_seconds",
            "Request latency by endpoint.",
            ["endpoint", "method"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.requests = prom.Counter(
            "lmrec_requests",
            "Requests by endpoint and status.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.errors = prom.Counter(
            "lmrec_errors",
            "Failed requests (4xx client errors and 5xx server errors).",
            ["endpoint", "kind"],
            registry=r,
        )
        self.cache = prom.Counter(
            "lmrec_cache_requests", "LRU cache lookups.", ["result"], registry=r
        )
        self.cache_ratio = prom.Gauge(
            "lmrec_cache_hit_ratio", "LRU cache hits / lookups.", registry=r
        )
        self.recs = prom.Counter(
            "lmrec_recommendations",
            "Recommendation lists served, by strategy.",
            ["strategy", "fallback"],
            registry=r,
        )
        self.model_info = prom.Gauge(
            "lmrec_model_info",
            "The served model version (value 1).",
            ["name", "version"],
            registry=r,
        )
        self.model_load = prom.Gauge(
            "lmrec_model_load_seconds",
            "Seconds to load and precompute the served model.",
            registry=r,
        )
        self.startup = prom.Gauge(
            "lmrec_startup_seconds", "Seconds from start to ready.", registry=r
        )
        self.store_write = prom.Histogram(
            "lmrec_store_write_latency_seconds",
            "Event store commit latency (per request).",
            buckets=_BUCKETS,
            registry=r,
        )
        self.feedback = prom.Counter(
            "lmrec_feedback_events", "Feedback events received.", ["result"], registry=r
        )
        self.refused = prom.Counter(
            "lmrec_refused_requests",
            "Requests refused before any work (reason: rate or concurrency).",
            ["reason"],
            registry=r,
        )
        self._hits = 0
        self._lookups = 0

    def cache_hit(self) -> None:
        self.cache.labels("hit").inc()
        self._hits += 1
        self._lookups += 1
        self.cache_ratio.set(self._hits / self._lookups)

    def cache_miss(self) -> None:
        self.cache.labels("miss").inc()
        self._lookups += 1
        self.cache_ratio.set(self._hits / self._lookups)

    def set_model(self, name: str, version: str, load_seconds: float) -> None:
        """Mark ``version`` as the served one (others drop to 0)."""
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)
        self.model_load.set(load_seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST
