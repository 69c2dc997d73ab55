"""The exact discretisation: the network with the best additive score whose table latency meets the limit.

A :class:`NetworkScore` rates every option at every block position and every depth of every stage; a network's
score is the sum over its active blocks and its stages. :func:`best_network` finds the best network under one or
more latency limits exactly -- a multiple-choice knapsack with depths, as a MILP solved by HiGHS
(``scipy.optimize.milp``, to a relative optimality gap of 1e-6): binaries per (stage, position, option) and per
(stage, depth), block ``j`` of a stage active iff its depth exceeds ``j``. The answer is checked against each
table's exact sum (``math.fsum``); when HiGHS's feasibility tolerance puts it above a limit by a rounding error,
that row is tightened and the MILP solved again, so the network returned never exceeds a limit. A last pass swaps
in any option rated strictly higher that still fits (only the MILP's optimality tolerance can leave one), so an
option the score rates lower never stands where a higher-rated one fits.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from nas.latency.expected_latency import LatencyModel
from shared.search_space import ArchChoice

__all__ = ["DiscretizationError", "NetworkScore", "best_network", "relaxed_minimum_ms"]

log = logging.getLogger(__name__)

#: HiGHS stops when the score's optimality gap is below this (relative): far below any score's noise, and it spares
#: near-tied knapsacks (scores proportional to latency) minutes of proving the last digits
MIP_REL_GAP = 1e-6

#: HiGHS's primal feasibility tolerance (its default): a row may exceed its bound by this much
FEASIBILITY_TOL = 1e-7

#: (latency model, limit in ms) pairs a network must all meet
Constraints = Sequence[tuple[LatencyModel, float]]


class DiscretizationError(RuntimeError):
    """No network meets the limits, or the solver gave no answer."""


@dataclass(frozen=True)
class NetworkScore:
    """Additive score of a network (higher is better): ``option[s, j, i]`` for each active block ``j`` of stage
    ``s`` running option ``i``, plus ``depth[s, d]`` for the depth index ``d`` of each stage."""

    option: np.ndarray  # [S, D, O]
    depth: np.ndarray  # [S, nd]

    def __post_init__(self) -> None:
        option = np.array(self.option, dtype=np.float64)
        depth = np.array(self.depth, dtype=np.float64)
        if option.ndim != 3 or depth.ndim != 2 or depth.shape[0] != option.shape[0]:
            raise ValueError(f"score shapes {option.shape} and {depth.shape} do not describe one space")
        if not (np.all(np.isfinite(option)) and np.all(np.isfinite(depth))):
            raise ValueError("scores must be finite")
        object.__setattr__(self, "option", option)
        object.__setattr__(self, "depth", depth)

    def of(self, choice: ArchChoice, depths: Sequence[int]) -> float:
        """The score of one network (correctly rounded sum)."""
        terms = []
        for s, stage in enumerate(choice.options):
            terms.append(float(self.depth[s, list(depths).index(len(stage))]))
            terms.extend(float(self.option[s, j, i]) for j, i in enumerate(stage))
        return math.fsum(terms)


def _fits(choice: ArchChoice, constraints: Constraints) -> bool:
    return all(model.choice_latency_ms(choice) <= limit for model, limit in constraints)


def _network_rows(model: LatencyModel) -> tuple[list[np.ndarray], np.ndarray, int]:
    """The equality rows over binaries per (stage, position, option) then per (stage, depth): one depth per stage,
    block ``j`` running one option iff the stage's depth exceeds ``j``; their right-hand sides; the x count."""
    depths = model.depths
    num_s, num_b, num_o = model.alpha_shape
    num_d = len(depths)
    n_x = num_s * num_b * num_o
    n = n_x + num_s * num_d

    def x(s: int, j: int, i: int) -> int:
        return (s * num_b + j) * num_o + i

    def y(s: int, d: int) -> int:
        return n_x + s * num_d + d

    rows = []
    for s in range(num_s):  # one depth per stage
        row = np.zeros(n)
        row[[y(s, d) for d in range(num_d)]] = 1.0
        rows.append(row)
    for s in range(num_s):  # block j runs one option iff the stage's depth exceeds j, else none
        for j in range(num_b):
            row = np.zeros(n)
            row[[x(s, j, i) for i in range(num_o)]] = 1.0
            row[[y(s, d) for d, depth in enumerate(depths) if depth > j]] -= 1.0
            rows.append(row)
    equal = np.zeros(len(rows))
    equal[:num_s] = 1.0
    return rows, equal, n_x


def _latency_row(model: LatencyModel, n: int) -> np.ndarray:
    row = np.zeros(n)
    row[: model.block_ms.size] = model.block_ms.reshape(-1)
    return row


def relaxed_minimum_ms(model: LatencyModel, constraints: Constraints) -> float:
    """The least expected latency under ``model`` of any distribution over networks whose expected latency meets
    every ``(model, limit_ms)`` of ``constraints`` (an LP over the networks' marginals); ``inf`` when none does."""
    from scipy.optimize import linprog

    rows, equal, _ = _network_rows(model)
    n = rows[0].size
    res = linprog(_latency_row(model, n), A_eq=np.array(rows), b_eq=equal, bounds=(0.0, 1.0), method="highs",
                  A_ub=np.array([_latency_row(m, n) for m, _ in constraints]) if constraints else None,
                  b_ub=[limit - m.fixed_ms for m, limit in constraints] if constraints else None)
    return model.fixed_ms + float(res.fun) if res.status == 0 else float("inf")


def _solve_milp(score: NetworkScore, constraints: Constraints, rhs: list[float], time_limit_s: float,
                rel_gap: float = MIP_REL_GAP) -> ArchChoice:
    from scipy.optimize import Bounds, LinearConstraint, milp

    model = constraints[0][0]
    depths = model.depths
    num_s, num_b, num_o = score.option.shape
    num_d = len(depths)
    rows, equal, n_x = _network_rows(model)
    n = rows[0].size
    cons = [LinearConstraint(np.array(rows), equal, equal)]
    for (m, _), r in zip(constraints, rhs, strict=True):
        cons.append(LinearConstraint(_latency_row(m, n)[None, :], -np.inf, r))
    c = -np.concatenate([score.option.reshape(-1), score.depth.reshape(-1)])
    with _quiet_stdout():
        res = milp(c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0.0, 1.0),
                   options={"mip_rel_gap": rel_gap, "time_limit": time_limit_s})
    if res.x is None:
        log.debug("the exact discretisation found no network: %s", res.message)
        raise DiscretizationError("no network meets the latency limits" if res.status == 2 else
                                  f"the exact discretisation found no network within its {time_limit_s:g} s")
    if res.status != 0:
        log.debug("the exact discretisation stopped early: %s", res.message)
        log.warning("the exact discretisation stopped before proving its network the best: using the best one found")
    sol = np.round(res.x)
    choice_x = sol[:n_x].reshape(num_s, num_b, num_o)
    choice_y = sol[n_x:].reshape(num_s, num_d)
    stages = []
    for s in range(num_s):
        depth = depths[int(np.argmax(choice_y[s]))]
        stages.append(tuple(int(np.argmax(choice_x[s, j])) for j in range(depth)))
    return ArchChoice(tuple(stages))


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 while HiGHS runs: the build bundled with scipy prints debug lines there."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (an embedding host): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _polish(score: NetworkScore, choice: ArchChoice, constraints: Constraints) -> ArchChoice:
    """Swap in, block by block, the highest-rated option above the current one that still fits."""
    stages = [list(stage) for stage in choice.options]
    changed = True
    while changed:
        changed = False
        for s, stage in enumerate(stages):
            for j, current in enumerate(stage):
                for alt in np.argsort(-score.option[s, j], kind="stable"):
                    if score.option[s, j, alt] <= score.option[s, j, current]:
                        break
                    stage[j] = int(alt)
                    if _fits(ArchChoice(tuple(tuple(x) for x in stages)), constraints):
                        changed = True
                        break
                    stage[j] = current
    return ArchChoice(tuple(tuple(x) for x in stages))


def best_network(score: NetworkScore, constraints: Constraints, *, time_limit_s: float = 60.0,
                 max_tightenings: int = 20, rel_gap: float = MIP_REL_GAP) -> ArchChoice:
    """The network of highest ``score`` whose table latency meets every ``(model, limit_ms)`` pair.

    All models must share the score's shape and depths. Raises :class:`DiscretizationError` when no network meets
    the limits (check the limits against the tables' minima first for a clearer message). ``rel_gap`` is the
    relative optimality gap the solver may stop at (default: proven optimal within rounding).
    """
    if not constraints:
        raise ValueError("best_network needs at least one (latency model, limit) pair")
    for model, _ in constraints:
        if model.alpha_shape != score.option.shape or model.beta_shape != score.depth.shape:
            raise ValueError("the score and the latency model describe different spaces")
    rhs = [limit - model.fixed_ms for model, limit in constraints]
    for attempt in range(max_tightenings):
        try:
            choice = _solve_milp(score, constraints, rhs, time_limit_s, rel_gap)
        except DiscretizationError:
            # tightened past the last network: the limit lies within the solver's tolerance of a table's minimum,
            # where only a lightest network can fit by exact sums
            fitting = [c for c in (m.lightest_choice() for m, _ in constraints) if _fits(c, constraints)]
            if attempt == 0 or not fitting:
                raise
            return _polish(score, fitting[0], constraints)
        excess = [model.choice_latency_ms(choice) - limit for model, limit in constraints]
        if all(e <= 0.0 for e in excess):
            return _polish(score, choice, constraints)
        for k, (e, (_, limit)) in enumerate(zip(excess, constraints, strict=True)):
            if e > 0.0:
                # the solver's feasibility tolerance let a rounding error through: ask for less, by at least that
                # tolerance (a smaller step would get the same answer back), doubling while it keeps happening
                step = max(2.0 * e, FEASIBILITY_TOL * max(1.0, abs(limit)))
                rhs[k] -= step * 2.0**attempt
    raise DiscretizationError(f"no network within the limits after {max_tightenings} tightenings")
