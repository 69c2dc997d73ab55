"""``GET /v1/lut``: the complete table (200) or its build job (202 + ``Location``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from latency_server.admission.device_lock import refuse_if_read_only
from latency_server.admission.validate import InputError, check_resolution, check_settings
from latency_server.api.deps import ServiceDep, SettingsDep, require_token
from latency_server.api.routes.common import MEASURING_RESPONSES, settings_query
from latency_server.service import LatencyService
from latency_server.tables.builds import CompleteTable
from latency_server.worker.queue import Job
from shared.api_schemas import INT_CAP, JobAccepted, LatencyStats, LutResponse, MeasureSettings, SpaceName
from shared.search_space import SearchSpace, SearchSpaceError, get_space

router = APIRouter(prefix="/v1", tags=["lut"], dependencies=[Depends(require_token)])


def _lut_response(table: CompleteTable, *, stale: bool = False) -> LutResponse:
    """The REST body of a complete table."""
    return LutResponse(
        stale=stale,
        space=table.space,
        fingerprint=table.fingerprint,
        backend=table.measuring.backend,
        batch_size=table.measuring.batch_size,
        threads=table.measuring.threads,
        resolution=table.resolution,
        fixed_ms=table.fixed_ms,
        fixed=table.fixed,
        entries=table.entries,
        stats={key: LatencyStats(**stats.public()) for key, stats in table.stats.items()},
        fixed_names=table.fixed_names,
        meta=table.meta,
        corrected_entries=table.corrected_entries,
        corrected_fixed_ms=table.corrected_fixed_ms,
        correction=table.meta.get("correction"),
        reference=table.meta.get("reference"),
    )


def _body_or_job(
    service: LatencyService, measuring: MeasureSettings, space: SearchSpace, resolution: int, build: bool
) -> bytes | Job | None:
    """The serialised complete table (kept for later requests), its build job, or ``None`` if incomplete and
    ``build`` is false; blocks, so run in a thread."""
    result = service.tables.complete_or_build(measuring, space, resolution, build=build)
    if result is None or isinstance(result, Job):
        return result
    body = _lut_response(result).model_dump_json().encode()
    service.tables.bodies.keep(result.fingerprint, result.space, result.resolution, body)
    return body


def _stale_body(
    service: LatencyService, measuring: MeasureSettings, space: SearchSpace, resolution: int
) -> bytes | None:
    """The current table if complete, else the newest stale one (marked ``stale``), else ``None``; blocks."""
    current = _body_or_job(service, measuring, space, resolution, False)
    if isinstance(current, bytes):
        return current
    stale = service.tables.stale(measuring, space, resolution)
    return None if stale is None else _lut_response(stale, stale=True).model_dump_json().encode()


@router.get(
    "/lut",
    response_model=LutResponse,
    responses={202: {"model": JobAccepted, "description": "table incomplete: build started or joined"},
               **{status: answer for status, answer in MEASURING_RESPONSES.items() if status not in (413, 415)}},
)
async def get_lut(
    service: ServiceDep,
    settings: SettingsDep,
    measuring: Annotated[MeasureSettings, Depends(settings_query)],
    request: Request,
    space: Annotated[SpaceName, Query()] = "hardcorenas",
    resolution: Annotated[int, Query(ge=32, le=INT_CAP, multiple_of=32, description="input size, a multiple "
                                     "of 32")] = 224,
    allow_stale: Annotated[bool, Query(description="if the table is incomplete, answer the newest table of an older "
                                       "fingerprint of this device and settings (marked stale) instead of building")
                           ] = False,
) -> Response:
    """Latency table of ``space`` at ``resolution`` for these settings: blocks under ``entries``,
    stem/first/last/head under ``fixed`` (summed in ``fixed_ms``). An incomplete table starts (or joins) a
    build: 202 with the job to poll, which ``DELETE /v1/jobs/{id}`` cancels; at most
    LATENCY_SERVER_MAX_CONCURRENT_BUILDS distinct builds run at once (429 beyond). A table measured under an older
    fingerprint (a library, the CPU governor, affinity, quota or OMP_*/MKL_* changed since) is not served as
    current: the request rebuilds it, unless ``allow_stale=true`` asks for that table (``"stale": true``)."""
    cached = service.tables.bodies.get(measuring, space, resolution)
    if cached is not None:
        return Response(cached, media_type="application/json")
    check_settings(measuring, settings, service.available, where="query")
    check_resolution(resolution, settings, ("query", "resolution"))
    try:
        search_space = get_space(space)
        search_space.check_resolution(resolution)
    except SearchSpaceError as exc:
        field = "space" if str(exc).startswith("space") else "resolution"
        raise InputError(("query", field), str(exc)) from None
    if allow_stale:
        stale = await run_in_threadpool(_stale_body, service, measuring, search_space, resolution)
        if stale is not None:
            return Response(stale, media_type="application/json")
    build = not request.app.state.device_guard.read_only
    result = await run_in_threadpool(_body_or_job, service, measuring, search_space, resolution, build)
    if result is None:
        refuse_if_read_only(request.app)
    if isinstance(result, bytes):
        return Response(result, media_type="application/json")
    body = JobAccepted(job_id=result.id, done=result.done, total=result.total)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": f"/v1/jobs/{result.id}"})
