"""The table's level against what the device measures now: the correction's fit followed after the build.

A table is corrected once, at its build, against fit networks timed beside the drift reference; a prediction then
moves with the reference's level (:mod:`latency_server.verdicts.drift_level`). What that cannot follow is a change of
the networks' ratio to the reference itself: under contention that comes and goes (a neighbour competing for memory
bandwidth, a build running beside) whole networks and the lightest network of the space do not slow alike, so every
network's figure, normalised by its own reference rounds, can sit a few percent off the table for as long as the
condition lasts. All networks share that offset, so it does not average out over them: it is a bias.

Every later measurement of a network in the space is a check of the table: its normalised figure over the
table's corrected figure. The level is the median of those log residuals over the recent networks (each network's
newest few, its median, so that one client repeating a network does not outweigh the rest), shrunk towards zero by
how far it could be off by chance (``prior_sd^2 / (prior_sd^2 + se^2)``, the standard error from the residuals'
spread between networks and their count): a handful of networks moves the prediction a little, dozens follow the
shift in full. A network's own measurements never enter its own level, so a prediction is never its own measurement
fed back.

The window is short (``LATENCY_SERVER_TABLE_LEVEL_WINDOW_S``, ten minutes) because contention changes within
minutes, and a level that remembers longer carries an old condition into new predictions
(``docs/design/drift-elasticity.md`` has the replays). The median, not the mean, so that a request that caught a
burst in its network rounds and not in its reference rounds (or the opposite) does not move every prediction.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["TableLevel", "table_level"]


@dataclass(frozen=True)
class TableLevel:
    """The factor predictions take beyond the drift level, and what it rests on."""

    factor: float  # exp(shrunk level of the log residuals): 1 without other networks
    networks: int  # distinct other networks measured against this table within the window
    residual: float  # their unshrunk level (median, or mean with location="mean") of log(normalised / table)
    shrink: float  # the weight the level got

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_level(residuals: Sequence[tuple[Hashable, float]], *, exclude: Hashable | None = None,
                prior_sd: float = 0.03, max_repeats: int = 5,
                location: Literal["median", "mean"] = "median") -> TableLevel:
    """The level of ``residuals`` (``(network, log(normalised / table))`` pairs, newest first), leaving out
    ``exclude``'s own: the per-network medians (of at most ``max_repeats`` newest each) summarised by ``location``
    (the median, robust to a load's bursts; the mean as a baseline), shrunk towards 0."""
    groups: dict[Hashable, list[float]] = {}
    for key, value in residuals:
        if key == exclude or not math.isfinite(value):
            continue
        group = groups.setdefault(key, [])
        if len(group) < max_repeats:
            group.append(value)
    average = np.median if location == "median" else np.mean
    values = np.array([float(average(v)) for v in groups.values()])
    n = values.size
    level = float(average(values)) if n else 0.0
    if n == 0 or prior_sd <= 0.0:
        return TableLevel(1.0, n, level, 0.0)
    if n == 1:  # one network alone says nothing of the spread between networks: take it as large as the prior
        se2 = prior_sd**2
    elif location == "median" and n > 2:
        # the spread from the median absolute deviation (a burst's outlier does not widen it), and the median's
        # standard error at normal residuals: pi/2 times the mean's variance
        sd = 1.4826 * float(np.median(np.abs(values - level)))
        se2 = math.pi / 2 * sd**2 / n
    else:
        se2 = float(np.var(values, ddof=1)) / n
    shrink = prior_sd**2 / (prior_sd**2 + se2)
    return TableLevel(math.exp(shrink * level), n, level, shrink)
