"""Latency verdicts: a network's central figure and its upper prediction bound at a stated confidence.

The device's speed moves, so one measurement proves nothing about the next. A verdict separates what one
measurement can pin down (the network's ratio to the drift reference, timed back to back each round) from what
only the device's history can (the reference's level and spread, split into drift between measurements and
jitter within one, and the ratio's own drift under contention). The upper bound is a one-sided prediction bound
of a later measurement's log figure over those variance components, switching to the history's empirical
quantile where that is larger, since a device's slow moments are heavier-tailed than a normal.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["VERDICT_METHOD", "DeviceSpread", "RatioDrift", "VerdictStats", "device_spread", "enough_rounds",
           "prediction_bound", "ratio_drift"]

#: a later measurement reports the median of its rounds: its variance is pi/2 times that of their mean
_MEDIAN_VARIANCE = math.pi / 2

VERDICT_METHOD = ("log-normal prediction bound: ratio to the drift reference x the reference's history "
                  "(drift between measurements and jitter between rounds apart; the ratio's own drift from repeated "
                  "networks)")

#: the least degrees of freedom (repeats beyond the first, pooled over networks) for the ratio's drift to be
#: estimated rather than taken as the device's
RATIO_DRIFT_MIN_DF = 3


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
    sd_device: float  # log-sd of the reference's history figures (drift and jitter together)
    sd_ratio: float  # log-sd of the per-round ratio
    quantile: str  # "normal" or "empirical": which bound was the larger
    sd_drift: float | None = None  # log-sd of the device's level between measurements (None: no series)
    sd_jitter: float | None = None  # log-sd of the reference between the rounds of one measurement
    sd_ratio_drift: float | None = None  # log-sd of the ratio between measurements
    ratio_drift_source: str | None = None  # "repeats" (estimated) or "device" (taken as the device's drift)
    method: str = VERDICT_METHOD
    noise_warning: str | None = None  # in words, when the bound is too far above the central figure

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceSpread:
    """The history's log-variance split into drift between measurements and jitter between rounds."""

    drift_var: float
    jitter_var: float  # 0 where the history has no series of two or more figures
    drift_df: int
    jitter_df: int
    level_weight: float  # var(the history's mean log) = drift_var * level_weight + jitter_var / figures
    series_means: np.ndarray  # the means of the series of 3 or more figures (for the empirical quantile)
    split: bool  # whether jitter and drift could be told apart

    def later_sd(self, future_rounds: int) -> float:
        """The log-sd of the device's part of a later measurement of ``future_rounds`` rounds."""
        return math.sqrt(self.drift_var + _MEDIAN_VARIANCE * self.jitter_var / future_rounds)


@dataclass(frozen=True)
class RatioDrift:
    """The spread of a network's ratio to the reference between measurements, from networks measured repeatedly."""

    var: float  # log-variance
    df: int  # repeats beyond each network's first, pooled

    @property
    def usable(self) -> bool:
        return self.df >= RATIO_DRIFT_MIN_DF


def ratio_drift_or_prior(drift: RatioDrift | None, device: DeviceSpread) -> tuple[float, int, bool]:
    """The ratio's drift (variance, degrees of freedom) to count, and whether it was estimated: from repeated
    networks where they suffice, else the cautious prior: as large as the device's drift and jitter together (with
    the drift's degrees of freedom, the fewer)."""
    if drift is not None and drift.usable:
        return drift.var, drift.df, True
    return device.drift_var + device.jitter_var, device.drift_df, False


def ratio_drift(measurements: Sequence[tuple[Hashable, float, float]], sd_floor: float = 0.005,
                max_repeats: int | None = None) -> RatioDrift:
    """Pool the ratio's drift over networks measured more than once.

    ``measurements``: one ``(network, log ratio, its estimation variance)`` per measurement (the geometric-mean
    ratio of its rounds and ``sd_ratio^2 / rounds``). Per network, the sample variance of its log ratios less their
    mean estimation variance; pooled with weights ``n - 1`` (one-way random effects, as for the device).
    ``max_repeats`` counts at most that many measurements of a network (its first in the given order, the store
    giving the newest first), so that one client repeating a network cannot outweigh the others."""
    groups: dict[Hashable, list[tuple[float, float]]] = {}
    for key, log_ratio, noise in measurements:
        if math.isfinite(log_ratio) and math.isfinite(noise):
            group = groups.setdefault(key, [])
            if not max_repeats or len(group) < max_repeats:
                group.append((log_ratio, noise))
    between = 0.0
    df = 0
    for values in groups.values():
        if len(values) < 2:
            continue
        x = np.array([v for v, _ in values])
        between += (x.size - 1) * (float(np.var(x, ddof=1)) - float(np.mean([w for _, w in values])))
        df += x.size - 1
    return RatioDrift(max(between / df, sd_floor**2) if df else 0.0, df)


def _sd(values: np.ndarray, floor: float) -> float:
    return max(float(np.std(values, ddof=1)) if values.size > 1 else floor, floor)


def device_spread(
    history_log: np.ndarray, series: Sequence[Hashable] | None, sd_floor: float = 0.005, drift_floor: float = 0.0
) -> DeviceSpread:
    """Split the history's variance (logs) by ``series`` (one label per figure; None: every figure on its own).

    The one-way random-effects moment estimates: jitter from the pooled spread inside the series, drift from the
    spread of the series' means beyond what the jitter explains (ANOVA with unequal series sizes). ``drift_floor``
    is the least log-sd of the drift counted (:func:`prediction_bound`)."""
    x = np.asarray(history_log, dtype=np.float64)
    n = x.size
    labels = list(range(n)) if series is None else list(series)
    if len(labels) != n:
        raise ValueError("series: one label per history figure")
    members: dict[Hashable, list[float]] = {}
    for label, value in zip(labels, x, strict=True):
        members.setdefault(label, []).append(float(value))
    groups = [np.asarray(g) for g in members.values()]
    sizes = np.array([g.size for g in groups], dtype=np.float64)
    means = np.array([g.mean() for g in groups])
    n_series = len(groups)
    big = means[sizes >= 3]
    jitter_df = int(n - n_series)
    if jitter_df < 2 or n_series < 3:  # no within-series spread to speak of: all of it is drift (cautious)
        total = max(_sd(x, sd_floor), drift_floor) ** 2
        return DeviceSpread(total, 0.0, max(1, n - 1), 0, 1.0 / n, big, False)
    ssw = sum(float(np.sum((g - m) ** 2)) for g, m in zip(groups, means, strict=True))
    msw = ssw / jitter_df
    grand = float(x.mean())
    msb = float(np.sum(sizes * (means - grand) ** 2)) / (n_series - 1)
    n0 = (n - float(np.sum(sizes**2)) / n) / (n_series - 1)
    drift = max((msb - msw) / n0, sd_floor**2, drift_floor**2)
    jitter = max(msw, sd_floor**2)
    return DeviceSpread(drift, jitter, n_series - 1, jitter_df, float(np.sum(sizes**2)) / n**2, big, True)


def _satterthwaite(terms: Sequence[tuple[float, int]]) -> float:
    """Degrees of freedom of a sum of variance terms ``(value, df)``."""
    total = sum(v for v, _ in terms)
    denominator = sum(v * v / df for v, df in terms if df > 0 and v > 0)
    return max(1.0, total * total / denominator) if denominator > 0 else 1.0


def prediction_bound(
    network_ms: Sequence[float],
    reference_ms: Sequence[float],
    history_ms: Sequence[float],
    *,
    confidence: float = 0.95,
    future_rounds: int | None = None,
    sd_floor: float = 0.005,
    history_series: Sequence[Hashable] | None = None,
    drift_of_ratio: RatioDrift | None = None,
    drift_floor: float = 0.0,
) -> VerdictStats:
    """The verdict of paired rounds (``network_ms[i]`` and ``reference_ms[i]`` timed back to back) against the
    reference's history (``history_ms``, which should include this verdict's reference rounds).

    ``history_series`` labels each history figure with its series (the measurement it came from); without it
    every figure counts as its own. ``future_rounds`` is the number of rounds of the later measurement the bound
    is for (default: as many as now). ``sd_floor`` keeps a bound from collapsing on a handful of identical figures.
    ``drift_of_ratio`` is the ratio's drift between measurements from repeated networks (:func:`ratio_drift`);
    without enough repeats the ratio moves as much as the device's speed, drift and jitter together (the cautious
    reading). ``drift_floor`` is the least log-sd of the device's drift between measurements the bound counts: a
    history of a few minutes can show a device steadier than it will be over the next ones (a load that starts after
    the verdict), so a shared machine's drift is not taken below it.
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
    device = device_spread(hist, history_series, sd_floor, drift_floor)
    centre = mean_ratio + float(hist.mean())
    typical = float(np.median(hist))
    ratio_var = sd_ratio**2 * (1.0 / k + _MEDIAN_VARIANCE / kf)
    *moving_ratio, estimated = ratio_drift_or_prior(drift_of_ratio, device)
    # the device's level at a later measurement and the error of its estimate (the history's mean)
    drift_term = device.drift_var * (1.0 + device.level_weight)
    jitter_term = device.jitter_var * (_MEDIAN_VARIANCE / kf + 1.0 / h)
    # without a split, the history's whole spread is drift and its figures' count gives the degrees of freedom
    df = _satterthwaite([(drift_term, device.drift_df), (jitter_term, device.jitter_df), (ratio_var, k - 1),
                         tuple(moving_ratio)]) if device.split or estimated else device.drift_df
    upper = centre + float(stats.t.ppf(confidence, df)) * math.sqrt(drift_term + jitter_term + ratio_var
                                                                     + moving_ratio[0])
    quantile = "normal"
    needed = math.ceil(2.0 / (1.0 - confidence))
    spread_of = device.series_means if device.split else hist
    if spread_of.size >= needed:
        # the empirical quantile of the device's level, with the ratio's estimation and measurement noise
        device_term = max(0.0, float(np.quantile(spread_of, confidence)) - float(spread_of.mean()))
        ratio_term = float(stats.norm.ppf(confidence)) * math.sqrt(ratio_var + moving_ratio[0])
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
        sd_device=_sd(hist, sd_floor),
        sd_ratio=sd_ratio,
        quantile=quantile,
        sd_drift=math.sqrt(device.drift_var) if device.split else None,
        sd_jitter=math.sqrt(device.jitter_var) if device.split else None,
        sd_ratio_drift=math.sqrt(moving_ratio[0]),
        ratio_drift_source="repeats" if estimated else "device",
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

    ``sd_device`` is the log-sd of the device's part of a later measurement (:meth:`DeviceSpread.later_sd`);
    without one, the spread of this verdict's own reference rounds stands in. With a share of 0.1, a verdict stops
    once more rounds could lower its margin by at most about 5 %: a quiet device with a stable ratio stops at the
    minimum, a noisy ratio on a stable device takes rounds up to the maximum.
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
