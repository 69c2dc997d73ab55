"""Latency verdicts: a network's central figure and its upper prediction bound at a stated confidence.

The device's speed moves (a shared CPU by 10-25 % within minutes), so one measurement proves nothing about the
next. A verdict separates what one measurement can pin down from what only the device's history can:

* the network's latency relative to the drift reference: every round times the network and the reference back to
  back, so their ratio cancels most of the device's speed; the log-ratios of the rounds give its estimate and noise;
* the device's speed: every figure of the reference kept for this configuration (table builds, verdict rounds,
  idle samples) is a draw from the device's distribution; their logs give its typical level and spread.

A later measurement of the network is modelled as ``log X = log rho + log R + e``: ``rho`` the ratio, ``R`` a
reference figure drawn from the device's distribution, ``e`` the ratio noise of a measurement of ``k'`` rounds.
The central figure is ``rho_hat * median(R)``, the latency at the device's typical speed (the median, so that a
few slow moments in the history do not move it). The upper bound is the one-sided prediction bound of ``log X``
at the confidence, ``t(c, df) * sqrt(s_R^2 (1 + 1/H) + s_e^2 (1/k + pi/2/k'))`` above ``log rho_hat + mean log R``
(``H`` history figures, ``k`` rounds; a later measurement reports the median of its rounds, hence pi/2);
with enough history (at least ``2 / (1 - c)`` figures) the history's empirical quantile replaces the normal
theory where it is larger, because a device's slow moments are heavier-tailed than a normal. Pure numpy/scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["VERDICT_METHOD", "VerdictStats", "enough_rounds", "prediction_bound"]

#: a later measurement reports the median of its rounds: its variance is pi/2 times that of their mean
_MEDIAN_VARIANCE = math.pi / 2

VERDICT_METHOD = "log-normal prediction bound: ratio to the drift reference x the reference's history"


@dataclass(frozen=True)
class VerdictStats:
    """A verdict's figures (milliseconds) and how they were reached."""

    central_ms: float
    upper_ms: float
    confidence: float
    rounds: int
    history: int
    ratio: float  # network / reference, geometric mean over the rounds
    reference_typical_ms: float  # the median of the reference's history
    sd_device: float  # log-sd of the reference's history (the device's speed and the reference's own noise)
    sd_ratio: float  # log-sd of the per-round ratio
    quantile: str  # "normal" or "empirical": which bound was the larger
    method: str = VERDICT_METHOD

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sd(values: np.ndarray, floor: float) -> float:
    return max(float(np.std(values, ddof=1)) if values.size > 1 else floor, floor)


def prediction_bound(
    network_ms: Sequence[float],
    reference_ms: Sequence[float],
    history_ms: Sequence[float],
    *,
    confidence: float = 0.95,
    future_rounds: int | None = None,
    sd_floor: float = 0.005,
) -> VerdictStats:
    """The verdict of paired rounds (``network_ms[i]`` and ``reference_ms[i]`` timed back to back) against the
    reference's history (``history_ms``, which should include this verdict's reference rounds).

    ``future_rounds`` is the number of rounds of the later measurement the bound is for (default: as many as
    now). ``sd_floor`` keeps a bound from collapsing on a handful of identical figures.
    """
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence: expected a value in [0.5, 1), got {confidence}")
    raw = [np.asarray(v, dtype=np.float64) for v in (network_ms, reference_ms, history_ms)]
    if raw[0].size == 0 or raw[0].size != raw[1].size or raw[2].size == 0:
        raise ValueError("a verdict needs paired rounds and a non-empty reference history")
    if not all(np.all(np.isfinite(v) & (v > 0)) for v in raw):
        raise ValueError("latencies must be positive and finite")
    net, ref, hist = (np.log(v) for v in raw)
    k, h = net.size, hist.size
    kf = future_rounds or k
    log_ratio = net - ref
    mean_ratio = float(log_ratio.mean())
    sd_ratio = _sd(log_ratio, sd_floor)
    mean_ref = float(hist.mean())
    sd_ref = _sd(hist, sd_floor)
    df = max(1, min(h, k + h) - 1)
    centre = mean_ratio + mean_ref
    typical = float(np.median(hist))
    spread = math.sqrt(sd_ref**2 * (1.0 + 1.0 / h) + sd_ratio**2 * (1.0 / k + _MEDIAN_VARIANCE / kf))
    upper = centre + float(stats.t.ppf(confidence, df)) * spread
    quantile = "normal"
    if h >= math.ceil(2.0 / (1.0 - confidence)):
        # the history's own quantile, combined with the ratio's estimation and measurement noise
        device_term = max(0.0, float(np.quantile(hist, confidence)) - mean_ref)
        ratio_term = float(stats.norm.ppf(confidence)) * sd_ratio * math.sqrt(1.0 / k + _MEDIAN_VARIANCE / kf)
        empirical = centre + math.hypot(device_term, ratio_term)
        if empirical > upper:
            upper, quantile = empirical, "empirical"
    return VerdictStats(
        central_ms=math.exp(mean_ratio + typical),
        upper_ms=math.exp(upper),
        confidence=confidence,
        rounds=k,
        history=h,
        ratio=math.exp(mean_ratio),
        reference_typical_ms=math.exp(typical),
        sd_device=sd_ref,
        sd_ratio=sd_ratio,
        quantile=quantile,
    )


def enough_rounds(
    network_ms: Sequence[float],
    reference_ms: Sequence[float],
    *,
    sd_device: float | None = None,
    min_rounds: int = 5,
    max_rounds: int = 25,
    share: float = 0.1,
    future_rounds: int | None = None,
    sd_floor: float = 0.005,
) -> bool:
    """The sequential rule: one more round while the ratio's estimation error is more than ``share`` of the bound's
    whole variance (more rounds could still tighten the bound noticeably), between ``min_rounds`` and
    ``max_rounds``.

    ``sd_device`` is the log-sd of the reference's history (the device's variability); without one, the spread of
    this verdict's own reference rounds stands in. With a share of 0.1, a verdict stops once more rounds could lower
    its margin by at most about 5 %: a quiet device with a stable ratio stops at the minimum, a noisy ratio on a
    stable device takes rounds up to the maximum.
    """
    k = len(network_ms)
    if k >= max_rounds:
        return True
    if k < max(2, min_rounds):
        return False
    ref = np.log(np.asarray(reference_ms, dtype=np.float64))
    log_ratio = np.log(np.asarray(network_ms, dtype=np.float64)) - ref
    sd_ratio = _sd(log_ratio, sd_floor)
    device = _sd(ref, sd_floor) if sd_device is None else max(sd_device, sd_floor)
    estimation = sd_ratio**2 / k
    total = device**2 + estimation + _MEDIAN_VARIANCE * sd_ratio**2 / (future_rounds or k)
    return estimation <= share * total
