"""``GET /v1/device`` (fingerprint, hardware, software, backends) and ``GET /v1/stats`` (counters)."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from latency_server.admission.device_lock import device_status
from latency_server.admission.validate import check_settings
from latency_server.api.deps import ServiceDep, SettingsDep
from latency_server.api.privacy import may_see_work, public_label
from latency_server.api.routes.common import settings_query
from shared.api_schemas import CurrentTask, DeviceResponse, LastVerdict, MeasureSettings, ServerStats

router = APIRouter(prefix="/v1", tags=["device"])


@router.get("/device", response_model=DeviceResponse)
async def device(
    service: ServiceDep, settings: SettingsDep, measuring: Annotated[MeasureSettings, Depends(settings_query)]
) -> DeviceResponse:
    """This device's fingerprint for the given measuring settings (default: onnxruntime, 1 thread, batch 1); a
    query stores nothing (the fingerprint is stored with the first figure measured under it)."""
    check_settings(measuring, settings, service.available, where="query")
    fp = await run_in_threadpool(functools.partial(service.fingerprint, measuring, store=False))
    return DeviceResponse(
        fingerprint=fp.id,
        hardware=dict(fp.hardware),
        software={**fp.software, **fp.extra},
        backends=service.available,
        settings=measuring,
    )


@router.get("/stats", response_model=ServerStats)
async def stats(service: ServiceDep, request: Request) -> ServerStats:
    """Counters of this server process: measurements taken, queue depth, active jobs, failures by reason, the
    task the worker runs now (with a token configured, only its kind without the token), and whether it serves
    read-only."""
    current = service.queue.current()
    if current is not None and not await may_see_work(request):
        current = (public_label(current[0]), current[1])
    return ServerStats(
        measurements=service.measurements,
        block_measurements=service.block_measurements,
        network_measurements=service.network_measurements,
        calibration_measurements=service.calibration_measurements,
        queued=service.queue.depth,
        active_jobs=service.jobs.active(),
        failures=dict(service.failures.counts),
        current_task=None if current is None else CurrentTask(label=current[0], running_s=current[1],
                                                                  waiters=service.queue.current_waiters()),
        worker_restarts=service.worker.restarts,
        worker_recycles=service.worker.recycles,
        abandoned=service.queue.abandoned,
        last_verdict=None if service.networks.last_verdict is None else LastVerdict(**service.networks.last_verdict),
        **device_status(request.app),
    )
