"""The search's balanced start: the most even distribution over networks whose expected latency meets the limit.

"Most even" is taken as maximum entropy of the distribution over *networks*. Under an expected-latency constraint
that distribution is the Gibbs distribution ``P(network) ~ exp(-lam * latency(network))`` with one scalar
multiplier ``lam >= 0``. Because the latency is a sum over the active blocks, it factorises into exactly the form
the search works with: every block position ``alpha[s, j] ~ exp(-lam * t[s, j])`` and every stage
``beta[s, d] ~ prod_{j < d} Z[s, j]`` with ``Z[s, j] = sum_i exp(-lam * t[s, j, i])``. Its expected latency falls
monotonically in ``lam`` (the derivative is minus the latency's variance), so one bisection finds ``lam`` to
machine precision: no QP solver, no alternation between alpha and beta. Every option keeps a positive probability
(the uniform point when the limit allows it). The same family with a negative ``lam`` favours heavy networks,
which is how a random search reaches the top of a latency band (:func:`gibbs_for_latency`).

Several latency targets at once give one multiplier per target (``exp(-sum_k lam_k t_k)``): the factorisation is
the same, and the scalar bisection becomes a small convex dual problem, ``min_{lam >= 0} log Z(lam) + lam . T``
(its gradient is ``T - E_lam[t]``), solved by L-BFGS-B (:func:`fleet_start`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.latency.expected_latency import LatencyModel

__all__ = ["fleet_start", "gibbs_distribution", "gibbs_for_latency", "max_entropy_start"]


def gibbs_distribution(model: LatencyModel, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, beta)`` of ``P(network) ~ exp(-lam * latency)`` (``lam`` in 1/ms, any sign; 0 is uniform)."""
    return _gibbs(-lam * model.block_ms, model.depths)[:2]


def _gibbs(energy: np.ndarray, depths: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, float]:
    """``(alpha, beta, log Z)`` of ``P(network) ~ exp(sum of energy[s, j, i] over its active blocks)``."""
    shift = energy.max(axis=-1, keepdims=True)
    weights = np.exp(energy - shift)
    z = weights.sum(axis=-1, keepdims=True)
    alpha = weights / z
    log_z = (np.log(z) + shift)[..., 0]  # [S, D]
    # a stage of depth d runs blocks 0..d-1: log of its weight is the sum of their log partition functions
    log_w = np.stack([log_z[:, :d].sum(axis=1) for d in depths], axis=1)
    top = log_w.max(axis=1, keepdims=True)
    beta = np.exp(log_w - top)
    total = beta.sum(axis=1, keepdims=True)
    beta /= total
    return alpha, beta, float(np.sum(np.log(total) + top))


def _multiplier_for(model: LatencyModel, target_ms: float, *, negative: bool) -> float | None:
    """The smallest ``lam`` (``>= 0`` unless ``negative``) whose Gibbs expected latency is ``<= target_ms``.

    None when only the lightest networks meet the target (no finite ``lam`` does).
    """

    def latency(lam: float) -> float:
        return model.expected_latency_ms(*gibbs_distribution(model, lam))

    scale = 1.0 / (float(np.ptp(model.block_ms)) or 1.0)  # 1/ms: where the distribution starts to change
    far = 1e6 * scale  # exp(-far * spread) underflows long before: the distribution no longer moves
    if latency(0.0) <= target_ms:
        if not negative:
            return 0.0
        lo, hi = -scale, 0.0
        while latency(lo) <= target_ms:
            if lo < -far:
                return lo  # the target is at or above the heaviest networks
            lo *= 2.0
    else:
        lo, hi = 0.0, scale
        while latency(hi) > target_ms:
            if hi > far:
                return None
            hi *= 2.0
    for _ in range(200):  # bisection down to adjacent floats; hi always meets the target
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if latency(mid) <= target_ms:
            hi = mid
        else:
            lo = mid
    return hi


def max_entropy_start(model: LatencyModel, limit_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """The maximum-entropy ``(alpha, beta)`` with expected latency ``<= limit_ms`` (uniform when that fits).

    The caller checks that the limit is at least the table's minimum; at (or a rounding error above) the minimum
    the lightest network itself is returned.
    """
    lam = _multiplier_for(model, limit_ms, negative=False)
    if lam is None:
        return model.one_hot(model.lightest_choice())
    return gibbs_distribution(model, lam)


def gibbs_for_latency(model: LatencyModel, target_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """The Gibbs distribution (``lam`` of either sign) whose expected latency is ``target_ms`` (at most)."""
    lam = _multiplier_for(model, target_ms, negative=True)
    if lam is None:
        return model.one_hot(model.lightest_choice())
    return gibbs_distribution(model, lam)


def fleet_start(constraints: Sequence[tuple[LatencyModel, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The maximum-entropy ``(alpha, beta)`` whose expected latency meets every ``(model, limit_ms)``.

    One pair is :func:`max_entropy_start`. With several, the dual is minimised (each target's multiplier scaled
    by its table's spread) a hair inside the limits; if rounding or a limit reachable only at the boundary still
    leaves a target over, the point moves along the line to a network meeting every limit (the exact
    discretisation's, with no preference) just far enough, so the start always meets every limit. Raises
    :class:`~nas.search.discretize.DiscretizationError` when no network meets them all.
    """
    from scipy.optimize import minimize

    if len(constraints) == 1:
        return max_entropy_start(*constraints[0])
    models = [m for m, _ in constraints]
    depths = models[0].depths
    tables = np.stack([m.block_ms for m in models])  # [K, S, D, O]
    scale = np.array([1.0 / (float(np.ptp(t)) or 1.0) for t in tables])
    room = np.array([limit - m.fixed_ms for m, limit in constraints])
    span = np.array([m.max_latency_ms() - m.min_latency_ms() for m in models])
    target = room - 1e-9 * np.maximum(span, 1e-12)

    def point(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        return _gibbs(-np.tensordot(u * scale, tables, axes=1), depths)

    def dual(u: np.ndarray) -> tuple[float, np.ndarray]:
        alpha, beta, log_z = point(u)
        used = np.array([m.expected_latency_ms(alpha, beta) - m.fixed_ms for m in models])
        return log_z + float((u * scale) @ target), scale * (target - used)

    res = minimize(dual, np.zeros(len(models)), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * len(models), options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 500})
    alpha, beta, _ = point(res.x)

    def fits(a: np.ndarray, b: np.ndarray) -> bool:
        return all(m.expected_latency_ms(a, b) <= limit for m, limit in constraints)

    if fits(alpha, beta):
        return alpha, beta
    from nas.search.discretize import NetworkScore, best_network

    shape = models[0]
    witness = best_network(NetworkScore(np.zeros(shape.alpha_shape), np.zeros(shape.beta_shape)), constraints)
    feasible = shape.one_hot(witness)
    lo, hi = 0.0, 1.0  # hi always meets every limit (the expected latency is bilinear, so not monotone in t)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if fits(alpha + mid * (feasible[0] - alpha), beta + mid * (feasible[1] - beta)):
            hi = mid
        else:
            lo = mid
    return alpha + hi * (feasible[0] - alpha), beta + hi * (feasible[1] - beta)
