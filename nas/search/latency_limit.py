"""The check every search entry point shares before it starts: some network of the table meets the latency limit."""

from __future__ import annotations

import math

from nas.latency.expected_latency import LatencyModel

__all__ = ["LatencyLimitError", "check_limit"]


class LatencyLimitError(ValueError):
    """The latency limit is below the smallest latency the table allows."""

    def __init__(self, limit_ms: float, minimum_ms: float) -> None:
        super().__init__(
            f"latency limit {limit_ms:.6g} ms is below the smallest achievable latency {minimum_ms:.6g} ms "
            "under this table"
        )
        self.limit_ms = limit_ms
        self.minimum_ms = minimum_ms


def check_limit(model: LatencyModel, limit_ms: float) -> float:
    """Raise :class:`LatencyLimitError` unless some network meets ``limit_ms``; return the minimum latency."""
    if not math.isfinite(limit_ms):
        raise ValueError(f"latency limit must be finite, got {limit_ms!r}")
    minimum = model.min_latency_ms()
    if minimum > limit_ms:
        raise LatencyLimitError(limit_ms, minimum)
    return minimum
