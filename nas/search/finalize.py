"""The final steps of a search: from BCFW's final state to the one network it rates best under the limit.

The search's own final objective is a :class:`~nas.search.discretize.NetworkScore`, and the returned network is
its exact optimum under the limit (:func:`~nas.search.discretize.best_network`), never above the limit by the
table's exact sum. Two objectives are offered:

* ``linearised`` (default): the first-order loss of the averaged gradients. The gradient of the expected loss
  w.r.t. an option's probability is the option's loss contribution times the probability that its block runs,
  so each block's averaged gradient divided by that probability rates its options; a depth is rated by its
  averaged gradient less the part its blocks' options already account for.
* ``probability``: the network's probability under the final distribution (``log`` of alpha per active block
  and of beta per stage, floored at ``1e-6`` so an option the distribution dropped stays possible).

``linearised`` is the default because the distribution's probabilities are a vote over noisy LP vertices and say
little about options the vertices rarely visit, while the averaged gradients rate every option of every block that
ran (``bench/search_quality.py --final-score`` compares the two).

:func:`finalize` is a pure function of (score, limit), so the measured guarantee can re-run it under a tighter
internal limit (:func:`nas.search.driver.refinalize`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.bcfw import BCFW
from nas.search.candidates import ChildJudge, Judged, candidate_networks, pick_by_children
from nas.search.discretize import NetworkScore, best_network
from nas.search.latency_limit import check_limit
from shared.search_space import ArchChoice

__all__ = ["Finalization", "finalize", "probability_score", "search_score"]

PROBABILITY_FLOOR = 1e-6


def probability_score(alpha: np.ndarray, beta: np.ndarray, *, floor: float = PROBABILITY_FLOOR) -> NetworkScore:
    """Log-probability of a network under the product distribution (alpha, beta), each factor floored."""
    return NetworkScore(np.log(np.maximum(alpha, floor)), np.log(np.maximum(beta, floor)))


def search_score(opt: BCFW) -> NetworkScore:
    """The final objective of a search in the state ``opt``, as its config asks."""
    if opt.config.final_score == "probability":
        return probability_score(opt.alpha, opt.beta)
    return opt.surrogate()


@dataclass(frozen=True)
class Finalization:
    """The outcome of the final steps under one (internal) limit per target, the first target's first."""

    limit_ms: float
    choice: ArchChoice
    latency_ms: float  # table latency of ``choice`` (<= limit_ms, checked)
    score: float  # the final objective's value of ``choice`` (the best of all networks within the limits)
    limits_ms: tuple[float, ...] = ()  # every target's internal limit (default: the first's alone)
    latencies_ms: tuple[float, ...] = ()  # every target's table latency of ``choice``
    judged: tuple[Judged, ...] = ()  # the candidates the children decided among (none: the score alone decided)

    def __post_init__(self) -> None:
        if not self.limits_ms:
            object.__setattr__(self, "limits_ms", (self.limit_ms,))
        if not self.latencies_ms:
            object.__setattr__(self, "latencies_ms", (self.latency_ms,))


def finalize(model: LatencyModel, score: NetworkScore, limit_ms: float,
             others: Sequence[tuple[LatencyModel, float]] = (), *, judge: ChildJudge | None = None,
             candidates: int = 1) -> Finalization:
    """The network of highest ``score`` whose table latency is ``<= limit_ms`` (and within every further
    ``(model, limit_ms)`` of ``others``); re-runnable with tighter limits. With a ``judge`` and ``candidates`` > 1,
    the most accurate child among that many networks along the score/latency trade-off
    (:mod:`nas.search.candidates`).

    Raises :class:`~nas.search.latency_limit.LatencyLimitError` when a limit is below its table's minimum, and
    :class:`~nas.search.discretize.DiscretizationError` when no network meets all limits together.
    """
    constraints = [(model, limit_ms), *others]
    for m, limit in constraints:
        check_limit(m, limit)
    judged: list[Judged] = []
    if judge is not None and candidates > 1:
        choice, judged = pick_by_children(candidate_networks(score, constraints, candidates), judge)
        judged = [replace(j, latency_ms=model.choice_latency_ms(j.choice)) for j in judged]
    else:
        choice = best_network(score, constraints)
    latencies = tuple(m.choice_latency_ms(choice) for m, _ in constraints)
    for latency, (_, limit) in zip(latencies, constraints, strict=True):
        if not latency <= limit:  # the guarantee; best_network already enforces it
            raise AssertionError(f"discrete latency {latency} ms above the limit {limit} ms")
    return Finalization(limit_ms=limit_ms, choice=choice, latency_ms=latencies[0],
                        score=score.of(choice, model.depths), limits_ms=tuple(limit for _, limit in constraints),
                        latencies_ms=latencies, judged=tuple(judged))
