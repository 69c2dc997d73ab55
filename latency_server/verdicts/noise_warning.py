"""A verdict that says when the device is too noisy for a useful bound.

On a device whose speed drifts a lot between measurements a verdict's bound stands far above its central figure,
and a search that must keep the bound under a limit returns a network far under it. More rounds cannot help:
they shrink the ratio's estimation error and the jitter's share, never the drift. So once the bound is more than
``too_noisy_ratio`` times the central figure the verdict says so in words: how much the device drifts, the best
bound reachable now (the same variance components with the ratio estimated over the most rounds), and what would
lower the spread.
"""

from __future__ import annotations

import math

from scipy import stats

from latency_server.verdicts.bound import VerdictStats

__all__ = ["best_reachable_ms", "noise_warning"]

#: a later measurement reports the median of its rounds: its variance is pi/2 times that of their mean
_MEDIAN_VARIANCE = math.pi / 2

ADVICE = ("fewer threads per measurement, pinning the server to one core (for example `taskset -c 2 latency-server "
          "serve`) with nothing else running beside it, or measuring at a quieter moment")


def _pct(log_sd: float | None) -> str:
    return "n/a" if log_sd is None else f"{100 * math.expm1(log_sd):.0f} %"


def best_reachable_ms(verdict: VerdictStats, max_rounds: int, future_rounds: int) -> float:
    """The bound this verdict's figures would give with the ratio estimated over ``max_rounds`` rounds (the most a
    measurement takes): the device's drift and the ratio's drift stay, the estimation error shrinks. Never above
    the verdict's own bound."""
    drift = verdict.sd_drift if verdict.sd_drift is not None else verdict.sd_device
    jitter = verdict.sd_jitter or 0.0
    kf = max(1, future_rounds)
    var = (drift**2 + _MEDIAN_VARIANCE * jitter**2 / kf
           + verdict.sd_ratio**2 * (1.0 / max(1, max_rounds) + _MEDIAN_VARIANCE / kf)
           + (verdict.sd_ratio_drift or 0.0) ** 2)
    best = verdict.central_ms * math.exp(float(stats.norm.ppf(verdict.confidence)) * math.sqrt(var))
    return min(best, verdict.upper_ms)


def noise_warning(verdict: VerdictStats, *, threshold: float, max_rounds: int, future_rounds: int) -> str | None:
    """The warning in words when ``upper / central`` is above ``threshold``, else ``None``."""
    if verdict.central_ms <= 0 or verdict.upper_ms <= threshold * verdict.central_ms:
        return None
    best = best_reachable_ms(verdict, max_rounds, future_rounds)
    drift = (f"its speed drifts by about {_pct(verdict.sd_drift)} (one standard deviation) between measurements "
             f"and jitters by {_pct(verdict.sd_jitter)} between rounds" if verdict.sd_drift is not None
             else f"its speed varies by about {_pct(verdict.sd_device)} (one standard deviation) between figures")
    return (f"the device is too noisy for a tight bound: at {100 * verdict.confidence:g} % confidence the bound "
            f"{verdict.upper_ms:.4g} ms is {verdict.upper_ms / verdict.central_ms:.2f}x the central figure "
            f"{verdict.central_ms:.4g} ms (warning above {threshold:g}x); {drift}, and the network's ratio to the "
            f"reference moves by {_pct(verdict.sd_ratio_drift)} between measurements. The best bound reachable now "
            f"is about {best:.4g} ms ({best / verdict.central_ms:.2f}x central, measuring the most rounds, "
            f"{max_rounds}); more rounds cannot remove the drift. What would help: {ADVICE}.")
