"""The table's level against what the device measures now: the correction's fit followed after the build.

A table is corrected once, at its build, against fit networks timed beside the drift reference; a prediction then
moves with the reference's level (:mod:`latency_server.verdicts.drift_level`). What that cannot follow is a change of
the networks' ratio to the reference itself: under contention that comes and goes (a neighbour competing for memory
bandwidth, a build running beside) whole networks and the lightest network of the space do not slow alike, so every
network's figure, normalised by its own reference rounds, can sit a few percent off the table for as long as the
condition lasts. All networks share that offset, so it does not average out over them: it is a bias.

Every later measurement of a network in the space is a check of the table: its normalised figure over the
table's corrected figure. The level is the mean of those log residuals over the recent networks (each network's
newest few, so that one client repeating a network does not outweigh the rest), shrunk towards zero by how far the
mean could be off by chance (``prior_sd^2 / (prior_sd^2 + var / n)``, the residuals' spread between networks over
their count): a handful of networks moves the prediction a little, dozens follow the shift in full. A network's own
measurements never enter its own level, so a prediction is never its own measurement fed back.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["TableLevel", "table_level"]


@dataclass(frozen=True)
class TableLevel:
    """The factor predictions take beyond the drift level, and what it rests on."""

    factor: float  # exp(shrunk mean log residual): 1 without other networks
    networks: int  # distinct other networks measured against this table within the window
    mean_residual: float  # their unshrunk mean log residual (normalised / table)
    shrink: float  # the weight the mean got

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_level(residuals: Sequence[tuple[Hashable, float]], *, exclude: Hashable | None = None,
                prior_sd: float = 0.03, max_repeats: int = 5) -> TableLevel:
    """The level of ``residuals`` (``(network, log(normalised / table))`` pairs, newest first), leaving out
    ``exclude``'s own: the per-network means (of at most ``max_repeats`` newest each) averaged, shrunk towards 0."""
    groups: dict[Hashable, list[float]] = {}
    for key, value in residuals:
        if key == exclude or not math.isfinite(value):
            continue
        group = groups.setdefault(key, [])
        if len(group) < max_repeats:
            group.append(value)
    means = np.array([float(np.mean(v)) for v in groups.values()])
    n = means.size
    if n == 0 or prior_sd <= 0.0:
        return TableLevel(1.0, n, float(means.mean()) if n else 0.0, 0.0)
    mean = float(means.mean())
    # one network alone says nothing of the spread between networks: take it as large as the prior
    var = float(np.var(means, ddof=1)) if n > 1 else prior_sd**2
    shrink = prior_sd**2 / (prior_sd**2 + var / n)
    return TableLevel(math.exp(shrink * mean), n, mean, shrink)
