"""The final choice among a few networks by their children's held-out accuracy, instead of the score alone.

The final objective (:mod:`nas.search.finalize`) is a first-order estimate of the supernet's loss: it rates the
options from gradients averaged at the search's distributions, and on a briefly trained supernet it can rate every
larger option as useless, so the one best network by score leaves much of the budget unused while larger children
are more accurate. Here the final steps propose a handful of networks along the trade-off between the score and
the latency the limit allows (the exact optima of ``score + t * latency`` for a few ``t`` from 0 up, every one
under the limits), and the supernet's children decide among them: each child's BN statistics re-estimated on the
search's training images and its accuracy measured on the search's held-out images (never the validation split a
result is judged on). ``t = 0`` is the score's own optimum, so with one candidate this is the plain final step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.search.discretize import Constraints, NetworkScore, best_network
from shared.search_space import ArchChoice

__all__ = ["ChildJudge", "Judged", "candidate_networks", "pick_by_children"]


@dataclass(frozen=True)
class Judged:
    """One candidate and its child's held-out figures."""

    choice: ArchChoice
    top1: float
    loss: float
    latency_ms: float | None = None  # the first target's table latency


#: the held-out (top-1 percent, mean loss) of a network's child
ChildJudge = Callable[[ArchChoice], tuple[float, float]]

#: the tilted objectives are proposals, not the guarantee: near their optimum many networks tie on latency, and
#: proving one optimal to 1e-6 ran into the solver's 60 s limit 8 times in one demo (19 minutes of searching);
#: to 1e-4 each takes about a second on the same scores and tables
CANDIDATE_REL_GAP = 1e-4
CANDIDATE_TIME_LIMIT_S = 5.0


def _scale(score: NetworkScore, block_ms: np.ndarray) -> float:
    """Score units per millisecond: the spread of the option scores over the spread of the option latencies."""
    spread = float(np.std(score.option)) + float(np.std(score.depth))
    latency = float(np.std(block_ms))
    return spread / latency if latency > 0 and spread > 0 else 1.0


def candidate_networks(score: NetworkScore, constraints: Constraints, count: int) -> list[ArchChoice]:
    """Up to ``count`` distinct networks within the limits: the optimum of ``score`` (first), then the optima of
    ``score + t * latency`` for ``t`` doubling from an eighth of the score's spread per millisecond of the first
    model's option latencies (larger ``t`` fill more of the budget), until ``count`` are found or the fullest
    network repeats."""
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    model = constraints[0][0]
    found = [best_network(score, constraints)]
    unit = _scale(score, model.block_ms)
    t = unit / 8.0
    for _ in range(4 * count):
        if len(found) >= count:
            break
        tilted = NetworkScore(score.option + t * model.block_ms, score.depth)
        choice = best_network(tilted, constraints, rel_gap=CANDIDATE_REL_GAP, time_limit_s=CANDIDATE_TIME_LIMIT_S)
        if choice not in found:
            found.append(choice)
        elif t > 64.0 * unit:  # the latency term decides alone: no fuller network is left
            break
        t *= 2.0
    return found


def pick_by_children(candidates: Sequence[ArchChoice], judge: ChildJudge) -> tuple[ArchChoice, list[Judged]]:
    """The candidate whose child is most accurate on the held-out images (the lower loss breaks a tie), and every
    candidate's figures in the order given."""
    judged = [Judged(c, *judge(c)) for c in candidates]
    best = max(judged, key=lambda j: (j.top1, -j.loss))
    return best.choice, judged
