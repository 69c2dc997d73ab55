"""``POST /v1/latency/blocks`` and ``POST /v1/latency/network``: measure (or look up) and answer."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from latency_server.admission.device_lock import refuse_if_read_only
from latency_server.admission.validate import InputError, check_block, check_network, check_settings
from latency_server.api.deps import ServiceDep, SettingsDep, require_token
from latency_server.api.routes.common import MEASURING_RESPONSES
from latency_server.api.waiting import results_or_release
from latency_server.service import BlockFigure, LatencyService
from latency_server.store.crud import stats_of
from latency_server.verdicts.networks import NetworkResult
from shared.api_schemas import (
    BlockResult,
    BlockSpec,
    BlocksRequest,
    BlocksResponse,
    LatencyStats,
    MeasureSettings,
    NetworkRequest,
    NetworkResponse,
    ReferenceFigure,
    Verdict,
)
from shared.block_key import BlockKey
from shared.search_space import get_space

router = APIRouter(prefix="/v1/latency", tags=["latency"], dependencies=[Depends(require_token)],
                   responses=MEASURING_RESPONSES)


def _stored_only(service: LatencyService, measuring: MeasureSettings, keys: list[BlockKey]) -> list[BlockFigure] | None:
    """Every key's stored figure, or ``None`` if one is missing (what a read-only server can answer)."""
    rows = service.store.get_blocks(service.fingerprint(measuring).id, [str(k) for k in keys])
    if any(str(k) not in rows for k in keys):
        return None
    return [BlockFigure(k, stats_of(rows[str(k)]), measured=False) for k in keys]


@router.post("/blocks", response_model=BlocksResponse)
async def measure_blocks(
    req: BlocksRequest, service: ServiceDep, settings: SettingsDep, request: Request
) -> BlocksResponse:
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
    stored = None
    if request.app.state.device_guard.read_only:
        stored = await run_in_threadpool(_stored_only, service, req, keys)
        if stored is None:
            refuse_if_read_only(request.app)
    items = stored or await run_in_threadpool(service.lookup_blocks, req, keys)
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
async def measure_network(
    req: NetworkRequest, service: ServiceDep, settings: SettingsDep, request: Request
) -> NetworkResponse:
    """Measure a whole network now (through the measurement queue) and compare with the table's prediction."""
    check_settings(req, settings, service.available)
    space = get_space(req.space)
    arch = check_network(req, settings)
    refuse_if_read_only(request.app)
    future = await run_in_threadpool(
        functools.partial(service.networks.submit, req, arch, req.resolution, space, confidence=req.confidence,
                          width=(req.stem_size, req.num_features)))
    (result,) = await results_or_release(request, service.queue, [future])
    result = result.at_confidence(req.confidence)  # one measurement serves every confidence asked meanwhile
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
        drift_elasticity=None if result.drift_ratio is None else 1.0,
        drift_elasticity_source=None if result.drift_ratio is None else "request",
        drift_level_ms=None if result.level is None else result.level.level_ms,
        drift_level_source=None if result.level is None else result.level.source,
        drift_level_figures=None if result.level is None else result.level.figures,
        table_level_factor=None if result.table is None else result.table.factor,
        table_level_networks=None if result.table is None else result.table.networks,
        reference=reference,
        normalized_ms=result.normalized_ms,
        normalized_spread_ms=result.normalized_spread_ms,
        verdict=_verdict(result),
    )


def _verdict(result: NetworkResult) -> Verdict | None:
    if result.verdict is None or result.reference is None:
        return None
    return Verdict(**result.verdict.to_dict(), network_rounds_ms=[r.median_ms for r in result.figure.rounds],
                   reference_rounds_ms=[r.median_ms for r in result.reference.rounds])
