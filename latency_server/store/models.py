"""SQLAlchemy 2 tables of the latency store (the schema itself is created only by the Alembic revisions).

Every figure belongs to one device fingerprint (device + backend + threads + batch size + exporter) and records
how it was measured (``method``: warm-ups, repeats, budget, exporter, library versions) and when; its
``settings_hash`` names the figure-changing part of ``method`` and is part of the lookup key, so figures taken
with other settings are never served as this configuration's (:mod:`latency_server.store.measurement_settings`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "BlockMeasurement", "Fingerprint", "LutTable", "NetworkMeasurement", "utcnow"]


def utcnow() -> datetime:
    """Timezone-aware now (UTC)."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of the latency store."""


class Fingerprint(Base):
    """One measuring identity: this device's hardware and software, backend, threads and batch size."""

    __tablename__ = "fingerprints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hardware: Mapped[dict[str, Any]] = mapped_column(JSON)
    software: Mapped[dict[str, Any]] = mapped_column(JSON)
    backend: Mapped[str] = mapped_column(String(32))
    threads: Mapped[int] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class _StatsColumns:
    """Statistics of one measurement, milliseconds per image."""

    median_ms: Mapped[float] = mapped_column(Float)
    iqr_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float] = mapped_column(Float)
    min_ms: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    warmup: Mapped[int] = mapped_column(Integer)
    method: Mapped[dict[str, Any]] = mapped_column(JSON)
    settings_hash: Mapped[str] = mapped_column(String(32), server_default="")
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BlockMeasurement(_StatsColumns, Base):
    """The latency of one block key under one fingerprint and measurement settings (one row per triple)."""

    __tablename__ = "block_measurements"
    __table_args__ = (
        UniqueConstraint("fingerprint_id", "settings_hash", "key", name="uq_block_fingerprint_settings_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint_id: Mapped[str] = mapped_column(ForeignKey("fingerprints.id"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    block: Mapped[dict[str, Any]] = mapped_column(JSON)


class LutTable(Base):
    """A latency table of a search space at one resolution under one fingerprint and measurement settings.

    Its figures are the block rows; the table row records completion and ``meta``: a JSON object for
    per-table corrections, reference-network latencies and residuals.
    """

    __tablename__ = "lut_tables"
    __table_args__ = (
        UniqueConstraint("fingerprint_id", "settings_hash", "space", "resolution",
                         name="uq_lut_fingerprint_settings_space_res"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint_id: Mapped[str] = mapped_column(ForeignKey("fingerprints.id"), index=True)
    settings_hash: Mapped[str] = mapped_column(String(32), server_default="")
    space: Mapped[str] = mapped_column(String(64))
    resolution: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NetworkMeasurement(_StatsColumns, Base):
    """One whole-network measurement (history; the network endpoint always measures afresh)."""

    __tablename__ = "network_measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint_id: Mapped[str] = mapped_column(ForeignKey("fingerprints.id"), index=True)
    arch: Mapped[str] = mapped_column(Text)
    resolution: Mapped[int] = mapped_column(Integer)
    predicted_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: ``reference`` for the server's own rounds of the drift reference (its history), else ``network``
    role: Mapped[str] = mapped_column(String(16), server_default="network", default="network", index=True)
