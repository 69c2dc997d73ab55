"""The original paper's final steps and the alternative starts, kept as baselines of ``bench/search_quality.py``.

* :func:`paper_finalize`: sparsify (alternating full LP steps towards the searched distribution, ending at a
  near-vertex), per-block argmax (a fractional block rounded to its cheaper support option) and a feasibility
  repair, no fill -- what the original does after BCFW, plus the repair it lacks.
* :func:`projection_start`: alternating exact Euclidean projections of the uniform point onto
  ``{simplices, E <= T}`` (beta first, as the original's QP start); each projection has one scalar multiplier,
  found by bisection.
* :func:`segment_start`: the point nearest to uniform on the segment towards the lightest network (this project's
  former start).
"""

from __future__ import annotations

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.lmo import solve_mck_lp
from shared.search_space import ArchChoice

__all__ = ["paper_finalize", "projection_start", "segment_start"]


def _bisect(feasible, hi: float = 1.0, iterations: int = 200) -> float:
    """The smallest ``t >= 0`` with ``feasible(t)`` (monotone), to adjacent floats."""
    if feasible(0.0):
        return 0.0
    while not feasible(hi):
        hi *= 2.0
        if hi > 1e12:  # only the least-latency point is left (a rounding error keeps it from "fitting")
            return hi
    lo = 0.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    return hi


def segment_start(model: LatencyModel, limit_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """``(1 - t) uniform + t lightest`` with the smallest feasible ``t``."""
    ua, ub = model.uniform()
    la, lb = model.one_hot(model.lightest_choice())
    t = _bisect(lambda t: t >= 1.0 or model.expected_latency_ms((1 - t) * ua + t * la, (1 - t) * ub + t * lb)
                <= limit_ms)
    t = min(t, 1.0)
    return (1 - t) * ua + t * la, (1 - t) * ub + t * lb


def _project_simplices(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row of ``v`` onto the probability simplex."""
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    k = np.arange(1, v.shape[1] + 1)
    rho = np.count_nonzero(u - css / k > 0, axis=1)
    theta = css[np.arange(v.shape[0]), rho - 1] / rho
    return np.maximum(v - theta[:, None], 0.0)


def _project(point: np.ndarray, a: np.ndarray, r: float) -> np.ndarray:
    """Projection of ``point`` (rows) onto ``{rows in simplex, sum a*x <= r}``: ``proj(point - lam a)``."""
    def at(lam: float) -> np.ndarray:
        return _project_simplices(point - lam * a)

    scale = 1.0 / max(float(np.abs(a).max()), 1e-12)
    lam = _bisect(lambda lam: float(np.sum(a * at(lam * scale))) <= r)
    return at(lam * scale)


def projection_start(model: LatencyModel, limit_ms: float, *, rounds: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Alternating projections of uniform (alpha, beta) onto the feasible set, beta first."""
    ua, ub = model.uniform()
    alpha, beta = ua.copy(), ub.copy()
    r = limit_ms - model.fixed_ms
    shape = (-1, alpha.shape[-1])
    if model.expected_latency_ms(alpha, beta) <= limit_ms:
        return alpha, beta
    alpha, beta = model.one_hot(model.lightest_choice())  # feasible: each projection below keeps it so
    for _ in range(rounds):
        coef, const = model.beta_coefficients(alpha)
        new_beta = _project(ub, coef, r - const)
        a = model.alpha_coefficients(new_beta).reshape(shape)
        new_alpha = _project(ua.reshape(shape), a, r).reshape(alpha.shape)
        moved = max(np.abs(new_beta - beta).max(), np.abs(new_alpha - alpha).max())
        alpha, beta = new_alpha, new_beta
        if moved < 1e-9:
            break
    return alpha, beta


def _sparsify(model: LatencyModel, alpha: np.ndarray, beta: np.ndarray, limit_ms: float, *,
              steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Alternating full LP steps (beta first) with objective ``-(the searched distribution)``."""
    target_a, target_b = alpha, beta
    r = limit_ms - model.fixed_ms
    shape = (-1, alpha.shape[-1])
    for t in range(steps):
        if t % 2 == 0:
            coef, const = model.beta_coefficients(alpha)
            new = solve_mck_lp(-target_b, coef, r - const).x
            moved = not np.array_equal(new, beta)
            beta = new
        else:
            a = model.alpha_coefficients(beta)
            new = solve_mck_lp(-target_a.reshape(shape), a.reshape(shape), r).x.reshape(alpha.shape)
            moved = not np.array_equal(new, alpha) or moved
            alpha = new
            if not moved:
                break
    return alpha, beta


def _round_to_cheaper(probs: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Each row with more than one option in its support: the support option of smallest latency coefficient."""
    probs = probs.copy()
    for row in np.ndindex(probs.shape[:-1]):
        support = np.flatnonzero(probs[row] > 0.0)
        if len(support) > 1:
            best = min(support, key=lambda i: (coef[row][i], -probs[row][i], i))
            probs[row] = 0.0
            probs[row][best] = 1.0
    return probs


def _repair_once(model: LatencyModel, choice: ArchChoice, pref: np.ndarray) -> ArchChoice:
    """The single option change that lowers the latency at the least preference loss per ms saved."""
    best = None
    for s, stage in enumerate(choice.options):
        for j, i in enumerate(stage):
            for alt in range(model.alpha_shape[2]):
                saved = float(model.block_ms[s, j, i] - model.block_ms[s, j, alt])
                if saved > 0.0:
                    key = (float(pref[s, j, i] - pref[s, j, alt]) / saved, -saved)
                    if best is None or key < best[0]:
                        new = tuple(tuple(alt if (k, b) == (s, j) else o for b, o in enumerate(opts))
                                    for k, opts in enumerate(choice.options))
                        best = (key, ArchChoice(new))
    if best is None:  # every block at its cheapest: drop a block of the deepest stage
        s = max(range(len(choice.options)), key=lambda k: len(choice.options[k]))
        return ArchChoice(tuple(opts[:-1] if k == s else opts for k, opts in enumerate(choice.options)))
    return best[1]


def paper_finalize(model: LatencyModel, alpha: np.ndarray, beta: np.ndarray, limit_ms: float) -> ArchChoice:
    """Sparsify, argmax (fractional blocks to their cheaper support option), repair until the table sum fits."""
    sp_a, sp_b = _sparsify(model, alpha, beta, limit_ms)
    sp_a = _round_to_cheaper(sp_a, model.alpha_coefficients(sp_b))
    sp_b = _round_to_cheaper(sp_b, model.beta_coefficients(sp_a)[0])
    choice = ArchChoice(tuple(tuple(int(np.argmax(sp_a[s, j])) for j in range(model.depths[int(np.argmax(sp_b[s]))]))
                              for s in range(sp_a.shape[0])))
    while model.choice_latency_ms(choice) > limit_ms:
        choice = _repair_once(model, choice, alpha)
    return choice
