"""``POST /v1/latency/blocks`` and ``POST /v1/latency/network``: measure (or look up) and answer."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Future

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from latency_server.api.deps import ServiceDep, SettingsDep, require_token
from latency_server.networks import NetworkResult
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
    Verdict,
)
from shared.search_space import SearchSpaceError, get_space

router = APIRouter(prefix="/v1/latency", tags=["latency"], dependencies=[Depends(require_token)])


class MeasurementFailed(Exception):
    """A measurement raised; answered as 422 naming the input it was about."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


async def _wait(item: BlockFigure | Future, loc: tuple[str | int, ...]) -> BlockFigure:
    if isinstance(item, BlockFigure):
        return item
    try:
        return await asyncio.wrap_future(item)
    except Exception as exc:  # noqa: BLE001 - any measurement fault is reported, the server keeps serving
        raise MeasurementFailed(loc, f"measurement failed: {type(exc).__name__}: {exc}") from exc


@router.post("/blocks", response_model=BlocksResponse)
async def measure_blocks(req: BlocksRequest, service: ServiceDep, settings: SettingsDep) -> BlocksResponse:
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
    figures = await asyncio.gather(*(_wait(item, ("body", "blocks", i)) for i, item in enumerate(items)),
                                   return_exceptions=True)
    for figure in figures:
        if isinstance(figure, BaseException):
            raise figure
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
async def measure_network(req: NetworkRequest, service: ServiceDep, settings: SettingsDep) -> NetworkResponse:
    """Measure a whole network now (through the measurement queue) and compare with the table's prediction."""
    check_settings(req, settings, service.available)
    try:
        space = get_space(req.space)
    except SearchSpaceError as exc:
        raise InputError(("body", "space"), str(exc)) from None
    arch = check_network(req, settings)
    future = await run_in_threadpool(
        functools.partial(service.networks.submit, req, arch, req.resolution, space, confidence=req.confidence))
    try:
        result = await asyncio.wrap_future(future)
    except Exception as exc:  # noqa: BLE001
        raise MeasurementFailed(("body", "arch"), f"measurement failed: {type(exc).__name__}: {exc}") from exc
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
        verdict=_verdict(result),
    )


def _verdict(result: NetworkResult) -> Verdict | None:
    if result.verdict is None or result.reference is None:
        return None
    return Verdict(**result.verdict.to_dict(), network_rounds_ms=[r.median_ms for r in result.figure.rounds],
                   reference_rounds_ms=[r.median_ms for r in result.reference.rounds])
