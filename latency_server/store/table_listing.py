"""The tables a store holds, each with its configuration and the drift reference's newest figure.

Read by ``GET /v1/tables`` and the dashboards. One query for the tables (joined with their fingerprints) and one
per table for the reference's newest figure: a database holds a handful of tables per device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from latency_server.store.crud import Store
from latency_server.store.models import Fingerprint, LutTable, NetworkMeasurement

__all__ = ["StoredTable", "stored_tables"]


@dataclass(frozen=True)
class StoredTable:
    """A table row, its fingerprint's configuration, and the reference's newest figure (``None`` without)."""

    table: LutTable
    backend: str
    threads: int
    batch_size: int
    reference_now_ms: float | None
    reference_now_at: datetime | None

    @property
    def reference_ms(self) -> float | None:
        """The reference level when the table was built."""
        value = ((self.table.meta or {}).get("reference") or {}).get("median_ms")
        return float(value) if value else None

    @property
    def loo_error_pct(self) -> float | None:
        value = ((self.table.meta or {}).get("correction") or {}).get("loo_mape_pct")
        return None if value is None else float(value)

    @property
    def drift_ratio(self) -> float | None:
        ref = self.reference_ms
        return None if ref is None or self.reference_now_ms is None else self.reference_now_ms / ref


def _newest_reference(store: Store, table: LutTable) -> tuple[float | None, datetime | None]:
    arch = ((table.meta or {}).get("reference") or {}).get("arch")
    if not arch:
        return None, None
    rows = store._newest((NetworkMeasurement.median_ms, NetworkMeasurement.measured_at),
                         (NetworkMeasurement.fingerprint_id == table.fingerprint_id, NetworkMeasurement.arch == arch,
                          NetworkMeasurement.resolution == table.resolution), 1, None)
    return (float(rows[0][0]), rows[0][1]) if rows else (None, None)


def stored_tables(store: Store, hardware: dict[str, Any] | None = None) -> list[StoredTable]:
    """The store's tables measured with its settings, on ``hardware`` when given (a database shared by several
    devices holds theirs too), ordered by space, resolution and configuration."""
    query = (select(LutTable, Fingerprint.backend, Fingerprint.threads, Fingerprint.batch_size, Fingerprint.hardware)
             .join(Fingerprint, Fingerprint.id == LutTable.fingerprint_id)
             .where(LutTable.settings_hash == store.settings_hash)
             .order_by(LutTable.space, LutTable.resolution, Fingerprint.backend, Fingerprint.threads,
                       Fingerprint.batch_size))
    with store.sessions() as session:
        rows = list(session.execute(query))
    out = []
    for table, backend, threads, batch, table_hardware in rows:
        if hardware is not None and table_hardware != hardware:
            continue
        now_ms, now_at = _newest_reference(store, table)
        out.append(StoredTable(table, backend, threads, batch, now_ms, now_at))
    return out
