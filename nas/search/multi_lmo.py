"""Exact LP oracle with several linear constraints over a product of simplices: one latency row per target.

Solves ``min sum_b c_b . x_b s.t. x_b in simplex (every block b), sum_b A_k,b . x_b <= r_k (k = 1..K)`` exactly for
the few constraints of a fleet (K = 2-3) on the search's sizes (20 blocks x 12 options, 5 stages x 3 depths).

Method: a dual simplex on the standard form (one convexity row per block, one row with a slack per constraint; the
basis is ``(blocks + K) x (blocks + K)``, its inverse kept by rank-one updates and refactorised periodically and at
the end). Every block's cheapest-objective option with all slacks basic is dual feasible, and so is the optimum of
any single constraint (:func:`nas.search.lmo.solve_mck_lp`, priced at its multiplier), so the dual simplex starts
from the single-constraint optimum of the constraint whose relaxation is tightest -- often already optimal, else a
few pivots away (each pivot walks one block along the trade-off of one constraint). Leaving rows by most violation,
entering columns by the dual ratio test (ties: the largest pivot); after many degenerate pivots Bland's rule takes
over, which cannot cycle. An optimal basis has at most K blocks split between options; the optimality conditions
are checked at the end against a fresh factorisation. Infeasibility is proven by a row of the tableau that no
column can repair (:class:`JointInfeasibleError`). Cost: tens of microseconds per pivot; no generic solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nas.search.lmo import InfeasibleError, minimum_resource, solve_mck_lp

__all__ = ["JointInfeasibleError", "MultiLMOResult", "solve_multi_lp"]

#: relative tolerances: primal values and reduced costs below these (times the data's scale) count as zero
PRIMAL_TOL = 1e-11
DUAL_TOL = 1e-11
PIVOT_TOL = 1e-9
REFACTOR_EVERY = 20


class JointInfeasibleError(InfeasibleError):
    """No point of the product of simplices meets all constraints together (``minimum`` is each one's alone)."""

    def __init__(self, message: str, minima: list[float], limits: list[float]) -> None:
        super().__init__(message, max(m - r for m, r in zip(minima, limits, strict=True)), 0.0)
        self.minima = minima
        self.limits = limits


@dataclass(frozen=True)
class MultiLMOResult:
    """An optimal vertex ``x`` (``[blocks, options]``), its objective, one multiplier per constraint (the LP's
    price of each), the blocks split between options (at most K) and the simplex pivots taken."""

    x: np.ndarray
    objective: float
    multipliers: tuple[float, ...]
    fractional_blocks: tuple[int, ...]
    pivots: int

    @property
    def multiplier(self) -> float:
        """The total price of the constraints (the one-constraint oracle's ``multiplier`` when K = 1)."""
        return math.fsum(self.multipliers)


class _Simplex:
    """The standard form of the LP and a basis of it, with the dual and primal simplex pivots."""

    def __init__(self, c: np.ndarray, a: np.ndarray, r: np.ndarray) -> None:
        num_b, num_o = c.shape
        self.num_b, self.num_o, self.num_k = num_b, num_o, a.shape[0]
        self.n = num_b * num_o
        self.m = num_b + self.num_k
        self.block = np.repeat(np.arange(num_b), num_o)  # block of each x column
        self.coupling = a.reshape(self.num_k, self.n)  # [K, n]
        self.cost = np.concatenate([c.reshape(-1), np.zeros(self.num_k)])
        self.rhs = np.concatenate([np.ones(num_b), r])
        scale_a = max(1.0, float(np.abs(r).max()), float(np.abs(a).max(axis=2).sum(axis=1).max()))
        self.primal_tol = PRIMAL_TOL * scale_a
        self.dual_tol = DUAL_TOL * max(1.0, float(np.abs(c).max()))
        self.matrix = np.zeros((self.m, self.n + self.num_k))  # the constraint matrix, slacks last
        self.matrix[self.block, np.arange(self.n)] = 1.0
        self.matrix[num_b:, : self.n] = self.coupling
        self.matrix[num_b:, self.n :] = np.eye(self.num_k)
        self.basis: list[int] = []
        self.binv = np.zeros((self.m, self.m))

    def column(self, j: int) -> np.ndarray:
        return self.matrix[:, j]

    def factorise(self, basis: list[int]) -> bool:
        """Make ``basis`` current; False when it is singular."""
        mat = self.matrix[:, basis]
        try:
            binv = np.linalg.inv(mat)
        except np.linalg.LinAlgError:
            return False
        if not np.all(np.isfinite(binv)) or np.abs(binv @ mat - np.eye(self.m)).max() > 1e-9:
            return False
        self.basis, self.binv = list(basis), binv
        return True

    def values(self) -> np.ndarray:
        return self.binv @ self.rhs

    def row_of_tableau(self, rho: np.ndarray) -> np.ndarray:
        """``rho . A`` for every column (x columns, then slacks)."""
        return rho @ self.matrix

    def reduced_costs(self) -> tuple[np.ndarray, np.ndarray]:
        pi = self.cost[self.basis] @ self.binv
        d = self.cost - self.row_of_tableau(pi)
        d[self.basis] = 0.0
        return d, pi

    def pivot(self, p: int, q: int) -> None:
        col = self.binv @ self.column(q)
        row = self.binv[p] / col[p]
        self.binv -= np.outer(col, row)
        self.binv[p] = row
        self.basis[p] = q

    def dual_simplex(self, max_pivots: int) -> int:
        """Pivot until the basis is primal feasible; raises :class:`_Infeasible` when a row proves it never is."""
        pivots = degenerate = 0
        while True:
            if pivots and pivots % REFACTOR_EVERY == 0:
                self.factorise(self.basis)
            xb = self.values()
            bad = np.flatnonzero(xb < -self.primal_tol)
            if bad.size == 0:
                return pivots
            if pivots >= max_pivots:
                raise RuntimeError(f"the dual simplex did not finish in {max_pivots} pivots")
            bland = degenerate > 2 * self.m
            p = int(min(bad, key=lambda i: self.basis[i])) if bland else int(bad[np.argmin(xb[bad])])
            alpha = self.row_of_tableau(self.binv[p])
            alpha[self.basis] = 0.0
            d, _ = self.reduced_costs()
            cand = np.flatnonzero(alpha < -PIVOT_TOL)
            if cand.size == 0:
                raise _Infeasible
            ratio = np.maximum(d[cand], 0.0) / -alpha[cand]
            best = ratio.min()
            tied = cand[ratio <= best + 1e-12 * max(1.0, best)]
            q = int(tied.min()) if bland else int(tied[np.argmin(alpha[tied])])
            degenerate = degenerate + 1 if best <= self.dual_tol else 0
            self.pivot(p, q)
            pivots += 1

    def primal_simplex(self, max_pivots: int) -> int:
        """Pivot (Bland's rule) until no reduced cost is negative; the basis stays primal feasible."""
        pivots = 0
        while True:
            d, _ = self.reduced_costs()
            neg = np.flatnonzero(d < -self.dual_tol)
            if neg.size == 0:
                return pivots
            if pivots >= max_pivots:
                raise RuntimeError(f"the primal simplex did not finish in {max_pivots} pivots")
            q = int(neg.min())
            col = self.binv @ self.column(q)
            xb = np.maximum(self.values(), 0.0)
            rows = np.flatnonzero(col > PIVOT_TOL)
            ratio = xb[rows] / col[rows]
            tied = rows[ratio <= ratio.min() + self.primal_tol]
            p = int(min(tied, key=lambda i: self.basis[i]))
            self.pivot(p, q)
            pivots += 1
            self.factorise(self.basis)


class _Infeasible(Exception):
    pass


def _cold_basis(s: _Simplex, c: np.ndarray) -> list[int]:
    """Every block at its cheapest-objective option, every slack basic: dual feasible."""
    key = np.argmin(c, axis=1)
    return [b * s.num_o + int(key[b]) for b in range(s.num_b)] + [s.n + k for k in range(s.num_k)]


def _warm_basis(s: _Simplex, c: np.ndarray, a: np.ndarray, one, k: int) -> list[int] | None:
    """The basis of ``one``, the optimum under constraint ``k`` alone (other slacks basic), or None."""
    basis = [s.n + j for j in range(s.num_k) if j != k]
    for b in range(s.num_b):
        basis.extend(b * s.num_o + int(i) for i in np.flatnonzero(one.x[b] > 0.0))
    if len(basis) == s.m - 1:  # constraint k not split across a block: its slack, or a tied column, completes it
        if not one.constrained:
            basis.append(s.n + k)
        else:
            price = (c + one.multiplier * a[k]).reshape(-1)
            used = set(basis)
            key = {j // s.num_o: j for j in basis if j < s.n}
            gap = [(abs(price[j] - price[key[j // s.num_o]]), j) for j in range(s.n)
                   if j not in used and a[k].reshape(-1)[j] != a[k].reshape(-1)[key[j // s.num_o]]]
            if not gap:
                return None
            basis.append(min(gap)[1])
    return basis if len(basis) == s.m else None


def solve_multi_lp(c: np.ndarray, a: np.ndarray, r, *, max_pivots: int | None = None) -> MultiLMOResult:
    """Minimise ``sum c*x`` over a product of simplices (rows of ``c``) subject to ``sum a[k]*x <= r[k]`` for
    every ``k``.

    ``c`` is ``[blocks, options]``, ``a`` is ``[K, blocks, options]``, ``r`` has K entries. Raises
    :class:`JointInfeasibleError` when no point meets all constraints together.
    """
    c = np.asarray(c, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    r = np.atleast_1d(np.asarray(r, dtype=np.float64))
    if c.ndim != 2 or a.ndim != 3 or a.shape[1:] != c.shape or r.shape != (a.shape[0],) or c.shape[1] == 0:
        raise ValueError(f"expected c [blocks, options], a [K, blocks, options], r [K]; got {c.shape}, {a.shape}, "
                         f"{r.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(a)) and np.all(np.isfinite(r))):
        raise ValueError("c, a and r must be finite")
    num_k = a.shape[0]
    minima = [minimum_resource(a[k]) for k in range(num_k)]
    for k, (lo, rk) in enumerate(zip(minima, r, strict=True)):
        if lo - rk > 1e-12 * max(1.0, abs(rk), float(np.abs(a[k]).max(axis=1).sum())):  # as the one-row oracle
            raise JointInfeasibleError(f"constraint {k}: the smallest achievable value is {lo:.9g}, above the limit "
                                       f"{rk:.9g}", minima, r.tolist())
    # every block at its cheapest-objective option (smallest total resource on ties): optimal if it fits
    at_min = c == c.min(axis=1, keepdims=True)
    key = np.argmin(np.where(at_min, a.sum(axis=0), np.inf), axis=1)
    rows = np.arange(c.shape[0])
    excess = [math.fsum(a[k, rows, key].tolist()) - float(r[k]) for k in range(num_k)]
    if max(excess) <= 0.0:
        x = np.zeros_like(c)
        x[rows, key] = 1.0
        return MultiLMOResult(x, math.fsum(c[rows, key].tolist()), (0.0,) * num_k, (), 0)
    # the most violated constraint alone (the fast one-row oracle): optimal if its optimum meets the others
    k = max(range(num_k), key=lambda k: excess[k] / max(1e-300, float(np.ptp(a[k].sum(axis=1)))))
    single = solve_mck_lp(c, a[k], float(r[k]))
    used = (a * single.x).reshape(num_k, -1).sum(axis=1)
    if all(used[j] <= r[j] for j in range(num_k) if j != k):
        prices = tuple(single.multiplier if j == k else 0.0 for j in range(num_k))
        frac = () if single.fractional_block is None else (single.fractional_block,)
        return MultiLMOResult(single.x, single.objective, prices, frac, 0)
    s = _Simplex(c, a, r)
    start = _warm_basis(s, c, a, single, k)
    if start is None or not s.factorise(start) or s.reduced_costs()[0].min() < -s.dual_tol:
        s.factorise(_cold_basis(s, c))
    budget = max_pivots or 50 * s.m
    try:
        pivots = s.dual_simplex(budget)
    except _Infeasible:
        raise JointInfeasibleError(
            "no point meets all constraints together (each alone: "
            + ", ".join(f"minimum {lo:.6g} <= limit {rk:.6g}" for lo, rk in zip(minima, r, strict=True)) + ")",
            minima, r.tolist()) from None
    s.factorise(s.basis)
    pivots += s.primal_simplex(budget)  # rounding only: the dual simplex ends optimal in exact arithmetic
    x = np.zeros(s.n + s.num_k)
    x[s.basis] = np.maximum(s.values(), 0.0)
    xs = x[: s.n].reshape(c.shape)
    _, pi = s.reduced_costs()
    fractional = tuple(int(b) for b in np.flatnonzero(np.sum(xs > 0.0, axis=1) > 1))
    return MultiLMOResult(
        x=xs,
        objective=math.fsum((c * xs).ravel().tolist()),
        multipliers=tuple(max(0.0, -float(v)) for v in pi[s.num_b:]),
        fractional_blocks=fractional,
        pivots=pivots,
    )
