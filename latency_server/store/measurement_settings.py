"""What a stored figure was measured with and what a table's correction was fitted on.

A figure depends on the measurement method (warm-up runs, repeats, time budget and the ``time_scale`` test
hook); the device, backend, threads, batch size and ONNX exporter are the fingerprint's part. The method's
hash is part of every stored figure's lookup key, so figures taken with other settings (a test server's on the
same database, say) are never served as this configuration's. A table's correction records the settings and
the entries (keys and medians) it was fitted on; :func:`usable_meta` drops a correction whose record no longer
matches, which makes the table incomplete (its build refits) and predictions fall back to the raw sums.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from latency_server.config import Settings

__all__ = ["HASHED_METHOD_FIELDS", "calibration_settings", "fitted_on", "method_settings", "settings_hash",
           "usable_meta"]

log = logging.getLogger(__name__)

#: The method fields that change a figure (as :meth:`latency_server.worker.timing.Method.to_dict` names them).
HASHED_METHOD_FIELDS = {"warmup": int, "min_repeats": int, "max_repeats": int, "budget_s": float, "time_scale": float}


def method_settings(method: Mapping[str, Any]) -> dict[str, Any]:
    """The figure-changing settings in a method record (a stored figure's ``method`` JSON or ``Method.to_dict()``)."""
    return {name: None if method.get(name) is None else kind(method[name])
            for name, kind in HASHED_METHOD_FIELDS.items()}


def settings_hash(method: Mapping[str, Any]) -> str:
    """16 hex digits naming :func:`method_settings` of ``method``."""
    text = json.dumps(method_settings(method), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def calibration_settings(settings: Settings) -> dict[str, Any]:
    """The settings a table's correction depends on besides its entries."""
    return {
        "calibration_networks": settings.calibration_networks,
        "calibration_rounds": settings.calibration_rounds,
        "calibration_reference_sessions": settings.calibration_reference_sessions,
        "calibration_seed": settings.calibration_seed,
        "correction_features": settings.correction_features,
        "drift_reference": settings.drift_reference,
    }


def fitted_on(figures_hash: str, calibration: Mapping[str, Any], medians: Mapping[str, float]) -> dict[str, Any]:
    """The record a correction keeps of what it was fitted on: settings, and every entry's key and median."""
    return {"settings_hash": figures_hash, "calibration": dict(calibration), "entries": dict(medians)}


def _stale(correction: Mapping[str, Any], figures_hash: str, calibration: Mapping[str, Any],
           medians: Mapping[str, float]) -> str | None:
    record = correction.get("fitted_on")
    if not isinstance(record, Mapping):
        return "it does not record what it was fitted on"
    if record.get("settings_hash") != figures_hash:
        return "its entries were measured with other settings"
    if record.get("calibration") != dict(calibration):
        return "the calibration settings changed"
    if record.get("entries") != dict(medians):
        changed = sorted(set(record.get("entries") or {}) ^ set(medians)) or sorted(
            key for key, value in medians.items() if record["entries"].get(key) != value)
        return f"{len(changed)} entries changed since the fit (first: {changed[0]})"
    return None


def usable_meta(meta: Mapping[str, Any] | None, figures_hash: str, calibration: Mapping[str, Any],
                medians: Mapping[str, float]) -> dict[str, Any]:
    """A table's metadata without its correction when that correction was fitted on other settings or entries."""
    out = dict(meta or {})
    correction = out.get("correction")
    if correction:
        reason = _stale(correction, figures_hash, calibration, medians)
        if reason is not None:
            log.warning("table correction not used: %s; the next table request refits it", reason)
            del out["correction"]
    return out
