"""Database operations of the latency store (the ``crud`` layer): fingerprints, blocks, tables, networks.

Each method opens its own short session, so the store is safe to share between HTTP threads and the
measurement worker. A store serves the figures of one measurement method (:meth:`Store.use_method`): every
lookup is keyed by the method's settings hash besides the fingerprint, and a figure measured with another
method is refused rather than stored under this one. Figures that are not positive and finite are refused on
write and skipped on read (:mod:`latency_server.store.figure_checks`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, and_, delete, func, not_, select
from sqlalchemy.exc import IntegrityError

from latency_server.store.database import make_engine, make_sessionmaker, session_scope
from latency_server.store.figure_checks import check_figures, sane_figures
from latency_server.store.measurement_settings import settings_hash as method_hash
from latency_server.store.models import BlockMeasurement, Fingerprint, LutTable, NetworkMeasurement, utcnow
from latency_server.store.network_history import NetworkHistory
from latency_server.worker.fingerprint import DeviceFingerprint
from latency_server.worker.stats import Stats
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
    check_figures(stats)
    return {
        "median_ms": stats.median_ms,
        "iqr_ms": stats.iqr_ms,
        "p90_ms": stats.p90_ms,
        "mean_ms": stats.mean_ms,
        "min_ms": stats.min_ms,
        "samples": stats.samples,
        "warmup": stats.warmup,
    }


class Store(NetworkHistory):
    """The latency store on one database."""

    def __init__(self, url_or_engine: str | Engine, *, method: Mapping[str, Any] | None = None) -> None:
        self.engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        self.sessions = make_sessionmaker(self.engine)
        self._known_fingerprints: set[str] = set()
        self._settings_hash: str | None = None
        if method is not None:
            self.use_method(method)

    def close(self) -> None:
        self.engine.dispose()

    # -- measurement settings -------------------------------------------------------------------------
    def use_method(self, method: Mapping[str, Any]) -> None:
        """Serve and store the figures of this measurement method (``Method.to_dict()``) from now on."""
        self._settings_hash = method_hash(method)

    @property
    def settings_hash(self) -> str:
        """The settings hash of the method this store serves."""
        if self._settings_hash is None:
            raise RuntimeError("the store serves no measurement method yet: call Store.use_method(method) first")
        return self._settings_hash

    def _check_method(self, method: Mapping[str, Any]) -> str:
        measured_with = method_hash(method)
        if measured_with != self.settings_hash:
            raise ValueError(f"a figure measured with settings {measured_with} cannot be stored as one of "
                             f"settings {self.settings_hash}")
        return measured_with

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
                        BlockMeasurement.fingerprint_id == fp_id,
                        BlockMeasurement.settings_hash == self.settings_hash,
                        BlockMeasurement.key.in_(chunk),
                        *sane_figures(BlockMeasurement),
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
                        BlockMeasurement.fingerprint_id == fp_id,
                        BlockMeasurement.settings_hash == self.settings_hash,
                        BlockMeasurement.key.in_(chunk),
                        *sane_figures(BlockMeasurement),
                    )
                ) or 0
        return total

    def save_block(self, fp_id: str, key: BlockKey, stats: Stats, method: dict[str, Any]) -> BlockMeasurement:
        """Persist one block figure at once; if another writer stored it first, keep and return theirs."""
        row = BlockMeasurement(
            fingerprint_id=fp_id, key=str(key), block=key.to_dict(), method=method,
            settings_hash=self._check_method(method), **_stats_columns(stats)
        )
        try:
            with session_scope(self.sessions) as session:
                session.execute(delete(BlockMeasurement).where(  # a stored figure no read would serve
                    BlockMeasurement.fingerprint_id == fp_id, BlockMeasurement.settings_hash == row.settings_hash,
                    BlockMeasurement.key == str(key), not_(and_(*sane_figures(BlockMeasurement)))))
                session.add(row)
            return row
        except IntegrityError:
            existing = self.get_block(fp_id, str(key))
            if existing is None:
                raise
            log.info("block %s was stored by another writer meanwhile; keeping that figure", key)
            return existing

    # -- tables ---------------------------------------------------------------------------------------
    def _table_query(self, fp_id: str, space: str, resolution: int) -> Any:
        return select(LutTable).where(LutTable.fingerprint_id == fp_id, LutTable.settings_hash == self.settings_hash,
                                      LutTable.space == space, LutTable.resolution == resolution)

    def ensure_table(self, fp_id: str, space: str, resolution: int, total: int) -> LutTable:
        """The table row for (fingerprint, settings, space, resolution), created if missing."""
        with session_scope(self.sessions) as session:
            row = session.scalar(self._table_query(fp_id, space, resolution))
            if row is None:
                row = LutTable(fingerprint_id=fp_id, settings_hash=self.settings_hash, space=space,
                               resolution=resolution, total=total, meta={})
                session.add(row)
                try:
                    session.flush()
                except IntegrityError:
                    session.rollback()
                    row = session.scalar(self._table_query(fp_id, space, resolution))
            return row  # type: ignore[return-value]

    def get_table(self, fp_id: str, space: str, resolution: int) -> LutTable | None:
        with self.sessions() as session:
            return session.scalar(self._table_query(fp_id, space, resolution))

    def stale_table_fingerprints(self, fp: DeviceFingerprint, space: str, resolution: int) -> list[str]:
        """Fingerprints of complete tables of ``space`` at ``resolution`` with this store's settings on the same
        device (hardware), backend, threads and batch size as ``fp`` but another fingerprint (the software or
        environment changed since), newest first."""
        query = (select(LutTable.fingerprint_id, Fingerprint.hardware)
                 .join(Fingerprint, Fingerprint.id == LutTable.fingerprint_id)
                 .where(LutTable.settings_hash == self.settings_hash, LutTable.space == space,
                        LutTable.resolution == resolution, LutTable.completed_at.is_not(None),
                        Fingerprint.id != fp.id, Fingerprint.backend == fp.backend, Fingerprint.threads == fp.threads,
                        Fingerprint.batch_size == fp.batch_size)
                 .order_by(LutTable.completed_at.desc(), LutTable.id.desc()))
        device = fp.hashed_fields()["hardware"]
        with self.sessions() as session:
            return [fp_id for fp_id, hardware in session.execute(query)
                    if {k: (hardware or {}).get(k) for k in device} == device]

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
            settings_hash=method_hash(method),
            role="network",
            **_stats_columns(stats),
        )
        with session_scope(self.sessions) as session:
            session.add(row)
        return row

    def latest_network_method(self, fp_id: str, arch: str, resolution: int) -> dict[str, Any] | None:
        """The method record of the newest measurement of ``arch`` at ``resolution`` with this store's settings."""
        rows = self._newest((NetworkMeasurement.method,), (NetworkMeasurement.fingerprint_id == fp_id,
                            NetworkMeasurement.arch == arch, NetworkMeasurement.resolution == resolution), 1, None)
        return dict(rows[0][0] or {}) if rows else None

    # -- the drift reference's history (read in latency_server.store.network_history) ------------------
    def save_reference_figures(
        self, fp_id: str, arch: str, resolution: int, figures: Sequence[Stats], method: dict[str, Any]
    ) -> None:
        """Keep each figure of the drift reference (one row per round) as a draw of the device's speed; the figures
        of one call are one series (the rounds of one measurement)."""
        settings_hash = self._check_method(method)
        series = uuid.uuid4().hex
        rows = [NetworkMeasurement(fingerprint_id=fp_id, arch=arch, resolution=resolution, predicted_ms=None,
                                   method={**method, "role": "reference", "series": series},
                                   settings_hash=settings_hash, role="reference",
                                   **_stats_columns(stats))
                for stats in figures]
        with session_scope(self.sessions) as session:
            session.add_all(rows)
