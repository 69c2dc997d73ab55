"""The measured guarantee: the device's verdict on the found network, and the final steps re-run under a tighter
internal limit while the verdict's upper bound is above the limit.

The device's speed moves, so one measurement under the limit proves little about the next. The server answers a
network measurement with a verdict: a central figure (the latency at the device's typical speed) and an upper
bound that a later measurement stays under with the requested confidence (from the network's ratio to a drift
reference and the reference's history on the device). A network is accepted only when that bound is at or under
the limit T.

A search asks for several verdicts and returns an accepted one, and each verdict near the limit is another chance
for a network over T to pass on a lucky measurement. The stated confidence ``c`` therefore holds for the search,
not for one verdict: the k-th verdict (k = 1, 2, ...) is asked at ``1 - (1 - c) / 2**k`` (:func:`verdict_confidence`),
so the chances of a later measurement over a passing verdict's bound add up to less than ``1 - c`` however many
verdicts the search takes (a union bound that spends most on the first verdicts, which are the likeliest to pass).

This module owns the policy (how the next internal limit is chosen, when to stop, which attempt is returned) and
the bookkeeping of each attempt's verdict in ``result.attempts`` and ``result.extra``. The measurement comes in as
a callable answering like ``POST /v1/latency/network`` (:meth:`nas.latency.client.LatencyClient.measure_network`), so
the policy runs the same against a server or a test's simulated device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scipy.stats import norm

from nas.search.discretize import DiscretizationError
from nas.search.driver import refinalize
from nas.search.finalize import Finalization
from nas.search.guarantee_messages import unmet_reason
from nas.search.latency_limit import LatencyLimitError
from nas.search.result import SearchResult

if TYPE_CHECKING:
    from shared.api_schemas import NetworkResponse

__all__ = ["ANSWER_FIELDS", "MeasureFn", "bound_at", "measured_guarantee", "next_internal_limit", "record_guarantee",
           "return_attempt", "verdict_confidence", "verdict_of"]

log = logging.getLogger(__name__)

#: ``measure(arch, confidence)``: one verdict on the network ``arch`` from the device, its bound at ``confidence``
MeasureFn = Callable[[str, float], "NetworkResponse"]

#: the highest confidence a verdict is asked at (the server's limit); the spending stops halving there
MAX_VERDICT_CONFIDENCE = 0.9999

#: the lowest share of the scaled bound's internal limit (``E * aim / U``) the secant may set in one re-run
SECANT_STEP_FLOOR = 0.5

#: fields of a ``POST /v1/latency/network`` answer kept with each attempt (and the returned one's in result.json)
ANSWER_FIELDS = ("predicted_ms", "predicted_table_ms", "predicted_naive_ms", "normalized_ms", "drift_ratio")
#: the returned attempt's figures that become result.json's headline figures
HEADLINE_FIELDS = ("measured_latency_ms", "upper_latency_ms", "confidence", "raw_median_ms", "raw_spread_ms",
                   "verdict", "measured", *ANSWER_FIELDS, "measurement_fingerprint")


def verdict_confidence(confidence: float, k: int) -> float:
    """The confidence of a search's ``k``-th verdict (1-based) when the search as a whole states ``confidence``:
    ``1 - (1 - confidence) / 2**k``, whose error rates sum to less than ``1 - confidence``."""
    if k < 1:
        raise ValueError(f"k: verdicts count from 1, got {k}")
    return min(1.0 - (1.0 - confidence) / 2.0**k, MAX_VERDICT_CONFIDENCE)


def bound_at(figures: dict[str, Any], confidence: float) -> float:
    """An attempt's bound moved to another confidence: its log-margin over the central figure scaled by the ratio
    of the normal quantiles (how the next verdict's bound will sit, since each verdict is asked at a higher
    confidence). Figures without a stated confidence keep their bound."""
    central, upper, stated = figures["measured_latency_ms"], figures["upper_latency_ms"], figures.get("confidence")
    if not stated or confidence == stated or not 0 < central < upper:
        return upper
    return central * (upper / central) ** (float(norm.ppf(confidence)) / float(norm.ppf(stated)))


def verdict_of(answer: NetworkResponse) -> dict[str, Any]:
    """An answer's figures as an attempt records them: ``measured_latency_ms`` is the verdict's central figure,
    ``upper_latency_ms`` its upper bound, ``raw_median_ms`` the median of the raw rounds (and their spread).

    A server measuring without a drift reference gives no verdict: then the raw median stands for the central
    figure and the median plus the spread of its rounds for the bound (no stated confidence)."""
    figures: dict[str, Any] = {
        "raw_median_ms": answer.measured.median_ms,
        "raw_spread_ms": answer.spread_ms,
        "measured": answer.measured.model_dump(),
        **{key: getattr(answer, key) for key in ANSWER_FIELDS},
        "measurement_fingerprint": answer.fingerprint,
    }
    if answer.verdict is not None:
        figures.update(measured_latency_ms=answer.verdict.central_ms, upper_latency_ms=answer.verdict.upper_ms,
                       confidence=answer.verdict.confidence, verdict=answer.verdict.model_dump())
    else:
        figures.update(measured_latency_ms=answer.measured.median_ms,
                       upper_latency_ms=answer.measured.median_ms + answer.spread_ms, confidence=None, verdict=None)
    return figures


def next_internal_limit(seen: list[tuple[float, float]], aim: float) -> float:
    """The next internal limit from the rejected attempts' (table latency E, bound U), oldest first, the last one over
    the limit, for a bound of ``aim`` (the limit, or a little under it): ``E * aim / U`` (the bound scaled onto the
    aim), or lower where the last two attempts show the bound falling more slowly than the table (a fixed cost the
    table misses): where their secant reaches ``aim``, but never below :data:`SECANT_STEP_FLOOR` of the scaled bound.

    The floor is there because each bound carries the device's noise: where two bounds fell by less than that noise
    the secant is nearly flat and reaches the aim far below zero, which would send the next re-run to the table's
    minimum. One re-run then goes at most that far below the scaled bound; a real fixed cost still gets there, one
    re-run later."""
    table, upper = seen[-1]
    scaled = table * aim / upper
    nxt = scaled
    if len(seen) >= 2:
        (e0, u0), (e1, u1) = seen[-2], seen[-1]
        if e1 != e0 and (u1 - u0) / (e1 - e0) > 0:
            nxt = min(nxt, max(e1 + (aim - u1) * (e1 - e0) / (u1 - u0), SECANT_STEP_FLOOR * scaled))
    return nxt


def measured_guarantee(
    result: SearchResult,
    measure: MeasureFn,
    *,
    max_retries: int = 3,
    on_attempt: Callable[[], Any] | None = None,
    good_use: float = 0.985,
) -> bool:
    """Ask the device for a verdict on the found network and re-run the final steps under a tighter internal
    limit while its upper bound ``U`` is above the limit ``T`` (at most ``max_retries`` re-runs); met means
    ``U <= T`` for the returned network.

    A network whose table latency is ``E`` and whose bound is ``U`` (moved to the next verdict's confidence,
    :func:`bound_at`) shows the bound running ``U / E`` times the table; the next internal limit is ``E * A / U``,
    which is below ``E`` so the next network differs, with ``A`` the aim: the middle of the acceptance window
    ``[good_use T, T]`` (on the last re-run, a window's width under it). From the second rejection on, where the
    bound fell more slowly than the table (a fixed cost the table misses), it is where the secant through the last
    two (E, U) reaches A (:func:`next_internal_limit`). One verdict can still come out high (a slow stretch of the
    device), so once a network is accepted but its bound uses less than ``good_use`` of T after a tighter re-run,
    the internal limit moves back up between the highest internal limit accepted and the lowest rejected (the
    observed ratio, or their midpoint) while re-runs are left. The network returned is the accepted one with the
    highest bound (the most of the budget used); without one, the one with the lowest bound. The internal limit
    never exceeds T (so every attempt keeps the table guarantee) nor goes below the table's minimum (the lightest
    network is the last one tried). Every attempt (internal limit, arch, table latency, central figure, bound, raw
    median and spread, the verdict with its raw rounds, ``accepted``, ``returned``) is in ``result.attempts``;
    ``result.extra["guarantee"]`` says whether the returned network met ``U <= T``.
    """
    limit = result.settings.latency_limit_ms
    # re-runs aim at the middle of the acceptance window [good_use T, T], not at T: the next verdict scatters
    # around the aim, and aiming at T itself would be rejected about half the time
    target = 0.5 * (1.0 + good_use) * limit
    first = len(result.attempts) - 1
    finals = {first: result.finalization}
    lowest_rejected: float | None = None  # internal limit of the tightest attempt whose bound was above T
    retries = 0
    reason = ""

    def attempts() -> list[tuple[int, dict[str, Any]]]:
        return [(i, a) for i, a in enumerate(result.attempts) if i >= first and "upper_latency_ms" in a]

    while True:
        fin = result.finalization
        figures = verdict_of(measure(result.arch, verdict_confidence(result.settings.confidence, retries + 1)))
        upper = figures["upper_latency_ms"]
        result.attempts[-1].update({**figures, "accepted": upper <= limit})
        if upper > limit:
            lowest_rejected = fin.limit_ms if lowest_rejected is None else min(lowest_rejected, fin.limit_ms)
        log.info("attempt %d: %s central %.4f ms, bound %.4f ms (raw median %.4f ms) against T = %.4f ms "
                 "(table %.4f ms): %s", len(result.attempts), result.arch, figures["measured_latency_ms"], upper,
                 figures["raw_median_ms"], limit, fin.latency_ms, "accepted" if upper <= limit else "REJECTED")
        accepted = [i for i, a in attempts() if a["accepted"]]
        if accepted:
            returned = max(accepted, key=lambda i: result.attempts[i]["upper_latency_ms"])
        else:
            returned = min((i for i, _ in attempts()), key=lambda i: result.attempts[i]["upper_latency_ms"])
        return_attempt(result, finals, returned)
        if on_attempt is not None:
            on_attempt()
        if accepted and (result.attempts[returned]["upper_latency_ms"] >= good_use * limit
                         or lowest_rejected is None):
            break  # uses the budget well, or accepted at the full limit (nothing to gain)
        if retries >= max_retries:
            if not accepted:
                reason = unmet_reason(result, "retries", first=first, retries=retries)
            break
        floor = result.model.min_latency_ms()
        # the next verdict is asked at a higher confidence: steer by the bounds as they would sit at it
        following = verdict_confidence(result.settings.confidence, retries + 2)
        if not accepted:  # tighten: the bracket has no accepted end yet
            if fin.limit_ms <= floor:
                reason = unmet_reason(result, "lightest", first=first)
                log.warning("measured guarantee: %s", reason)
                break
            # the last re-run aims a window's width lower: a miss there ends the search without a guarantee
            aim = (2.0 * good_use - 1.0) * limit if retries == max_retries - 1 else target
            nxt = next_internal_limit([(a["expected_latency_ms"], bound_at(a, following)) for _, a in attempts()],
                                      aim)
        else:  # between the highest internal limit accepted and the lowest rejected (the lightest network included)
            lo = max(result.attempts[i]["internal_limit_ms"] for i in accepted)
            hi = min(lowest_rejected, limit)  # type: ignore[type-var]
            # the bound (at the next verdict's confidence) scaled onto the window's middle
            ratio_limit = fin.latency_ms * target / bound_at(result.attempts[-1], following)
            nxt = ratio_limit if lo < ratio_limit < hi else 0.5 * (lo + hi)
            if hi - lo <= 0.002 * limit:
                break  # the bracket is as tight as the measurements allow
        try:
            # never below the table's minimum (the lightest network is the last network worth a verdict) and never
            # above T (a limit under the table's minimum then fails here rather than trying a network over T)
            refinalize(result, min(max(nxt, floor), limit))
        except (LatencyLimitError, DiscretizationError) as exc:
            reason = unmet_reason(result, "cannot_tighten", first=first, detail=exc)
            log.warning("measured guarantee: %s", reason)
            break
        retries += 1
        finals[len(result.attempts) - 1] = result.finalization
    met = bool(result.attempts[returned]["accepted"])
    served = result.attempts[returned].get("confidence")
    confidence = result.settings.confidence if served else None
    criterion = (f"upper bound of a later measurement <= latency_limit_ms, at {100 * confidence:g} % confidence for "
                 f"the search (the k-th verdict's bound at 1 - {1 - confidence:g} / 2^k)" if served
                 else "median + spread of the rounds <= latency_limit_ms (no verdict served)")
    record_guarantee(result, met, criterion, confidence, retries, max_retries, returned, reason, served)
    return met


def record_guarantee(result: SearchResult, met: bool, criterion: str, confidence: float | None, retries: int,
                     max_retries: int, returned: int, reason: str, verdict_confidence: float | None = None) -> None:
    """``result.extra["guarantee"]``: whether the returned network met the criterion, and how it was reached:
    ``confidence`` the search's stated confidence, ``verdict_confidence`` the returned verdict's own."""
    result.extra["guarantee"] = {
        "met": met,
        "criterion": criterion,
        "confidence": confidence,
        "verdict_confidence": verdict_confidence,
        "retries": retries,
        "max_retries": max_retries,
        "returned_attempt": returned,
        **({"reason": reason} if reason and not met else {}),
    }


def return_attempt(result: SearchResult, finals: dict[int, Finalization], index: int,
                   headline: dict[str, Any] | None = None) -> None:
    """Make attempt ``index`` the result's network, and its verdict (or ``headline``: the figures of the attempt's
    first target) the result's headline figures."""
    result.finalization = finals[index]
    for i, attempt in enumerate(result.attempts):
        attempt["returned"] = i == index
    a = result.attempts[index] if headline is None else headline
    result.extra.update({key: a.get(key) for key in HEADLINE_FIELDS})
    if a.get("measured_latency_ms") is not None:
        result.extra["measured_budget_used"] = a["measured_latency_ms"] / result.settings.latency_limit_ms
