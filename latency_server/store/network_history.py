"""The history the verdicts and predictions learn from: recent network measurements and the drift reference's rounds.

A mixin of :class:`latency_server.store.crud.Store`: the queries over stored network rows that pool figures across
measurements (the ratio's drift, the drift elasticity, the table's level against later measurements) and the drift
reference's history (the device's variability). Each reads only figures measured with the store's settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_server.store.figure_checks import sane_figures, sane_number
from latency_server.store.models import NetworkMeasurement

__all__ = ["NetworkHistory"]


class NetworkHistory:
    """Pooled queries over network rows; the store provides the sessions and its settings' hash."""

    sessions: Callable[[], Session]
    settings_hash: str

    def _newest(self, columns: Sequence[Any], conditions: Sequence[Any], limit: int,
                since: datetime | None) -> list[Any]:
        """The newest ``limit`` network rows meeting ``conditions`` (and measured with this store's settings, at or
        after ``since``), newest first."""
        query = (select(*columns)
                 .where(*conditions, NetworkMeasurement.settings_hash == self.settings_hash,
                        *sane_figures(NetworkMeasurement))
                 .order_by(NetworkMeasurement.measured_at.desc(), NetworkMeasurement.id.desc())
                 .limit(limit))
        if since is not None:
            query = query.where(NetworkMeasurement.measured_at >= since)
        with self.sessions() as session:
            return list(session.execute(query))

    def network_ratios(
        self, fp_id: str, reference: str, resolution: int, *, limit: int = 500, since: datetime | None = None
    ) -> list[tuple[str, float, float]]:
        """The newest ``limit`` verdicts at ``resolution`` under ``fp_id`` against the drift reference ``reference``,
        measured with this store's settings:
        per measurement, its network, log ratio to the reference and that log ratio's estimation variance
        (``sd_ratio^2 / rounds``)."""
        rows = self._newest((NetworkMeasurement.arch, NetworkMeasurement.method),
                            (NetworkMeasurement.fingerprint_id == fp_id, NetworkMeasurement.resolution == resolution,
                             NetworkMeasurement.arch != reference), limit, since)
        found = []
        for arch, method in rows:
            verdict = (method or {}).get("verdict") or {}
            try:
                ratio, sd_ratio, rounds = float(verdict["ratio"]), float(verdict["sd_ratio"]), int(verdict["rounds"])
            except (KeyError, TypeError, ValueError):
                continue
            if sane_number(ratio) and rounds > 0 and math.isfinite(sd_ratio):
                found.append((arch, math.log(ratio), sd_ratio**2 / rounds))
        return found

    def network_reference_pairs(
        self, fp_id: str, reference: str, resolution: int, *, limit: int = 500, since: datetime | None = None
    ) -> list[list[tuple[float, float]]]:
        """The newest ``limit`` network measurements at ``resolution`` under ``fp_id`` with this store's settings,
        grouped by network: each measurement's raw figure and the drift reference's figure timed beside it."""
        rows = self._newest((NetworkMeasurement.arch, NetworkMeasurement.median_ms, NetworkMeasurement.method),
                            (NetworkMeasurement.fingerprint_id == fp_id, NetworkMeasurement.resolution == resolution,
                             NetworkMeasurement.arch != reference), limit, since)
        groups: dict[str, list[tuple[float, float]]] = {}
        for arch, median_ms, method in rows:
            ref_ms = (method or {}).get("reference_ms")
            if sane_number(ref_ms):
                groups.setdefault(arch, []).append((float(median_ms), float(ref_ms)))
        return list(groups.values())

    def table_residuals(
        self, fp_id: str, resolution: int, table_reference_ms: float, *, limit: int = 500,
        since: datetime | None = None,
    ) -> list[tuple[str, float]]:
        """The newest ``limit`` network measurements at ``resolution`` under ``fp_id`` that checked the table built
        with the reference level ``table_reference_ms`` (a rebuilt table has its own), newest first: per
        measurement, its network and ``log(normalised figure / table's corrected figure)``."""
        rows = self._newest((NetworkMeasurement.arch, NetworkMeasurement.method),
                            (NetworkMeasurement.fingerprint_id == fp_id, NetworkMeasurement.resolution == resolution,
                             NetworkMeasurement.role == "network"), limit, since)
        found = []
        for arch, method in rows:
            check = (method or {}).get("table_check") or {}
            residual, built = check.get("log_residual"), check.get("table_reference_ms")
            if sane_number(built) and math.isclose(float(built), table_reference_ms, rel_tol=1e-9) \
                    and isinstance(residual, (int, float)) and math.isfinite(residual):
                found.append((arch, float(residual)))
        return found

    # -- the drift reference's history ------------------------------------------------------------------
    def reference_history(
        self, fp_id: str, arch: str, resolution: int, *, limit: int = 200, since: datetime | None = None
    ) -> list[tuple[float, str]]:
        """The newest ``limit`` reference rounds (median ms) of ``arch`` at ``resolution`` under ``fp_id``, measured
        with this store's settings, oldest first, each with its series (a figure kept without one is a series of its
        own). Only the server's own reference rounds count: a client's measurement of the same network does not."""
        rows = self._newest((NetworkMeasurement.median_ms, NetworkMeasurement.method, NetworkMeasurement.id),
                            (NetworkMeasurement.fingerprint_id == fp_id, NetworkMeasurement.arch == arch,
                             NetworkMeasurement.resolution == resolution, NetworkMeasurement.role == "reference"),
                            limit, since)
        return [(value, str((method or {}).get("series") or f"row {row_id}")) for value, method, row_id in rows[::-1]]

