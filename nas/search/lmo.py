"""Exact linear-minimisation oracle of the search: the LP relaxation of a multiple-choice knapsack.

Solves ``min sum_b c_b . x_b s.t. x_b in simplex (every block b), sum_b a_b . x_b <= r`` exactly and without a
generic solver (those cost milliseconds per step; this costs well under one). Its dual is ``max_{lambda >= 0} sum_b
min_i (c_bi + lambda a_bi) - lambda r``, concave and piecewise linear in one scalar. Equivalently: start every
block at its cheapest-objective option; the only useful moves of a block walk down the lower convex hull of its
points ``(a_bi, c_bi)`` towards smaller ``a``, each hull segment trading objective for constraint at a fixed rate;
taking all blocks' segments in increasing rate until the constraint holds is optimal, and ``lambda*`` is the rate
of the last segment taken. The result is a vertex: at most one block is split between two neighbouring hull
options, and that split makes the constraint tight. Cost: O(n log n) for n variables; deterministic (ties go to the
smaller ``a``, then the lower block and option index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["InfeasibleError", "LMOResult", "minimum_resource", "solve_mck_lp"]


class InfeasibleError(ValueError):
    """The constraint cannot be met: even the cheapest option of every block uses more than ``r``."""

    def __init__(self, message: str, minimum: float, limit: float) -> None:
        super().__init__(message)
        self.minimum = minimum
        self.limit = limit


@dataclass(frozen=True)
class LMOResult:
    """An optimal vertex: ``x`` (``[blocks, options]``), its objective, the multiplier and the split block."""

    x: np.ndarray
    objective: float
    multiplier: float
    fractional_block: int | None
    constrained: bool  # False when the unconstrained minimiser already satisfied the constraint


def minimum_resource(a: np.ndarray) -> float:
    """``sum_b min_i a_bi``: the least constraint value any feasible point can have."""
    return math.fsum(float(v) for v in np.min(np.asarray(a, dtype=np.float64), axis=1))


def _block_hull(cb: list[float], ab: list[float], order: list[int], s0: int) -> list[int]:
    """Option indices of the efficient hull of one block, from ``s0`` (the cheapest-objective option, smallest
    ``a`` on ties) towards smaller ``a``; ``order`` sorts the options by ``a``, then ``c``."""
    a0 = ab[s0]
    hull_a: list[float] = []
    hull_c: list[float] = []
    hull_i: list[int] = []
    last_a = None
    for i in order:  # ascending a, ties by ascending c: keep the first of equal a
        ai = ab[i]
        if ai >= a0:
            break
        if ai == last_a:
            continue
        last_a = ai
        ci = cb[i]
        while len(hull_i) >= 2:
            oa, oc, pa, pc = hull_a[-2], hull_c[-2], hull_a[-1], hull_c[-1]
            if (pa - oa) * (ci - oc) - (pc - oc) * (ai - oa) <= 0.0:
                hull_a.pop()
                hull_c.pop()
                hull_i.pop()
            else:
                break
        hull_a.append(ai)
        hull_c.append(ci)
        hull_i.append(i)
    if not hull_i:
        return [s0]
    ci = cb[s0]
    while len(hull_i) >= 2:
        oa, oc, pa, pc = hull_a[-2], hull_c[-2], hull_a[-1], hull_c[-1]
        if (pa - oa) * (ci - oc) - (pc - oc) * (a0 - oa) <= 0.0:
            hull_a.pop()
            hull_c.pop()
            hull_i.pop()
        else:
            break
    hull_i.append(s0)
    hull_i.reverse()
    return hull_i


def solve_mck_lp(c: np.ndarray, a: np.ndarray, r: float, *, rtol: float = 1e-12) -> LMOResult:
    """Minimise ``sum c*x`` over a product of simplices (rows) subject to ``sum a*x <= r``.

    ``c`` and ``a`` are ``[blocks, options]`` arrays. Raises :class:`InfeasibleError` (stating the minimum of
    ``sum a*x``) when ``r`` is below it by more than ``rtol`` (relative to the magnitudes involved, to absorb
    the rounding of a limit computed by subtraction); within that tolerance the least-``a`` point is returned.
    """
    c = np.asarray(c, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    if c.shape != a.shape or c.ndim != 2 or c.shape[1] == 0:
        raise ValueError(f"c and a must be [blocks, options] arrays of one shape, got {c.shape} and {a.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(a)) and math.isfinite(r)):
        raise ValueError("c, a and r must be finite")
    minimum = minimum_resource(a)
    if minimum - r > rtol * max(1.0, abs(r), float(np.abs(a).max(axis=1).sum())):
        raise InfeasibleError(
            f"infeasible: the smallest achievable value is {minimum:.9g}, above the limit {r:.9g}", minimum, r
        )
    num_b = c.shape[0]
    rows = np.arange(num_b)
    # cheapest objective per block, smallest a on ties, then the lowest index
    at_min = c == c.min(axis=1, keepdims=True)
    start = np.argmin(np.where(at_min, a, np.inf), axis=1)
    x = np.zeros_like(c)
    excess = math.fsum(a[rows, start].tolist()) - r
    multiplier = 0.0
    fractional: int | None = None
    constrained = excess > 0.0
    current = start.tolist()
    if constrained:
        c_rows, a_rows = c.tolist(), a.tolist()
        orders = np.lexsort((c, a), axis=1).tolist()
        hulls = [_block_hull(c_rows[b], a_rows[b], orders[b], current[b]) for b in range(num_b)]
        segments: list[tuple[float, int, int, float]] = []  # (rate, block, step, saving)
        for b, hull in enumerate(hulls):
            ab, cb = a_rows[b], c_rows[b]
            rate = 0.0
            for step in range(len(hull) - 1):
                i, j = hull[step], hull[step + 1]
                saving = ab[i] - ab[j]
                rate = max(rate, (cb[j] - cb[i]) / saving)  # monotone within a block despite rounding
                segments.append((rate, b, step, saving))
        segments.sort()
        for rate, b, step, saving in segments:
            multiplier = rate
            if saving < excess:
                excess -= saving
                current[b] = hulls[b][step + 1]
                continue
            theta = excess / saving
            i, j = hulls[b][step], hulls[b][step + 1]
            if theta >= 1.0:
                current[b] = j
            elif theta > 0.0:
                fractional, split = b, (i, j)
            excess = 0.0
            break
    x[rows, current] = 1.0
    if fractional is not None:
        x[fractional, current[fractional]] = 0.0
        i, j = split
        x[fractional, i] = 1.0 - theta
        x[fractional, j] = theta
    objective = math.fsum((c * x).ravel().tolist())
    return LMOResult(
        x=x, objective=objective, multiplier=multiplier, fractional_block=fractional, constrained=constrained
    )
