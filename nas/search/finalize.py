"""The final steps of a search: from BCFW's distribution (alpha, beta) to one network under the limit.

This module owns sparsify (alternating LPs towards the searched distribution), a discretisation that only ever
lowers the latency, checked and, if rounding demands, repaired, and a fill that spends the latency left under the
limit on the distribution's preferred upgrades. :func:`finalize` chains them as a pure function of
(alpha, beta, limit), so the measured guarantee can re-run it under a tighter internal limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.search.bcfw import check_limit, shrink_towards_lightest
from nas.search.expected_latency import LatencyModel
from nas.search.lmo import InfeasibleError, solve_mck_lp
from shared.search_space import ArchChoice

__all__ = ["Finalization", "discretize", "fill_slack", "finalize", "sparsify"]


def sparsify(
    model: LatencyModel,
    alpha: np.ndarray,
    beta: np.ndarray,
    limit_ms: float,
    *,
    target_alpha: np.ndarray | None = None,
    target_beta: np.ndarray | None = None,
    steps: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Alternating full LP steps (beta first) with objective ``-target`` ("stay close to the distribution").

    ``(alpha, beta)`` must be feasible; the targets default to them. Ends at a vertex: at most one fractional
    alpha block and one fractional beta stage. Stops early once neither block moves.
    """
    alpha = np.array(alpha, dtype=np.float64)
    beta = np.array(beta, dtype=np.float64)
    target_alpha = alpha.copy() if target_alpha is None else np.asarray(target_alpha, dtype=np.float64)
    target_beta = beta.copy() if target_beta is None else np.asarray(target_beta, dtype=np.float64)
    r = limit_ms - model.fixed_ms
    shape = (-1, alpha.shape[-1])
    unchanged = 0
    for t in range(steps):
        if t % 2 == 0:
            coef, const = model.beta_coefficients(alpha)
            new = solve_mck_lp(-target_beta, coef, r - const).x
            moved = not np.array_equal(new, beta)
            beta = new
        else:
            a = model.alpha_coefficients(beta)
            new = solve_mck_lp(-target_alpha.reshape(shape), a.reshape(shape), r).x.reshape(alpha.shape)
            moved = not np.array_equal(new, alpha)
            alpha = new
        unchanged = 0 if moved else unchanged + 1
        if unchanged >= 2 and t >= 1:
            break
    return alpha, beta


def _choice_of(model: LatencyModel, alpha: np.ndarray, beta: np.ndarray) -> ArchChoice:
    stages = []
    for s in range(alpha.shape[0]):
        depth = model.depths[int(np.argmax(beta[s]))]
        stages.append(tuple(int(np.argmax(alpha[s, j])) for j in range(depth)))
    return ArchChoice(tuple(stages))


def discretize(
    model: LatencyModel,
    alpha: np.ndarray,
    beta: np.ndarray,
    limit_ms: float,
    *,
    preference_alpha: np.ndarray | None = None,
    preference_beta: np.ndarray | None = None,
) -> tuple[ArchChoice, int]:
    """A network with table latency ``<= limit_ms`` from a (near-)vertex; returns ``(choice, repairs)``.

    Each fractional alpha block, then each fractional beta stage, is rounded to the support member with the
    smallest latency coefficient (the latency is linear in one block, so it cannot rise). The table latency of
    the result is then checked exactly; if rounding noise still puts it above the limit, single changes that
    lower the latency (cheapest loss of preference per ms saved first) are applied until it fits -- always
    possible since the limit is at least the minimum latency (``repairs`` counts them).
    """
    check_limit(model, limit_ms)
    alpha = np.array(alpha, dtype=np.float64)
    beta = np.array(beta, dtype=np.float64)
    pref_a = alpha.copy() if preference_alpha is None else np.asarray(preference_alpha, dtype=np.float64)
    pref_b = beta.copy() if preference_beta is None else np.asarray(preference_beta, dtype=np.float64)
    coef_a = model.alpha_coefficients(beta)
    for s, j in np.ndindex(alpha.shape[:2]):
        support = np.flatnonzero(alpha[s, j] > 0.0)
        if len(support) > 1:
            best = min(support, key=lambda i: (coef_a[s, j, i], -alpha[s, j, i], i))
            alpha[s, j] = 0.0
            alpha[s, j, best] = 1.0
        elif len(support) == 0:  # defensive: an all-zero row keeps the preferred option
            alpha[s, j, int(np.argmax(pref_a[s, j]))] = 1.0
    coef_b, _ = model.beta_coefficients(alpha)
    for s in range(beta.shape[0]):
        support = np.flatnonzero(beta[s] > 0.0)
        if len(support) > 1:
            best = min(support, key=lambda d: (coef_b[s, d], -beta[s, d], d))
            beta[s] = 0.0
            beta[s, best] = 1.0
        elif len(support) == 0:
            beta[s, int(np.argmax(pref_b[s]))] = 1.0
    choice = _choice_of(model, alpha, beta)
    repairs = 0
    while model.choice_latency_ms(choice) > limit_ms:
        choice = _repair_once(model, choice, pref_a, pref_b)
        repairs += 1
    return choice, repairs


def _repair_once(model: LatencyModel, choice: ArchChoice, pref_a: np.ndarray, pref_b: np.ndarray) -> ArchChoice:
    """The single option or depth change that lowers the table latency at the least preference loss per ms."""
    current = model.choice_latency_ms(choice)
    best: tuple[float, float, ArchChoice] | None = None
    options = [list(stage) for stage in choice.options]
    for s, stage in enumerate(options):
        for j, i in enumerate(stage):
            for alt in range(model.alpha_shape[2]):
                saved = float(model.block_ms[s, j, i] - model.block_ms[s, j, alt])
                if saved > 0.0:
                    cand = [list(x) for x in options]
                    cand[s][j] = alt
                    loss = float(pref_a[s, j, i] - pref_a[s, j, alt])
                    key = (loss / saved, -saved)
                    if best is None or key < best[:2]:
                        best = (*key, ArchChoice(tuple(tuple(x) for x in cand)))
        d_now = model.depths.index(len(stage))
        for d_idx, depth in enumerate(model.depths):
            if depth == len(stage):
                continue
            cand = [list(x) for x in options]
            if depth < len(stage):
                cand[s] = stage[:depth]
            else:
                cand[s] = stage + [int(np.argmin(model.block_ms[s, j])) for j in range(len(stage), depth)]
            cand_choice = ArchChoice(tuple(tuple(x) for x in cand))
            saved = current - model.choice_latency_ms(cand_choice)
            if saved > 0.0:
                loss = float(pref_b[s, d_now] - pref_b[s, d_idx])
                key = (loss / saved, -saved)
                if best is None or key < best[:2]:
                    best = (*key, cand_choice)
    if best is None:  # cannot happen while current > limit >= minimum
        raise InfeasibleError("no latency-lowering change left", current, current)
    return best[2]


def _with(choice: ArchChoice, s: int, stage: list[int]) -> ArchChoice:
    return ArchChoice(tuple(tuple(stage) if i == s else opts for i, opts in enumerate(choice.options)))


def fill_slack(
    model: LatencyModel,
    choice: ArchChoice,
    limit_ms: float,
    preference_alpha: np.ndarray,
    preference_beta: np.ndarray,
) -> tuple[ArchChoice, int]:
    """Spend the latency ``choice`` leaves under ``limit_ms``: repeatedly apply the single upgrade (one block's
    option, or one stage one depth deeper) that still fits and that the searched distribution prefers most.

    A discretised network often lands well below the limit: the search's distribution can sit below it (the
    loss was indifferent there) and rounding to the preferred options loses more. When the loss cannot tell the
    options apart, capacity is the better bet, so the slack is spent -- guided by the distribution: an upgrade's
    score is the probability of the new option (depth) minus that of the current one; ties go to the upgrade that
    uses more latency. Every upgrade raises the table latency and keeps it ``<= limit_ms``, so the loop ends.
    Returns ``(choice, upgrades)``.
    """
    pref_a = np.asarray(preference_alpha, dtype=np.float64)
    pref_b = np.asarray(preference_beta, dtype=np.float64)
    current = model.choice_latency_ms(choice)
    if current > limit_ms:
        raise ValueError(f"fill_slack: the network is already above the limit ({current} > {limit_ms} ms)")
    upgrades = 0
    while True:
        best: tuple[float, float, ArchChoice] | None = None

        def consider(score: float, cand: ArchChoice, gain: float) -> None:
            nonlocal best
            if gain > 0.0 and (best is None or (score, gain) > best[:2]):
                best = (score, gain, cand)

        for s, stage in enumerate(choice.options):
            for j, i in enumerate(stage):
                for alt in range(model.alpha_shape[2]):
                    gain = float(model.block_ms[s, j, alt] - model.block_ms[s, j, i])
                    if 0.0 < gain and current + gain <= limit_ms * (1 + 1e-9):  # cheap pre-check, then exact:
                        cand = _with(choice, s, [*stage[:j], alt, *stage[j + 1:]])
                        latency = model.choice_latency_ms(cand)  # the sum finalize checks, in its order
                        if latency <= limit_ms:
                            consider(float(pref_a[s, j, alt] - pref_a[s, j, i]), cand, latency - current)
            d_now = model.depths.index(len(stage))
            if d_now + 1 < len(model.depths):
                deeper = model.depths[d_now + 1]
                new_blocks = range(len(stage), deeper)
                preferred = [int(np.argmax(pref_a[s, j])) for j in new_blocks]
                cheapest = [int(np.argmin(model.block_ms[s, j])) for j in new_blocks]
                for added in (preferred, cheapest):
                    cand = _with(choice, s, [*stage, *added])
                    latency = model.choice_latency_ms(cand)
                    if latency <= limit_ms:
                        consider(float(pref_b[s, d_now + 1] - pref_b[s, d_now]), cand, latency - current)
                        break
        if best is None:
            return choice, upgrades
        choice = best[2]
        current = model.choice_latency_ms(choice)
        upgrades += 1


@dataclass(frozen=True)
class Finalization:
    """The outcome of the final steps under one (internal) limit."""

    limit_ms: float
    choice: ArchChoice
    latency_ms: float  # table latency of ``choice`` (<= limit_ms, checked)
    sparse_alpha: np.ndarray
    sparse_beta: np.ndarray
    sparse_latency_ms: float  # expected latency after sparsify (a near-vertex)
    shrink: float  # how far (alpha, beta) had to move towards the lightest network first (0 = not at all)
    repairs: int
    discrete_latency_ms: float = 0.0  # table latency right after discretisation (before the slack was filled)
    upgrades: int = 0  # upgrades applied by fill_slack


def finalize(
    model: LatencyModel,
    alpha: np.ndarray,
    beta: np.ndarray,
    limit_ms: float,
    *,
    sparsify_steps: int = 100,
    fill: bool = True,
) -> Finalization:
    """Sparsify, discretise and (``fill``) spend the slack of (alpha, beta) under ``limit_ms``; re-runnable with
    a tighter limit.

    If ``(alpha, beta)`` exceeds the limit (a tightened re-run), it is first moved towards the lightest network
    just enough to be feasible; the sparsify objective still targets the searched ``(alpha, beta)``.
    """
    start_a, start_b, t = shrink_towards_lightest(model, alpha, beta, limit_ms)
    sp_a, sp_b = sparsify(model, start_a, start_b, limit_ms, target_alpha=alpha, target_beta=beta, steps=sparsify_steps)
    choice, repairs = discretize(model, sp_a, sp_b, limit_ms, preference_alpha=alpha, preference_beta=beta)
    discrete = model.choice_latency_ms(choice)
    upgrades = 0
    if fill:
        choice, upgrades = fill_slack(model, choice, limit_ms, alpha, beta)
    latency = model.choice_latency_ms(choice)
    if not latency <= limit_ms:  # the guarantee; discretize already enforces it
        raise AssertionError(f"discrete latency {latency} ms above the limit {limit_ms} ms")
    return Finalization(
        limit_ms=limit_ms,
        choice=choice,
        latency_ms=latency,
        sparse_alpha=sp_a,
        sparse_beta=sp_b,
        sparse_latency_ms=model.expected_latency_ms(sp_a, sp_b),
        shrink=t,
        repairs=repairs,
        discrete_latency_ms=discrete,
        upgrades=upgrades,
    )
