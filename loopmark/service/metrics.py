"""Prometheus metrics of the render service, in a registry of their own (no global state)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Per-caption renders take a fraction of a second; slow ones (cold prepare, a loaded box) more.
RENDER_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.renders = Counter(
            "loopmark_renders",
            "Renders finished, by result (done, failed, lost_lease)",
            ["result"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "loopmark_cache_hits",
            "Requests answered from a finished render",
            registry=self.registry,
        )
        self.render_seconds = Histogram(
            "loopmark_render_seconds",
            "Wall time of one render, storage included",
            buckets=RENDER_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "loopmark_queue_depth", "Render jobs waiting for a worker", registry=self.registry
        )
        self.lease_takeovers = Counter(
            "loopmark_lease_takeovers",
            "Renders that took over the expired lease of a crashed render",
            registry=self.registry,
        )

    def track_queue_depth(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(lambda: float(depth()))

    def exposition(self) -> bytes:
        """The Prometheus text format, for GET /metrics."""
        return generate_latest(self.registry)
