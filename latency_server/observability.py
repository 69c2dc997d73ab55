"""The service's Prometheus metrics that work increments where it happens (measurements, verdicts, drift).

One :class:`Metrics` per service, each with its own ``CollectorRegistry`` rather than the library's global one, so
that several apps in one process (the tests) keep separate counts. It sits at the bottom of the server's layers,
next to the settings and errors, so that every wing may count; what the server can read at scrape time (the
queue, the worker, the jobs) is collected then by :mod:`latency_server.api.metrics` instead of being pushed here.
Labels stay low in cardinality and never carry an arch string: a client's networks are its own.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["BOUND_RATIO_BUCKETS", "PREFIX", "Metrics"]

#: every metric's name starts with this
PREFIX = "latency_server"

#: the verdict's bound over its central figure: 1.0 is no margin, 1.5 a bound half again the central figure
BOUND_RATIO_BUCKETS = (1.0, 1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0)

#: request durations in seconds: a cached lookup answers in milliseconds, a measurement in seconds to minutes
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """The metrics the wings increment; :attr:`registry` is what ``GET /metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests answered, by route template, method and "
                                "status", ["route", "method", "status"], registry=reg)
        self.request_seconds = Histogram(f"{PREFIX}_http_request_duration_seconds", "Time to answer an HTTP "
                                         "request, by route template and method", ["route", "method"],
                                         buckets=DURATION_BUCKETS, registry=reg)
        self.measurements = Counter(f"{PREFIX}_measurements", "Measurements taken by the worker, by kind (block, "
                                    "network; reference and calibration: a table build's) and backend",
                                    ["kind", "backend"], registry=reg)
        self.refusals = Counter(f"{PREFIX}_refusals", "Requests refused before any work (4xx), by reason: the "
                                "answer's error type (invalid_request, invalid_input, over_budget, queue_full, "
                                "body_too_large)", ["reason", "status"], registry=reg)
        self.drift_ratio = Gauge(f"{PREFIX}_drift_ratio", "The drift reference's latest figure over its level when "
                                 "the configuration's table was built (1.0: as fast as then)",
                                 ["backend", "threads", "batch", "resolution"], registry=reg)
        self.bound_ratio = Histogram(f"{PREFIX}_verdict_bound_ratio", "A verdict's upper bound over its central "
                                     "figure (the margin the confidence costs)", ["backend"],
                                     buckets=BOUND_RATIO_BUCKETS, registry=reg)

    def measured(self, kind: str, backend: str, count: int = 1) -> None:
        """Count ``count`` measurements of ``kind`` (block, network, reference) on ``backend``."""
        if count:
            self.measurements.labels(kind=kind, backend=backend).inc(count)

    def drift(self, backend: str, threads: int, batch: int, resolution: int, ratio: float) -> None:
        """Set a configuration's latest drift ratio."""
        self.drift_ratio.labels(backend=backend, threads=str(threads), batch=str(batch),
                                resolution=str(resolution)).set(ratio)
