"""Prometheus metrics of one app, in their own registry (several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """Request, job, cache and webhook counters, analysis latency and queue depth."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "trueframe_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "trueframe_http_request_seconds", "HTTP request latency", ["route"], registry=r
        )
        self.analyses = Histogram(
            "trueframe_analysis_seconds",
            "time spent analysing one upload",
            ["kind"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.jobs = Counter("trueframe_jobs_finished", "jobs finished", ["status"], registry=r)
        self.cache_hits = Counter("trueframe_cache_hits", "reports answered from the cache", registry=r)
        self.webhooks = Counter("trueframe_webhooks", "webhook deliveries", ["outcome"], registry=r)
        self.queue = Gauge("trueframe_queue_depth", "jobs queued or running", registry=r)
        self.queue.set_function(queue_depth)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
