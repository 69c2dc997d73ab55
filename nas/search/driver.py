"""The search itself: BCFW from the balanced start for a number of steps, then the final steps; and re-running
the final steps of a finished search under another internal limit.

The step count asked is a floor: when the averaged gradients are still too noisy then (their noise-to-signal ratio,
:meth:`~nas.search.bcfw.BCFW.noise_to_signal`, above ``BCFWConfig.noise_target``), the final network would rest on
estimates the noise can reorder, so the search goes on until they are not, up to ``BCFWConfig.step_cap`` times the
steps asked; every extra step is an ordinary BCFW step, feasible like the others. :func:`step_budget` records how
many ran and why.

This module owns the loop that joins the optimizer (:mod:`nas.search.bcfw`), the gradients (any callable
``(alpha, beta) -> Gradients``) and the final steps (:mod:`nas.search.finalize`), and the
:class:`Gradients` it expects. It does no I/O and is deterministic given the seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.bcfw import BCFW
from nas.search.candidates import ChildJudge
from nas.search.finalize import Finalization, finalize, search_score
from nas.search.fleet import check_fleet
from nas.search.latency_limit import check_limit
from nas.search.resource_limits import ResourceLimit, check_limits
from nas.search.result import SearchResult, SearchSettings, TrajectoryRow, attempt_record
from shared.search_space import HARDCORENAS, SearchSpace

__all__ = ["GradientFn", "Gradients", "refinalize", "search", "step_budget", "step_note"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gradients:
    """Loss gradients w.r.t. alpha ``[S, D, O]`` and beta ``[S, nd]`` (float64) and the batch loss."""

    alpha: np.ndarray
    beta: np.ndarray
    loss: float


#: where the search's gradients come from (:class:`nas.search.gradients.SupernetGradients`, or a test's function)
GradientFn = Callable[[np.ndarray, np.ndarray], Gradients]


def search(
    model: LatencyModel,
    gradients: GradientFn,
    settings: SearchSettings,
    *,
    space: SearchSpace = HARDCORENAS,
    lut_fingerprint: str = "",
    progress: bool = True,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    others: Sequence[tuple[LatencyModel, float]] = (),
    judge: ChildJudge | None = None,
    resources: Sequence[ResourceLimit] = (),
) -> SearchResult:
    """Run BCFW for ``settings.bcfw_steps`` steps from the balanced start (more while its gradients are too noisy,
    see the module docstring), then return the best network under the limit by the search's final objective
    (``settings.bcfw.final_score``).

    ``start`` replaces the maximum-entropy start (a feasible (alpha, beta)); ``others`` are further targets'
    ``(model, limit_ms)`` that every iterate and the returned network also meet. ``judge`` rates a network's child
    on held-out data: the final steps then choose among ``settings.child_candidates`` networks by it.
    ``resources`` are parameter/MAC limits (:mod:`nas.search.resource_limits`): further linear rows that every
    iterate and the returned network meet, like ``others``, reported apart from the latency targets. Raises
    :class:`~nas.search.latency_limit.LatencyLimitError` at once when a limit is below its table's minimum, and
    :class:`~nas.search.fleet.FleetInfeasibleError` when no network meets all limits together.
    """
    from tqdm import tqdm

    limit = settings.latency_limit_ms
    check_limit(model, limit)
    others = tuple(others)
    resources = tuple(resources)
    rows = others + tuple(r.row for r in resources)  # every constraint besides the first target's
    if resources:
        check_limits([(model, limit), *others], resources)
    elif others:
        check_fleet([(model, limit), *others])
    alpha, beta = start if start is not None else (None, None)
    opt = BCFW(model, limit, settings.bcfw, seed=settings.seed, alpha=alpha, beta=beta, others=rows)
    init_latency = opt.expected_latency_ms()
    trajectory: list[TrajectoryRow] = []
    asked = settings.bcfw_steps
    cfg = settings.bcfw
    cap = math.ceil(asked * cfg.step_cap) if asked > 0 and asked >= cfg.extend_from else asked
    at_asked = None  # the noise-to-signal ratio once the steps asked have run
    bar = tqdm(total=asked, desc="search", unit="step", disable=not progress)
    try:
        while True:
            if opt.k >= asked:
                ratio = opt.noise_to_signal()
                at_asked = ratio if at_asked is None else at_asked
                if ratio <= cfg.noise_target or opt.k >= cap:
                    break
                if bar.total != cap:
                    bar.total = cap
                    bar.refresh()
            g = gradients(opt.alpha, opt.beta)
            info = opt.step(g.alpha, g.beta)
            trajectory.append(TrajectoryRow(info.step, info.block, info.gamma, info.expected_latency_ms, g.loss,
                                            info.multiplier, opt.expected_latencies_ms()[1:1 + len(others)]))
            bar.update()
            bar.set_postfix_str(f"E={info.expected_latency_ms:.4g}/{limit:.4g} ms loss={g.loss:.4f}")
    except KeyboardInterrupt:  # like the original: Ctrl-C jumps to the final steps
        log.warning("interrupted after %d steps: finishing with the current distribution", len(trajectory))
    finally:
        bar.close()
    budget = step_budget(asked, len(trajectory), cap, cfg.noise_target, at_asked,
                         opt.noise_to_signal() if trajectory else None)
    score = search_score(opt)
    fin = finalize(model, score, limit, rows, judge=judge, candidates=settings.child_candidates)
    return SearchResult(
        space=space,
        model=model,
        settings=settings,
        alpha=opt.alpha,
        beta=opt.beta,
        init_latency_ms=init_latency,
        trajectory=trajectory,
        attempts=[attempt_record(fin, space, 1 + len(others))],
        finalization=fin,
        score=score,
        lut_fingerprint=lut_fingerprint,
        others=others,
        judge=judge,
        resources=resources,
        step_budget=budget,
    )


def step_budget(asked: int, ran: int, cap: int, target: float, at_asked: float | None,
                at_end: float | None) -> dict:
    """How many steps ran and why, as ``result.json`` records it: the steps asked, unless the averaged gradients
    were still too noisy then (noise-to-signal above ``target``), when the search went on until they were not or
    the cap was reached."""
    if ran < asked or at_asked is None:
        reason = "interrupted" if ran < asked else "asked"
    elif ran == asked:
        reason = "asked"
    else:
        reason = "noise target met" if at_end is not None and at_end <= target else "cap reached"
    return {"asked": asked, "ran": ran, "cap": cap, "noise_target": target, "reason": reason,
            "noise_to_signal_at_asked": _finite(at_asked), "noise_to_signal_at_end": _finite(at_end)}


def step_note(budget: dict) -> str:
    """The one line ``nas search`` prints when the search ran more steps than asked."""
    at_asked = budget.get("noise_to_signal_at_asked")
    ratio = "no signal yet" if at_asked is None else f"noise-to-signal {at_asked:.3g}"
    return (f"note: the gradients were too noisy for {budget['asked']} steps ({ratio} > {budget['noise_target']:g}): "
            f"the search ran {budget['ran']} steps ({budget['reason']}, at most {budget['cap']}); result.json's "
            f"step_budget says more")


def _finite(x: float | None) -> float | None:
    """A ratio as JSON holds it (None for none or infinite)."""
    return None if x is None or not math.isfinite(x) else float(x)


def refinalize(result: SearchResult, internal_limit_ms: float, others_limits_ms: Sequence[float] = ()) -> Finalization:
    """Re-run the final steps of ``result`` under ``internal_limit_ms`` (and, for the further targets, under
    ``others_limits_ms``, default their current internal limits); the new network becomes the result's."""
    n = len(result.others)  # the finalization's limits end with the resource limits', which stay as they are
    limits = list(others_limits_ms)[:n] or list(result.finalization.limits_ms[1:1 + n])
    others = [(m, limit) for (m, _), limit in zip(result.others, limits, strict=True)]
    others += [r.row for r in result.resources]
    fin = finalize(result.model, result.score, internal_limit_ms, others, judge=result.judge,
                   candidates=result.settings.child_candidates)
    result.finalization = fin
    result.attempts.append(attempt_record(fin, result.space, 1 + n))
    return fin
