"""What the dashboard's overview, tables and jobs pages show, gathered from the service and the store.

Every query is bounded (``LIMIT``), so a page costs the same with a thousand stored figures as with ten. The
figures come from the same places the JSON endpoints read (the service's health, counters, queue, jobs and
failure log; the store's rows), so the pages and ``/healthz``, ``/v1/stats``, ``/v1/device`` agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from latency_server.store.models import BlockMeasurement, Fingerprint, LutTable
from latency_server.ui import svg
from latency_server.worker.jobs import Job

if TYPE_CHECKING:  # the routes hand the service in; only its attributes are read here
    from latency_server.service import LatencyService
from shared.api_schemas import MeasureSettings
from shared.search_space import SearchSpace, SearchSpaceError, get_space

__all__ = ["TableRow", "job_rows", "overview", "table_detail", "table_rows"]

#: the most tables a page lists (newest first)
MAX_TABLES = 100


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days} d " if days else "") + (f"{hours} h " if hours or days else "") + f"{minutes} min {secs} s"


def job_rows(service: LatencyService, limit: int = 50) -> list[dict[str, Any]]:
    """The jobs of this process (running first, then the newest finished), with their progress."""
    jobs: list[Job] = service.jobs.snapshot()
    jobs.sort(key=lambda j: (j.finished, -(j.finished_at or 0.0)))
    return [{"id": j.id, "kind": j.kind, "state": j.state, "done": j.done, "total": j.total,
             "percent": round(100.0 * j.done / j.total, 1) if j.total else 100.0, "error": j.error,
             "params": {k: v for k, v in j.params.items() if k != "fingerprint"},
             "fingerprint": str(j.params.get("fingerprint", ""))[:12]} for j in jobs[:limit]]


def overview(service: LatencyService, started_at: float) -> dict[str, Any]:
    """The device, its health, worker, queue, current task, counters and refusals (blocks up to the health
    timeout twice, as ``/healthz`` does)."""
    health = service.health()
    worker = health.worker
    try:
        fp = service.fingerprint(MeasureSettings())
        device: dict[str, Any] | None = {"fingerprint": fp.id, "hardware": dict(fp.hardware),
                                         "software": {**fp.software, **fp.extra}}
    except Exception as exc:  # noqa: BLE001 - a worker that has not said hello yet: the page still answers
        device = None
        device_error = f"{type(exc).__name__}: {exc}"
    else:
        device_error = None
    current = service.queue.current()
    return {
        "ok": health.ok,
        "device": device,
        "device_error": device_error,
        "backends": service.available,
        "worker": {"state": worker.state, "alive": worker.alive, "answered_ping": worker.answered_ping,
                   "pid": worker.pid, "age": _duration(worker.uptime_s), "tasks": worker.tasks,
                   "restarts": worker.restarts, "recycles": worker.recycles, "last_error": worker.last_error,
                   "rss_mb": None if worker.rss_bytes is None else round(worker.rss_bytes / 2**20, 1)},
        "database_error": health.database_error,
        "queue": {"depth": health.queue_depth, "capacity": health.queue_capacity or "unbounded",
                  "oldest": None if health.oldest_age_s is None else f"{health.oldest_age_s:.1f} s"},
        "current": None if current is None else {"label": current[0], "running": f"{current[1]:.1f} s"},
        "builds": [j for j in job_rows(service) if j["state"] in ("queued", "running")],
        "uptime": _duration(time.monotonic() - started_at),
        "counts": {"all measurements": service.measurements, "blocks": service.block_measurements,
                   "networks": service.network_measurements, "calibration": service.calibration_measurements,
                   "abandoned": service.queue.abandoned},
        "refusals": sorted(service.failures.counts.items(), key=lambda kv: -kv[1]),
    }


@dataclass(frozen=True)
class TableRow:
    """One stored table as the tables page lists it."""

    id: int
    space: str
    resolution: int
    backend: str
    threads: int
    batch_size: int
    fingerprint: str
    built_at: str
    complete: bool
    entries: int
    expected: int
    loo_pct: float | None
    reference_ms: float | None
    build_drift_pct: float | None


def _space(name: str) -> SearchSpace | None:
    try:
        return get_space(name)
    except SearchSpaceError:
        return None


def _stored_keys(service: LatencyService, table: LutTable, keys: list[str]) -> dict[str, float]:
    """The stored medians of ``keys`` in ``table``'s fingerprint and measurement settings."""
    query = (select(BlockMeasurement.key, BlockMeasurement.median_ms)
             .where(BlockMeasurement.fingerprint_id == table.fingerprint_id,
                    BlockMeasurement.settings_hash == table.settings_hash, BlockMeasurement.key.in_(keys))
             .limit(len(keys)))
    with service.store.sessions() as session:
        return {key: median for key, median in session.execute(query)}


def _count_keys(service: LatencyService, table: LutTable, keys: list[str]) -> int:
    query = (select(func.count()).select_from(BlockMeasurement)
             .where(BlockMeasurement.fingerprint_id == table.fingerprint_id,
                    BlockMeasurement.settings_hash == table.settings_hash, BlockMeasurement.key.in_(keys)))
    with service.store.sessions() as session:
        return int(session.scalar(query) or 0)


def _row(service: LatencyService, table: LutTable, fp: Fingerprint) -> TableRow:
    space = _space(table.space)
    keys = [str(k) for k in space.searchable_keys(table.resolution)] if space is not None else []
    meta = table.meta or {}
    correction = meta.get("correction") or {}
    reference = meta.get("reference") or {}
    built = table.completed_at or table.created_at
    return TableRow(
        id=table.id, space=table.space, resolution=table.resolution, backend=fp.backend, threads=fp.threads,
        batch_size=fp.batch_size, fingerprint=fp.id, built_at=f"{built:%Y-%m-%d %H:%M:%S}",
        complete=table.completed_at is not None, entries=_count_keys(service, table, keys) if keys else 0,
        expected=len(keys), loo_pct=correction.get("loo_mape_pct"), reference_ms=reference.get("median_ms"),
        build_drift_pct=reference.get("build_drift_pct"))


def stored_tables(service: LatencyService, limit: int = MAX_TABLES) -> list[tuple[LutTable, Fingerprint]]:
    """The newest ``limit`` tables with their fingerprints."""
    query = (select(LutTable, Fingerprint).join(Fingerprint, Fingerprint.id == LutTable.fingerprint_id)
             .order_by(LutTable.created_at.desc(), LutTable.id.desc()).limit(limit))
    with service.store.sessions() as session:
        return [(table, fp) for table, fp in session.execute(query)]


def table_rows(service: LatencyService) -> list[TableRow]:
    """Every stored table (the newest :data:`MAX_TABLES`)."""
    return [_row(service, table, fp) for table, fp in stored_tables(service)]


def table_detail(service: LatencyService, table_id: int) -> dict[str, Any] | None:
    """One table's summary and its heatmap (stage blocks x options); ``None`` when there is no such table."""
    with service.store.sessions() as session:
        found = session.execute(select(LutTable, Fingerprint)
                                .join(Fingerprint, Fingerprint.id == LutTable.fingerprint_id)
                                .where(LutTable.id == table_id)).first()
    if found is None:
        return None
    table, fp = found
    row = _row(service, table, fp)
    space = _space(table.space)
    if space is None:
        return {"table": row, "heatmap": None, "meta": table.meta or {}}
    grid = space.block_keys_table(table.resolution)
    medians = _stored_keys(service, table, list({str(k) for stage in grid for block in stage for k in block}))
    min_depth = min(space.depths)
    rows, stage_starts = [], []
    for s, stage in enumerate(grid):
        stage_starts.append(len(rows))
        for j, block in enumerate(stage):
            label = f"stage {s + 1} · block {j + 1}"
            rows.append((label, j >= min_depth, [(str(k), medians.get(str(k))) for k in block]))
    options = [str(o) for o in space.options]
    return {"table": row, "heatmap": svg.heatmap(rows, options, stage_starts), "meta": table.meta or {},
            "min_depth": min_depth, "depths": space.depths}
