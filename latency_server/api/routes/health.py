"""``GET``/``HEAD /healthz``: worker liveness, database reachability, queue depth; 503 when unhealthy."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from latency_server.admission.device_lock import device_status
from latency_server.api.deps import ServiceDep
from latency_server.api.privacy import may_see_work, public_error
from shared.api_schemas import DatabaseHealth, HealthResponse, QueueHealth, WorkerHealth

router = APIRouter(tags=["health"])


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz", response_model=HealthResponse,
            responses={503: {"model": HealthResponse,
                             "description": "the worker is down or stuck, or the database unreachable or read-only"}})
async def healthz(service: ServiceDep, request: Request) -> JSONResponse:
    """200 when the measurement worker is alive and answers a ping, no task is stuck past its time limit, the
    thread that restarts the worker is alive, and the database answers ``SELECT 1`` and accepts writes; 503
    otherwise, with the reasons in ``reasons``. Also reports the queue's depth, the age of its oldest task, and
    whether the server serves read-only (another server holds this device). With a token configured, a reader
    without it sees the worker's last error's reason only, not the task it names."""
    health = await run_in_threadpool(service.health)
    worker = health.worker
    body = HealthResponse(
        status="ok" if health.ok else "unavailable",
        worker=WorkerHealth(state=worker.state, alive=worker.alive, answered_ping=worker.answered_ping, pid=worker.pid,
                            rss_mb=None if worker.rss_bytes is None else round(worker.rss_bytes / 2**20, 1),
                            tasks=worker.tasks, restarts=worker.restarts, recycles=worker.recycles,
                            uptime_s=worker.uptime_s,
                            last_error=worker.last_error if await may_see_work(request)
                            else public_error(worker.last_error)),
        database=DatabaseHealth(reachable=health.database_error is None, error=health.database_error),
        queue=QueueHealth(depth=health.queue_depth, capacity=health.queue_capacity, oldest_age_s=health.oldest_age_s),
        reasons=health.reasons,
        **device_status(request.app),
    )
    headers = None if health.ok else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if health.ok else 503, headers=headers)
