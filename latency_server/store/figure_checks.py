"""Only sane figures reach the statistics: every latency figure positive and finite, the spread finite and not
negative.

A figure of zero, a negative one, an infinity or a NaN (a broken timer, a hand-edited or corrupted database) would
move a table entry, a verdict's history or the budget's device speed without bound. The store refuses such a
figure on write (:func:`check_figures`, a :class:`ValueError`) and skips such rows on read
(:func:`sane_figures`, SQL conditions: ``x > 0 AND x < FLOAT_MAX`` is false for an infinity and for a NaN on
SQLite, which stores NaN as NULL, and on PostgreSQL, which orders NaN above every number).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from latency_server.worker.stats import Stats

__all__ = ["check_figures", "sane_figures", "sane_number"]

_POSITIVE = ("median_ms", "p90_ms", "mean_ms", "min_ms")
_FLOAT_MAX = sys.float_info.max


def sane_number(value: Any) -> bool:
    """Whether ``value`` is a positive finite number (a stored reference figure or ratio)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def check_figures(stats: Stats) -> None:
    """Raise :class:`ValueError` unless every figure of ``stats`` is finite, the latencies above zero."""
    bad = [f"{name}={getattr(stats, name)!r}" for name in _POSITIVE if not sane_number(getattr(stats, name))]
    if not (math.isfinite(stats.iqr_ms) and stats.iqr_ms >= 0):
        bad.append(f"iqr_ms={stats.iqr_ms!r}")
    if bad:
        raise ValueError(f"refusing to store a non-positive or non-finite figure: {', '.join(bad)}")


def sane_figures(model: Any) -> tuple[Any, ...]:
    """SQL conditions that hold only for a row of ``model`` whose figures :func:`check_figures` would accept."""
    conditions = [cond for name in _POSITIVE
                  for cond in (getattr(model, name) > 0, getattr(model, name) < _FLOAT_MAX)]
    return (*conditions, model.iqr_ms >= 0, model.iqr_ms < _FLOAT_MAX)
