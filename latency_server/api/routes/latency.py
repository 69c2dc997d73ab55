"""``POST /v1/latency/blocks`` and ``POST /v1/latency/network``: measure (or look up) and answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from latency_server.api.deps import ServiceDep, SettingsDep, require_token
from latency_server.api.waiting import results_or_release
from latency_server.service import BlockFigure
from latency_server.validate import InputError, check_block, check_network, check_settings
from shared.api_schemas import (
    BlockResult,
    BlockSpec,
    BlocksRequest,
    BlocksResponse,
    LatencyStats,
    NetworkRequest,
    NetworkResponse,
    ReferenceFigure,
)
from shared.search_space import SearchSpaceError, get_space

router = APIRouter(prefix="/v1/latency", tags=["latency"], dependencies=[Depends(require_token)])


@router.post("/blocks", response_model=BlocksResponse)
async def measure_blocks(req: BlocksRequest, request: Request, service: ServiceDep,
                         settings: SettingsDep) -> BlocksResponse:
    """Latency of each block (stored figures are returned as ``cached``; the rest are measured)."""
    check_settings(req, settings, service.available)
    if len(req.blocks) > settings.max_blocks_per_request:
        limit = settings.max_blocks_per_request
        raise InputError(
            ("body", "blocks"),
            f"blocks: {len(req.blocks)} blocks exceed the limit {limit} (LATENCY_SERVER_MAX_BLOCKS_PER_REQUEST)",
        )
    keys = [check_block(spec, req.batch_size, settings, i) for i, spec in enumerate(req.blocks)]
    fp = await run_in_threadpool(service.fingerprint, req)
    items = await run_in_threadpool(service.lookup_blocks, req, keys)
    figures = await results_or_release(request, service.queue, items)
    results = []
    for item, figure in zip(items, figures, strict=True):
        results.append(
            BlockResult(
                key=str(figure.key),
                block=BlockSpec(**figure.key.to_dict()),
                stats=LatencyStats(**figure.stats.public()),
                cached=isinstance(item, BlockFigure),
            )
        )
    return BlocksResponse(fingerprint=fp.id, results=results)


@router.post("/network", response_model=NetworkResponse)
async def measure_network(req: NetworkRequest, request: Request, service: ServiceDep,
                          settings: SettingsDep) -> NetworkResponse:
    """Measure a whole network now (through the measurement queue) and compare with the table's prediction."""
    check_settings(req, settings, service.available)
    try:
        space = get_space(req.space)
    except SearchSpaceError as exc:
        raise InputError(("body", "space"), str(exc)) from None
    arch = check_network(req, settings)
    future = await run_in_threadpool(service.networks.submit, req, arch, req.resolution, space)
    (result,) = await results_or_release(request, service.queue, [future])
    prediction = result.prediction
    reference = None
    if result.reference is not None and prediction is not None and prediction.reference_ms:
        reference = ReferenceFigure(arch=result.reference_arch or "", measured_ms=result.reference.stats.median_ms,
                                    table_ms=prediction.reference_ms)
    return NetworkResponse(
        fingerprint=result.fingerprint,
        measured=LatencyStats(**result.figure.stats.public()),
        predicted_ms=result.predicted_ms,
        rounds=[LatencyStats(**r.public()) for r in result.figure.rounds],
        spread_ms=result.figure.spread_ms,
        predicted_table_ms=None if prediction is None else prediction.corrected_ms,
        predicted_naive_ms=None if prediction is None else prediction.naive_ms,
        drift_ratio=result.drift_ratio,
        reference=reference,
        normalized_ms=result.normalized_ms,
        normalized_spread_ms=result.normalized_spread_ms,
    )
