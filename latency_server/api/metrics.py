"""``GET /metrics``: the service's Prometheus metrics, the request middleware and what is read at scrape time.

The endpoint answers without a token, as exporters usually do (a scraper holds no client's token): what it
exposes is counts, durations, the queue and the worker's state and each configuration's drift (backend,
threads, batch, resolution), never an arch string, a job's networks or a client's address. Request counts are
labelled by the route's template (``/v1/jobs/{job_id}``), never by the raw path; requests no route matched share
the label ``unmatched``. Refusals (4xx answered before any work) are counted by their error type in
:mod:`latency_server.api.error_handlers` and :mod:`latency_server.api.service_errors` through :func:`refused`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.routing import Match

from latency_server.observability import PREFIX, Metrics
from latency_server.service import LatencyService

__all__ = ["MetricsMiddleware", "ServiceCollector", "metric_catalogue", "metrics_of", "refused", "router"]

router = APIRouter(tags=["metrics"])

#: reasons of worker kills (the other task failures are errors the task raised)
_KILL_REASONS = ("timeout", "memory", "crash")


def metrics_of(app: Any) -> Metrics | None:
    """The app's metrics, once its service runs."""
    service = getattr(app.state, "service", None)
    return getattr(service, "metrics", None)


def refused(request: Request, reason: str, status: int) -> None:
    """Count a refusal answered with ``status`` for ``reason`` (the answer's error type)."""
    metrics = metrics_of(request.app)
    if metrics is not None and 400 <= status < 500:
        metrics.refusals.labels(reason=reason, status=str(status)).inc()


def _worker_alive(service: LatencyService) -> bool:
    proc = service.worker._proc  # no ping: a scrape must never wait on a busy worker
    return proc is not None and proc.alive


#: what the collector reads at scrape time: name (after the prefix), type, help, labels
_SCRAPED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("queue_depth", "gauge", "Measurement tasks waiting in the queue", ()),
    ("queue_capacity", "gauge", "Most tasks the queue may hold (LATENCY_SERVER_MAX_QUEUED_TASKS)", ()),
    ("worker_up", "gauge", "1 while the measurement worker process is alive", ()),
    ("worker_restarts", "counter", "Measurement worker restarts after a kill or a death", ()),
    ("worker_recycles", "counter", "Planned worker replacements (after N tasks or M minutes)", ()),
    ("worker_kills", "counter", "Worker kills or deaths during a task, by reason (timeout, memory, crash)",
     ("reason",)),
    ("job_done_steps", "gauge", "Steps a table build job has finished (kept for an hour after it ends)",
     ("job", "kind", "state")),
    ("job_total_steps", "gauge", "Steps a table build job has in all", ("job", "kind", "state")),
)


def _family(name: str) -> Metric:
    short = name[len(PREFIX) + 1:]
    kind, help_text, labels = next((k, h, list(lab)) for n, k, h, lab in _SCRAPED if n == short)
    family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return family(name, help_text, labels=labels)


class ServiceCollector:
    """What the service knows at scrape time: queue, worker, kills, table build progress."""

    def __init__(self, service: LatencyService | None) -> None:
        self.service = service

    def describe(self) -> Iterator[Metric]:
        """The families without samples (registration and the generated docs read them)."""
        for name, *_ in _SCRAPED:
            yield _family(f"{PREFIX}_{name}")

    def collect(self) -> Iterator[Metric]:
        svc = self.service
        if svc is None:
            return
        values = {"queue_depth": svc.queue.depth, "queue_capacity": svc.settings.max_queued_tasks,
                  "worker_up": 1 if _worker_alive(svc) else 0, "worker_restarts": svc.worker.restarts,
                  "worker_recycles": svc.worker.recycles}
        for name, value in values.items():
            family = _family(f"{PREFIX}_{name}")
            family.add_metric([], value)
            yield family
        kills = _family(f"{PREFIX}_worker_kills")
        counts = dict(svc.failures.counts)
        for reason in _KILL_REASONS:
            kills.add_metric([reason], counts.get(reason, 0))
        yield kills
        done, total = _family(f"{PREFIX}_job_done_steps"), _family(f"{PREFIX}_job_total_steps")
        for job in svc.jobs.snapshot():
            done.add_metric([job.id, job.kind, job.state], job.done)
            total.add_metric([job.id, job.kind, job.state], job.total)
        yield done
        yield total


def metric_catalogue() -> list[tuple[str, str, tuple[str, ...], str]]:
    """Every metric the server exposes: name as scraped, type, labels, help (for the generated REST reference)."""
    out = []
    for metric in vars(Metrics()).values():
        if hasattr(metric, "_labelnames"):
            kind = metric._type  # counter, gauge, histogram
            name = metric._name + ("_total" if kind == "counter" else "")
            out.append((name, kind, tuple(metric._labelnames), metric._documentation))
    for family in ServiceCollector(None).describe():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = next(lab for n, _, _, lab in _SCRAPED if f"{PREFIX}_{n}" == family.name)
        out.append((name, family.type, labels, family.documentation))
    return sorted(out)


def _route_template(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    if route is None:  # answered before routing (the cached tables' fast path, a refused body)
        for candidate in scope["app"].router.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    return getattr(route, "path", None) or "unmatched"


class MetricsMiddleware:
    """Count every HTTP request and time it, by route template, method and status (pure ASGI)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics = metrics_of(scope["app"])
            if metrics is not None:
                route, method = _route_template(scope), scope["method"]
                metrics.requests.labels(route=route, method=method, status=str(status)).inc()
                metrics.request_seconds.labels(route=route, method=method).observe(time.perf_counter() - start)
                if status == 413:  # the body limit answers before any route or handler
                    metrics.refusals.labels(reason="body_too_large", status="413").inc()


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus' text exposition format"}})
async def metrics(request: Request) -> Response:
    """This server's Prometheus metrics (text exposition format); no token needed: no arch strings or client
    networks are exposed. The metrics are listed in the REST reference's *Metrics* section."""
    service: LatencyService = request.app.state.service
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(service: LatencyService) -> None:
    """Register the scrape-time collector on the service's registry (once per service)."""
    if not getattr(service, "_metrics_collector", None):
        service._metrics_collector = ServiceCollector(service)  # type: ignore[attr-defined]
        service.metrics.registry.register(service._metrics_collector)  # type: ignore[attr-defined]
