"""What a measurement is and what it yields, without torch: the method, statistics, whole-network figures.

These plain, picklable values cross the pipe between the HTTP process and the measurement worker, and are
what the store keeps; the timing code that produces them lives in :mod:`latency_server.worker.timing`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Method", "NetworkFigure", "RoundSeries", "Stats", "headline_figure"]


@dataclass(frozen=True)
class Method:
    """How to time: warm-up runs, then repeats until ``budget_s`` is spent and ``min_repeats`` reached."""

    warmup: int = 10
    min_repeats: int = 30
    max_repeats: int = 20000
    budget_s: float = 0.25
    #: test hook: every timed duration is multiplied by this (simulates a slower or faster device); 1 in use
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if (self.warmup < 0 or self.min_repeats < 1 or self.max_repeats < self.min_repeats or self.budget_s < 0
                or not self.time_scale > 0):
            raise ValueError(f"invalid measurement method {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Stats:
    """Statistics of one measurement in milliseconds per image."""

    median_ms: float
    iqr_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    samples: int
    warmup: int

    @classmethod
    def from_seconds(cls, samples_s: Sequence[float], *, batch_size: int = 1, warmup: int = 0) -> Stats:
        """Summarise per-run durations (seconds per batch) as ms per image."""
        if not samples_s:
            raise ValueError("no samples to summarise")
        ms = np.asarray(samples_s, dtype=np.float64) * 1000.0 / batch_size
        q25, q50, q75, q90 = np.percentile(ms, [25, 50, 75, 90])
        return cls(
            median_ms=float(q50),
            iqr_ms=float(q75 - q25),
            p90_ms=float(q90),
            mean_ms=float(ms.mean()),
            min_ms=float(ms.min()),
            samples=int(ms.size),
            warmup=int(warmup),
        )

    def public(self) -> dict[str, Any]:
        """The REST contract's ``stats`` object."""
        return {
            "median_ms": self.median_ms,
            "iqr_ms": self.iqr_ms,
            "p90_ms": self.p90_ms,
            "samples": self.samples,
            "warmup": self.warmup,
        }


@dataclass(frozen=True)
class NetworkFigure:
    """A whole-network measurement: the headline stats and each independent round's."""

    stats: Stats
    rounds: list[Stats] = field(default_factory=list)

    @property
    def spread_ms(self) -> float:
        """Max minus min of the round medians (0 for one round)."""
        medians = [r.median_ms for r in self.rounds]
        return max(medians) - min(medians) if medians else 0.0


def headline_figure(per_round: list[Stats], pooled: list[float], batch_size: int, warmup: int) -> NetworkFigure:
    """Median of the round medians; IQR and p90 from all samples (seconds per batch) pooled."""
    if len(per_round) == 1:
        return NetworkFigure(per_round[0], per_round)
    total = Stats.from_seconds(pooled, batch_size=batch_size, warmup=warmup)
    headline = Stats(
        median_ms=float(statistics.median(r.median_ms for r in per_round)),
        iqr_ms=total.iqr_ms,
        p90_ms=total.p90_ms,
        mean_ms=total.mean_ms,
        min_ms=total.min_ms,
        samples=total.samples,
        warmup=warmup * len(per_round),
    )
    return NetworkFigure(headline, per_round)


class RoundSeries:
    """Several networks' rounds as they come in (from one worker task or several): each round's statistics and
    every timed sample, summarised like one measurement by :meth:`figures`."""

    def __init__(self, count: int, *, batch_size: int, warmup: int) -> None:
        self.batch_size = batch_size
        self.warmup = warmup
        self.per_round: list[list[Stats]] = [[] for _ in range(count)]
        self.pooled: list[list[float]] = [[] for _ in range(count)]

    @property
    def rounds(self) -> int:
        return len(self.per_round[0]) if self.per_round else 0

    def add_task(self, figures: Sequence[NetworkFigure], samples_s: Sequence[Sequence[float]]) -> None:
        """Add a task's rounds: its figures (input order) and all their timed samples (seconds per batch)."""
        for series, pooled, figure, samples in zip(self.per_round, self.pooled, figures, samples_s, strict=True):
            series.extend(figure.rounds)
            pooled.extend(samples)

    def figures(self) -> list[NetworkFigure]:
        """Each network's figure over the rounds so far."""
        return [headline_figure(r, p, self.batch_size, self.warmup)
                for r, p in zip(self.per_round, self.pooled, strict=True)]
