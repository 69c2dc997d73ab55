"""``GET /v1/tables``: the latency tables this server holds, with their correction's error and the drift now."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from latency_server.api.deps import ServiceDep
from latency_server.service import LatencyService
from latency_server.store.table_listing import stored_tables
from shared.api_schemas import TablesResponse, TableSummary

router = APIRouter(prefix="/v1", tags=["tables"])


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _summaries(service: LatencyService) -> TablesResponse:
    hardware = json.loads(json.dumps(dict(service.worker.hello.hardware)))  # as the database keeps it
    return TablesResponse(tables=[
        TableSummary(space=t.table.space, resolution=t.table.resolution, backend=t.backend, threads=t.threads,
                     batch_size=t.batch_size, fingerprint=t.table.fingerprint_id, entries=t.table.total,
                     complete=t.table.completed_at is not None, built_at=_iso(t.table.completed_at),
                     loo_error_pct=t.loo_error_pct, reference_ms=t.reference_ms, reference_now_ms=t.reference_now_ms,
                     reference_now_at=_iso(t.reference_now_at), drift_ratio=t.drift_ratio)
        for t in stored_tables(service.store, hardware)
    ])


@router.get("/tables", response_model=TablesResponse)
async def tables(service: ServiceDep) -> TablesResponse:
    """Every table of this device in the server's database (complete or building): space, resolution, backend,
    threads, batch size, entries, when it was built, the correction's leave-one-out error, the drift reference's
    level at the build and its newest figure, and their ratio (the drift since the build). No token needed:
    a table holds no client's networks."""
    return await run_in_threadpool(_summaries, service)
