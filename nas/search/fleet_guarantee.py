"""The measured guarantee for a fleet: every target's server gives its verdict on the found network; a target
whose upper bound is over its limit tightens its own internal limit (the others keep theirs) and the final steps
re-run under all internal limits; a network is accepted only when every target accepts it.

One target keeps :func:`nas.search.guarantee.measured_guarantee` (which also moves its internal limit back up to
use the budget well). With several, a tighter limit for one target can push the network's latency up on another,
so this policy only tightens: each rejecting target's internal limit becomes ``E_k * T_k / U_k`` (its table
latency scaled by how far its bound ran over), which is below ``E_k``, so the next network differs; from its
second rejection on, where the bound fell more slowly than the table between its last two attempts (a fixed cost
the table misses, as a torch-cpu table at 32 px showed), the secant through them sets it where it reaches ``T_k``.
A target given as a table file has no server: its table guarantee (``E_k <= T_k``, always met) stands for its verdict.
Each target's verdicts spend the search's confidence as :mod:`nas.search.guarantee` does (the k-th attempt's at
``1 - (1 - c) / 2**k``), so the stated confidence holds for each target's limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from nas.search.discretize import DiscretizationError
from nas.search.driver import refinalize
from nas.search.finalize import Finalization
from nas.search.guarantee import (
    MeasureFn,
    bound_at,
    next_internal_limit,
    record_guarantee,
    return_attempt,
    verdict_confidence,
    verdict_of,
)
from nas.search.guarantee_messages import unmet_reason
from nas.search.latency_limit import LatencyLimitError
from nas.search.result import SearchResult

__all__ = ["fleet_guarantee"]

log = logging.getLogger(__name__)


def _worst_ratio(attempt: dict[str, Any], limits: Sequence[float]) -> float:
    """How far the attempt's worst target ran over its limit (bound / limit; table latency for a file)."""
    return max(t.get("upper_latency_ms", t["expected_latency_ms"]) / limit
               for t, limit in zip(attempt["targets"], limits, strict=True))


def fleet_guarantee(
    result: SearchResult,
    measures: Sequence[MeasureFn | None],
    *,
    max_retries: int = 3,
    on_attempt: Callable[[], Any] | None = None,
) -> bool:
    """Verdicts from every target (``measures[k]`` answers for target ``k``; ``None`` for a table file) on the
    found network, re-running the final steps under tighter internal limits of the rejecting targets (at most
    ``max_retries`` times); met means every target's bound is at or under its limit for the returned network.

    The network returned is the accepted one of highest score (the least tightened), or without one the one whose
    worst target ran over least. ``result.attempts`` holds each attempt's verdicts per target;
    ``result.extra["guarantee"]`` says whether the returned network met every limit.
    """
    limits = [result.settings.latency_limit_ms, *(limit for _, limit in result.others)]
    if len(measures) != len(limits):
        raise ValueError(f"{len(measures)} measuring functions for {len(limits)} targets")
    first = len(result.attempts) - 1
    finals: dict[int, Finalization] = {first: result.finalization}
    retries = 0
    reason = ""
    while True:
        fin = result.finalization
        attempt = result.attempts[-1]
        for k, (measure, entry) in enumerate(zip(measures, attempt["targets"], strict=True)):
            if measure is None:
                entry.update(accepted=entry["expected_latency_ms"] <= limits[k], verdict=None)
                continue
            figures = verdict_of(measure(result.arch, verdict_confidence(result.settings.confidence, retries + 1)))
            entry.update({**figures, "accepted": figures["upper_latency_ms"] <= limits[k]})
        attempt["accepted"] = all(entry["accepted"] for entry in attempt["targets"])
        log.info("attempt %d: %s: %s", len(result.attempts), result.arch, "; ".join(
            f"target {k + 1} table {e['expected_latency_ms']:.4f} bound {e.get('upper_latency_ms', float('nan')):.4f} "
            f"<= {limits[k]:.4f} ms? {'yes' if e['accepted'] else 'NO'}" for k, e in enumerate(attempt["targets"])))
        tried = [(i, a) for i, a in enumerate(result.attempts) if i >= first and "accepted" in a]
        accepted = [i for i, a in tried if a["accepted"]]
        if accepted:
            returned = max(accepted, key=lambda i: (result.attempts[i]["score"], -i))
        else:
            returned = min((i for i, _ in tried), key=lambda i: _worst_ratio(result.attempts[i], limits))
        return_attempt(result, finals, returned, result.attempts[returned]["targets"][0])
        if on_attempt is not None:
            on_attempt()
        if attempt["accepted"]:
            break
        if retries >= max_retries:
            reason = unmet_reason(result, "retries", first=first, retries=retries)
            break
        nxt = list(fin.limits_ms)
        models = [result.model, *(m for m, _ in result.others)]
        following = verdict_confidence(result.settings.confidence, retries + 2)  # the next verdicts' confidence
        at_floor = []
        for k, entry in enumerate(attempt["targets"]):
            if not entry["accepted"]:
                floor = models[k].min_latency_ms()
                at_floor.append(fin.limits_ms[k] <= floor)
                seen = [(a["targets"][k]["expected_latency_ms"], bound_at(a["targets"][k], following))
                        for _, a in tried if "upper_latency_ms" in a["targets"][k]]
                nxt[k] = max(next_internal_limit(seen, limits[k]), floor)
        if all(at_floor):
            reason = unmet_reason(result, "lightest", first=first)
            break
        try:
            refinalize(result, nxt[0], nxt[1:])
        except (LatencyLimitError, DiscretizationError) as exc:
            reason = unmet_reason(result, "cannot_tighten", first=first, detail=exc)
            break
        retries += 1
        finals[len(result.attempts) - 1] = result.finalization
    if reason:
        log.warning("measured guarantee: %s", reason)
    met = bool(result.attempts[returned]["accepted"])
    served = {e.get("confidence") for e in result.attempts[returned]["targets"] if e.get("verdict")}
    record_guarantee(result, met, "every target: upper bound of a later measurement <= its latency limit, at "
                     f"{100 * result.settings.confidence:g} % confidence per target for the search (the k-th verdict's "
                     "bound at 1 - (1 - confidence) / 2^k; a table file: table latency <= its limit)",
                     result.settings.confidence if served else None, retries, max_retries, returned, reason,
                     served.pop() if len(served) == 1 else None)
    return met
