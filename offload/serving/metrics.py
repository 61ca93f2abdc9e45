"""Prometheus metrics of one service replica (served at ``/metrics``, text format 0.0.4).

Names follow Prometheus conventions (base units, ``_total`` counters); labels: ``model``,
``bucket`` (the policy's queue label), ``path`` (full / brownout), ``reason``, ``code``.
Each replica owns its registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# latency buckets (s): from a fast render to a very late detection
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


class ServeMetrics:
    """The replica's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "robomr_serve_requests", "requests answered", ["model", "path", "code"], registry=r
        )
        self.rejected = Counter(
            "robomr_serve_rejected_requests",
            "requests answered 413/429/504 by admission or deadline",
            ["model", "reason"],
            registry=r,
        )
        self.queue = Gauge(
            "robomr_serve_queue_length",
            "queued requests per bucket",
            ["model", "bucket"],
            registry=r,
        )
        self.batch_size = Histogram(
            "robomr_serve_batch_size",
            "requests per batch",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "robomr_serve_request_latency_seconds",
            "arrival to answer inside the service",
            ["model", "path"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.service = Histogram(
            "robomr_serve_batch_service_seconds",
            "model run time per batch",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tau = Gauge(
            "robomr_serve_brownout_tau",
            "brownout dial: share on the full path",
            ["model"],
            registry=r,
        )
        self.buckets = Gauge(
            "robomr_serve_buckets", "buckets of the batching policy", ["model"], registry=r
        )
        self.ready = Gauge("robomr_serve_ready", "1 when every model is loaded", registry=r)

    def set_queues(self, model: str, lengths: dict[str, int]) -> None:
        """Replaces the model's per-bucket queue gauges (buckets come and go with splits)."""
        for labels in list(self.queue._metrics):  # no public API lists children
            if labels[0] == model and labels[1] not in lengths:
                self.queue.remove(*labels)
        for label, n in lengths.items():
            self.queue.labels(model, label).set(n)
        self.buckets.labels(model).set(len(lengths))

    def render(self) -> bytes:
        return generate_latest(self.registry)
