"""``GET /v1/lut``: the complete table (200) or its build job (202 + ``Location``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from latency_server.api.deps import ServiceDep, SettingsDep, require_token
from latency_server.api.routes.common import settings_query
from latency_server.validate import InputError, check_resolution, check_settings
from shared.api_schemas import JobAccepted, LutResponse, MeasureSettings
from shared.search_space import SearchSpaceError, get_space

router = APIRouter(prefix="/v1", tags=["lut"], dependencies=[Depends(require_token)])


@router.get(
    "/lut",
    response_model=LutResponse,
    responses={202: {"model": JobAccepted, "description": "table incomplete: build started or joined"}},
)
async def get_lut(
    service: ServiceDep,
    settings: SettingsDep,
    ms: Annotated[MeasureSettings, Depends(settings_query)],
    space: Annotated[str, Query(max_length=64)] = "hardcorenas",
    resolution: Annotated[int, Query(ge=1)] = 224,
) -> Response:
    """Latency table of ``space`` at ``resolution`` for these settings: blocks under ``entries``,
    stem/first/last/head under ``fixed`` (summed in ``fixed_ms``)."""
    cached = service.cached_lut(ms, space, resolution)
    if cached is not None:
        return Response(cached, media_type="application/json")
    check_settings(ms, settings, service.available, where="query")
    check_resolution(resolution, settings, ("query", "resolution"))
    try:
        search_space = get_space(space)
        search_space.check_resolution(resolution)
    except SearchSpaceError as exc:
        field = "space" if str(exc).startswith("space") else "resolution"
        raise InputError(("query", field), str(exc)) from None
    result = await run_in_threadpool(service.lut_or_job, ms, search_space, resolution)
    if isinstance(result, bytes):
        return Response(result, media_type="application/json")
    body = JobAccepted(job_id=result.id, done=result.done, total=result.total)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": f"/v1/jobs/{result.id}"})
