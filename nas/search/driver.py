"""The search itself: BCFW from the balanced start for a number of steps, then the final steps; and re-running
the final steps of a finished search under another internal limit.

This module owns the loop that joins the optimizer (:mod:`nas.search.bcfw`), the gradients (any callable
``(alpha, beta) -> Gradients``) and the final steps (:mod:`nas.search.finalize`), and the
:class:`Gradients` it expects. It does no I/O and is deterministic given the seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.bcfw import BCFW, check_limit
from nas.search.candidates import ChildJudge
from nas.search.finalize import Finalization, finalize, search_score
from nas.search.fleet import check_fleet
from nas.search.resource_limits import ResourceLimit, check_limits
from nas.search.result import SearchResult, SearchSettings, TrajectoryRow, attempt_record
from shared.search_space import HARDCORENAS, SearchSpace

__all__ = ["GradientFn", "Gradients", "refinalize", "search"]

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
    """Run BCFW for ``settings.bcfw_steps`` steps from the balanced start, then return the best network under the
    limit by the search's final objective (``settings.bcfw.final_score``).

    ``start`` replaces the maximum-entropy start (a feasible (alpha, beta)); ``others`` are further targets'
    ``(model, limit_ms)`` that every iterate and the returned network also meet. ``judge`` rates a network's child
    on held-out data: the final steps then choose among ``settings.child_candidates`` networks by it.
    ``resources`` are parameter/MAC limits (:mod:`nas.search.resource_limits`): further linear rows that every
    iterate and the returned network meet, like ``others``, reported apart from the latency targets. Raises
    :class:`~nas.search.bcfw.LatencyLimitError` at once when a limit is below its table's minimum, and
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
    bar = tqdm(range(settings.bcfw_steps), desc="search", unit="step", disable=not progress)
    try:
        for _ in bar:
            g = gradients(opt.alpha, opt.beta)
            info = opt.step(g.alpha, g.beta)
            trajectory.append(TrajectoryRow(info.step, info.block, info.gamma, info.expected_latency_ms, g.loss,
                                            info.multiplier, opt.expected_latencies_ms()[1:1 + len(others)]))
            bar.set_postfix_str(f"E={info.expected_latency_ms:.4g}/{limit:.4g} ms loss={g.loss:.4f}")
    except KeyboardInterrupt:  # like the original: Ctrl-C jumps to the final steps
        log.warning("interrupted after %d steps: finishing with the current distribution", len(trajectory))
    finally:
        bar.close()
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
    )


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
