"""Helpers of the evaluation tests: the band sampler's grid count of networks, as a function of a band."""

from __future__ import annotations

from nas.evaluation.band_sampling import GRID_BINS, _count_in, _network_histogram
from nas.latency.expected_latency import LatencyModel

__all__ = ["networks_in_band"]


def networks_in_band(model: LatencyModel, low_ms: float, high_ms: float, bins: int = GRID_BINS) -> float:
    """About how many distinct networks have table latency in ``[low_ms, high_ms]``.

    Counted exactly on a grid: each block's latency rounded to ``max_latency / bins``, one histogram per stage
    (every depth, every option tuple) and their convolution. The rounding moves a network by at most half a step
    per block, so this picks bands; membership is always decided by the exact table sum.
    """
    return _count_in(_network_histogram(model, bins), model.fixed_ms, low_ms, high_ms)
