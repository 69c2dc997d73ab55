"""How far a network's figure follows the drift reference's: the exponent of drift compensation.

A prediction is the table's corrected figure times ``(reference now / reference at the build) ** slope``. The
reference's figure carries noise of its own, and dividing by that noise overshoots, so the best exponent is the
regression slope of log(network) on log(reference), which the noise pulls below 1. The server estimates it from
networks it measured more than once on a configuration, shrunk towards a prior while repeats are few and kept
within [0, 1]. A shift far beyond the reference's everyday wander is real, so outside that band the drift ratio
counts in full.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_BAND", "Elasticity", "PooledSlope", "estimate_elasticity", "pooled_slope"]

#: the band's half-width (log) until repeated networks show the reference's spread between requests: twice the
#: 7 % those benchmark runs saw
DEFAULT_BAND = 0.14


@dataclass(frozen=True)
class PooledSlope:
    """The within-group regression slope of log(network) on log(reference) and what it rests on."""

    slope: float | None
    se: float | None
    pairs: int
    groups: int
    reference_log_sd: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"slope": self.slope, "se": self.se, "pairs": self.pairs, "groups": self.groups,
                "reference_log_sd": self.reference_log_sd}


def pooled_slope(pairs: Sequence[Sequence[tuple[float, float]]], max_repeats: int | None = None) -> PooledSlope:
    """Pool the slope of log(network) on log(reference) over groups of ``(network, reference)`` figures (one group
    per network; each pair timed back to back), each group centred on its own means. ``max_repeats`` counts at
    most that many figures of a group (its first, the store giving the newest first), so that one client repeating
    a network cannot outweigh the other networks."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for group in pairs:
        kept = [(n, r) for n, r in group if n > 0 and r > 0 and math.isfinite(n) and math.isfinite(r)]
        kept = kept[:max_repeats] if max_repeats else kept
        if len(kept) < 2:
            continue
        lx, ly = np.log([r for _, r in kept]), np.log([n for n, _ in kept])
        xs.append(lx - lx.mean())
        ys.append(ly - ly.mean())
    if not xs:
        return PooledSlope(None, None, 0, 0, None)
    x, y = np.concatenate(xs), np.concatenate(ys)
    sxx = float(x @ x)
    dof = len(x) - len(xs) - 1
    if dof < 1 or sxx <= 0:
        return PooledSlope(None, None, len(x), len(xs), None)
    slope = float(x @ y) / sxx
    resid = y - slope * x
    return PooledSlope(slope, float(np.sqrt(resid @ resid / dof / sxx)), len(x), len(xs), float(np.sqrt(sxx / dof)))


@dataclass(frozen=True)
class Elasticity:
    """The exponent applied to the drift ratio, and where it came from: "history" (shrunk toward the prior) or
    "prior" (too few repeated networks)."""

    slope: float
    source: str
    estimate: PooledSlope
    band: float = DEFAULT_BAND  # log drift within which the exponent applies

    def factor(self, drift_ratio: float) -> float:
        """The prediction's drift factor: ``drift_ratio ** slope`` inside the band, the full ratio beyond it."""
        if drift_ratio <= 0 or not math.isfinite(drift_ratio):
            return 1.0
        x = math.log(drift_ratio)
        inside = max(-self.band, min(self.band, x))
        return math.exp(self.slope * inside + (x - inside))

    def to_dict(self) -> dict[str, object]:
        return {"slope": self.slope, "source": self.source, "band": self.band, "estimate": self.estimate.to_dict()}


def estimate_elasticity(groups: Sequence[Sequence[tuple[float, float]]], prior: float, prior_sd: float,
                        min_groups: int = 3, max_repeats: int | None = None) -> Elasticity:
    """The drift-compensation exponent from repeated networks' ``(raw figure, reference figure)`` groups: their
    pooled slope shrunk toward ``prior`` (weights 1/se^2 and 1/prior_sd^2; ``prior_sd`` 0 pins the prior), within
    [0, 1]; the prior alone below ``min_groups`` repeated networks. The band is twice the reference's log-sd
    between requests of the same network where there are repeats, else :data:`DEFAULT_BAND`. ``max_repeats``: as
    for :func:`pooled_slope`."""
    fit = pooled_slope(groups, max_repeats)
    if fit.slope is None or fit.se is None or fit.groups < min_groups:
        return Elasticity(min(max(prior, 0.0), 1.0), "prior", fit)
    band = 2.0 * fit.reference_log_sd if fit.reference_log_sd else DEFAULT_BAND
    if prior_sd <= 0:
        return Elasticity(min(max(prior, 0.0), 1.0), "prior", fit, band)
    w_data, w_prior = 1.0 / max(fit.se, 1e-6) ** 2, 1.0 / prior_sd**2
    slope = (w_data * fit.slope + w_prior * prior) / (w_data + w_prior)
    return Elasticity(min(max(slope, 0.0), 1.0), "history", fit, band)
