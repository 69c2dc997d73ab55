"""The device's smoothed speed: a level of the drift reference's recent figures, reported beside each answer.

Predictions follow this request's own reference in full (``drift_ratio``, exponent 1): on the recorded runs the
reference timed back to back with the network tracked a device whose speed changed within minutes better than any
smoothed level, and no worse on a quiet one (``docs/design/drift-elasticity.md``). The level stays as the device's
speed over the window, for the dashboard and for comparison. Filtering the reference's noise with an exponent
below 1 under-follows every lasting shift: that slope is pulled below 1 by the reference's own noise (regression
dilution), not by the networks. Averaging removes the noise without the bias: the level is the median
of the reference's figures over a recent time window, the rounds of every measurement in it (this request's, other
requests', table builds') together, so its noise shrinks with the figures averaged while a shift that lasts is
followed in full within one window. The median, not the mean, since the reference's sessions can land in two
speed modes and a few slow outliers should not move the level. With no other figure in the window, the level is
this request's rounds alone (the plain drift ratio).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DriftLevel", "drift_level"]


@dataclass(frozen=True)
class DriftLevel:
    """The reference's smoothed level now and what it rests on: "window" (figures of this request and of other
    measurements within the window) or "request" (this request's rounds alone)."""

    level_ms: float
    figures: int
    series: int  # measurements the figures came from, this request included
    source: str

    def factor(self, build_ms: float | None) -> float:
        """The prediction's drift factor: the level over the reference level at the table's build (1 without)."""
        if not build_ms or build_ms <= 0 or not math.isfinite(build_ms):
            return 1.0
        return self.level_ms / build_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drift_level(window: Sequence[tuple[float, Hashable]], request_ms: Sequence[float]) -> DriftLevel | None:
    """The median of the reference's figures in the window (``(figure, series)`` pairs of other measurements) and
    this request's reference rounds (``request_ms``); ``None`` without any positive, finite figure."""
    own = [v for v in request_ms if v > 0 and math.isfinite(v)]
    others = [(v, s) for v, s in window if v > 0 and math.isfinite(v)]
    values = own + [v for v, _ in others]
    if not values:
        return None
    series = len({s for _, s in others}) + (1 if own else 0)
    return DriftLevel(float(statistics.median(values)), len(values), series, "window" if others else "request")
