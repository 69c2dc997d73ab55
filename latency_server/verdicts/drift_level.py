"""The device's speed now, as a prediction follows it: a smoothed level of the drift reference's recent figures.

A prediction is the table's corrected figure times ``level now / reference level at the build``, exponent 1. A
lasting change of the device's speed moves every network as it moves the reference, so it must count in full.
What must not count is the reference's own noise: one request's reference figure jumps by more than the networks
timed beside it. Filtering that noise with an exponent below 1 (the slope of log network on log reference fitted
between requests) under-follows every lasting shift: that slope is pulled below 1 by the reference's own noise
(regression dilution), not by the networks. Averaging removes the noise without the bias: the level is the median
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
