"""Database operations of the latency store (the ``crud`` layer): fingerprints, blocks, tables, networks.

Each method opens its own short session, so the store is safe to share between HTTP threads and the
measurement worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from latency_server.db import make_engine, make_sessionmaker, session_scope
from latency_server.fingerprint import DeviceFingerprint
from latency_server.models import BlockMeasurement, Fingerprint, LutTable, NetworkMeasurement, utcnow
from latency_server.stats import Stats
from shared.block_key import BlockKey

__all__ = ["Store", "stats_of"]

log = logging.getLogger(__name__)


def stats_of(row: BlockMeasurement | NetworkMeasurement) -> Stats:
    """The :class:`Stats` of a stored row."""
    return Stats(
        median_ms=row.median_ms,
        iqr_ms=row.iqr_ms,
        p90_ms=row.p90_ms,
        mean_ms=row.mean_ms,
        min_ms=row.min_ms,
        samples=row.samples,
        warmup=row.warmup,
    )


def _stats_columns(stats: Stats) -> dict[str, Any]:
    return {
        "median_ms": stats.median_ms,
        "iqr_ms": stats.iqr_ms,
        "p90_ms": stats.p90_ms,
        "mean_ms": stats.mean_ms,
        "min_ms": stats.min_ms,
        "samples": stats.samples,
        "warmup": stats.warmup,
    }


class Store:
    """The latency store on one database."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        self.sessions = make_sessionmaker(self.engine)
        self._known_fingerprints: set[str] = set()

    def close(self) -> None:
        self.engine.dispose()

    # -- fingerprints ---------------------------------------------------------------------------------
    def ensure_fingerprint(self, fp: DeviceFingerprint) -> str:
        """Insert the fingerprint row if missing; return its id."""
        fp_id = fp.id
        if fp_id in self._known_fingerprints:
            return fp_id
        try:
            with session_scope(self.sessions) as session:
                if session.get(Fingerprint, fp_id) is None:
                    session.add(
                        Fingerprint(
                            id=fp_id,
                            hardware=dict(fp.hardware),
                            software={**fp.software, **fp.extra},
                            backend=fp.backend,
                            threads=fp.threads,
                            batch_size=fp.batch_size,
                        )
                    )
        except IntegrityError:  # another server inserted it meanwhile
            pass
        self._known_fingerprints.add(fp_id)
        return fp_id

    # -- blocks ---------------------------------------------------------------------------------------
    def get_blocks(self, fp_id: str, keys: Iterable[str]) -> dict[str, BlockMeasurement]:
        """Stored rows of ``keys`` under ``fp_id`` (missing keys are absent)."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, BlockMeasurement] = {}
        with self.sessions() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = session.scalars(
                    select(BlockMeasurement).where(
                        BlockMeasurement.fingerprint_id == fp_id, BlockMeasurement.key.in_(chunk)
                    )
                )
                out.update((row.key, row) for row in rows)
        return out

    def get_block(self, fp_id: str, key: str) -> BlockMeasurement | None:
        return self.get_blocks(fp_id, [key]).get(key)

    def count_blocks(self, fp_id: str, keys: Iterable[str]) -> int:
        """How many of ``keys`` are stored under ``fp_id``."""
        wanted = list(dict.fromkeys(keys))
        total = 0
        with self.sessions() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                total += session.scalar(
                    select(func.count()).where(
                        BlockMeasurement.fingerprint_id == fp_id, BlockMeasurement.key.in_(chunk)
                    )
                ) or 0
        return total

    def save_block(self, fp_id: str, key: BlockKey, stats: Stats, method: dict[str, Any]) -> BlockMeasurement:
        """Persist one block figure at once; if another writer stored it first, keep and return theirs."""
        row = BlockMeasurement(
            fingerprint_id=fp_id, key=str(key), block=key.to_dict(), method=method, **_stats_columns(stats)
        )
        try:
            with session_scope(self.sessions) as session:
                session.add(row)
            return row
        except IntegrityError:
            existing = self.get_block(fp_id, str(key))
            if existing is None:
                raise
            log.info("block %s was stored by another writer meanwhile; keeping that figure", key)
            return existing

    # -- tables ---------------------------------------------------------------------------------------
    def ensure_table(self, fp_id: str, space: str, resolution: int, total: int) -> LutTable:
        """The table row for (fingerprint, space, resolution), created if missing."""
        with session_scope(self.sessions) as session:
            row = session.scalar(
                select(LutTable).where(
                    LutTable.fingerprint_id == fp_id, LutTable.space == space, LutTable.resolution == resolution
                )
            )
            if row is None:
                row = LutTable(fingerprint_id=fp_id, space=space, resolution=resolution, total=total, meta={})
                session.add(row)
                try:
                    session.flush()
                except IntegrityError:
                    session.rollback()
                    row = session.scalar(
                        select(LutTable).where(
                            LutTable.fingerprint_id == fp_id,
                            LutTable.space == space,
                            LutTable.resolution == resolution,
                        )
                    )
            return row  # type: ignore[return-value]

    def get_table(self, fp_id: str, space: str, resolution: int) -> LutTable | None:
        with self.sessions() as session:
            return session.scalar(
                select(LutTable).where(
                    LutTable.fingerprint_id == fp_id, LutTable.space == space, LutTable.resolution == resolution
                )
            )

    def mark_table_complete(self, table_id: int) -> None:
        with session_scope(self.sessions) as session:
            row = session.get(LutTable, table_id)
            if row is not None and row.completed_at is None:
                row.completed_at = utcnow()

    def update_table_meta(self, table_id: int, meta: dict[str, Any]) -> None:
        """Merge ``meta`` into the table's JSON metadata (corrections, reference latencies)."""
        with session_scope(self.sessions) as session:
            row = session.get(LutTable, table_id)
            if row is not None:
                row.meta = {**(row.meta or {}), **meta}

    # -- networks -------------------------------------------------------------------------------------
    def save_network(
        self,
        fp_id: str,
        arch: str,
        resolution: int,
        stats: Stats,
        method: dict[str, Any],
        predicted_ms: float | None,
    ) -> NetworkMeasurement:
        row = NetworkMeasurement(
            fingerprint_id=fp_id,
            arch=arch,
            resolution=resolution,
            predicted_ms=predicted_ms,
            method=method,
            **_stats_columns(stats),
        )
        with session_scope(self.sessions) as session:
            session.add(row)
        return row
