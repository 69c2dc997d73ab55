"""What the dashboard's drift and verdicts pages show: the drift reference over time, and recent verdicts.

Drift: per stored table (a configuration: fingerprint, settings, space, resolution), the reference network's
figures over time, the level measured when the table was built, and the band within which the verdicts' drift
elasticity applies (:mod:`latency_server.verdicts.drift_elasticity`); beyond it a drift counts in full. Verdicts:
the newest whole-network measurements with their central figure, bound, confidence and rounds, and the table's
prediction against the measured figure. Every query is bounded (``LIMIT``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from latency_server.store.models import Fingerprint, NetworkMeasurement
from latency_server.tables.reference import reference_arch
from latency_server.ui import svg
from latency_server.ui.data import stored_tables

if TYPE_CHECKING:  # the routes hand the service in; only its attributes are read here
    from latency_server.service import LatencyService
from shared.search_space import SearchSpaceError, get_space

__all__ = ["drift_configurations", "verdict_rows"]

#: figures of the reference drawn per configuration, configurations per page, verdicts listed, points charted
REFERENCE_POINTS = 300
MAX_CONFIGURATIONS = 20
VERDICTS_LISTED = 100
VERDICTS_CHARTED = 1000


def _reference_figures(service: LatencyService, fp_id: str, settings_hash: str, arch: str,
                       resolution: int) -> list[tuple[datetime, float]]:
    """The newest figures of the reference on one configuration, oldest first."""
    query = (select(NetworkMeasurement.measured_at, NetworkMeasurement.median_ms)
             .where(NetworkMeasurement.fingerprint_id == fp_id, NetworkMeasurement.settings_hash == settings_hash,
                    NetworkMeasurement.arch == arch, NetworkMeasurement.resolution == resolution)
             .order_by(NetworkMeasurement.measured_at.desc(), NetworkMeasurement.id.desc()).limit(REFERENCE_POINTS))
    with service.store.sessions() as session:
        return [(when, value) for when, value in session.execute(query)][::-1]


def drift_configurations(service: LatencyService) -> list[dict[str, Any]]:
    """Per stored table with a reference level: the reference's history as a chart, the band, the drift now."""
    found = []
    for table, fp in stored_tables(service, MAX_CONFIGURATIONS):
        try:
            space = get_space(table.space)
        except SearchSpaceError:
            continue
        arch = reference_arch(space)
        figures = _reference_figures(service, fp.id, table.settings_hash, arch, table.resolution)
        level = ((table.meta or {}).get("reference") or {}).get("median_ms")
        elasticity = service.networks.elasticity(fp.id, arch, table.resolution)
        bands = []
        if isinstance(level, (int, float)) and level > 0:
            bands.append((level * math.exp(-elasticity.band), level, level * math.exp(elasticity.band),
                          f"level at the build {level:.4g} ms, band ±{100 * math.expm1(elasticity.band):.0f} %"))
        drift = figures[-1][1] / level if figures and bands else None
        found.append({
            "table_id": table.id,
            "label": f"{table.space} at {table.resolution} px · {fp.backend}, {fp.threads} thread(s), "
                     f"batch {fp.batch_size}",
            "fingerprint": fp.id,
            "points": len(figures),
            "plot": svg.time_plot([figures], bands, "reference network, ms", ["reference"]),
            "level_ms": level,
            "drift_pct": None if drift is None else 100.0 * (drift - 1.0),
            "outside_band": drift is not None and abs(math.log(drift)) > elasticity.band,
            "band_pct": 100.0 * math.expm1(elasticity.band),
            "elasticity": {"slope": elasticity.slope, "source": elasticity.source,
                           "repeats": elasticity.estimate.groups},
        })
    return found


def _not_reference() -> Any:
    """Rows that are not drift-reference rounds (those carry ``role: reference`` in their method)."""
    role = NetworkMeasurement.method["role"].as_string()
    return or_(role.is_(None), role != "reference")


def verdict_rows(service: LatencyService) -> dict[str, Any]:
    """The newest network measurements with their verdicts, and predicted against measured over the newest
    :data:`VERDICTS_CHARTED`."""
    listed = (select(NetworkMeasurement, Fingerprint)
              .join(Fingerprint, Fingerprint.id == NetworkMeasurement.fingerprint_id)
              .where(_not_reference())
              .order_by(NetworkMeasurement.measured_at.desc(), NetworkMeasurement.id.desc()).limit(VERDICTS_LISTED))
    charted = (select(NetworkMeasurement.predicted_ms, NetworkMeasurement.median_ms, NetworkMeasurement.resolution)
               .where(_not_reference(), NetworkMeasurement.predicted_ms.is_not(None))
               .order_by(NetworkMeasurement.measured_at.desc(), NetworkMeasurement.id.desc()).limit(VERDICTS_CHARTED))
    with service.store.sessions() as session:
        rows = list(session.execute(listed))
        pairs = [(p, m, f"{r} px: predicted {p:.4g} ms, measured {m:.4g} ms") for p, m, r in session.execute(charted)]
    listing = []
    for net, fp in rows:
        method = net.method or {}
        verdict = method.get("verdict") or {}
        listing.append({
            "measured_at": f"{net.measured_at:%Y-%m-%d %H:%M:%S}", "arch": net.arch, "resolution": net.resolution,
            "backend": fp.backend, "threads": fp.threads, "batch_size": fp.batch_size, "median_ms": net.median_ms,
            "central_ms": verdict.get("central_ms"), "upper_ms": verdict.get("upper_ms"),
            "confidence": verdict.get("confidence"), "rounds": verdict.get("rounds") or method.get("rounds"),
            "predicted_ms": net.predicted_ms, "drift_ratio": method.get("drift_ratio"),
        })
    return {"rows": listing, "plot": svg.scatter_plot(pairs, "predicted by the table, ms", "measured, ms"),
            "charted": len(pairs)}
