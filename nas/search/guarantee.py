"""The measured guarantee: the found network measured on the device, and the final steps re-run under a tighter
internal limit while it measures above the limit.

This module owns the policy (how the next internal limit is chosen, when to stop, which attempt is returned) and
the bookkeeping of each attempt's measurement in ``result.attempts`` and ``result.extra``. The measurement itself
comes in as a callable answering like ``POST /v1/latency/network`` (:meth:`nas.client.LatencyClient
.measure_network`), so the policy runs the same against a server or a test's simulated device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nas.search.bcfw import LatencyLimitError
from nas.search.driver import refinalize
from nas.search.finalize import Finalization
from nas.search.result import SearchResult

if TYPE_CHECKING:
    from shared.api_schemas import NetworkResponse

__all__ = ["ANSWER_FIELDS", "MeasureFn", "measured_guarantee"]

log = logging.getLogger(__name__)

#: ``measure(arch)``: one measurement of the network ``arch`` on the device
MeasureFn = Callable[[str], "NetworkResponse"]

#: fields of a ``POST /v1/latency/network`` answer kept with each attempt (and the returned one's in result.json)
ANSWER_FIELDS = ("predicted_ms", "predicted_table_ms", "predicted_naive_ms", "normalized_ms", "drift_ratio")


def measured_guarantee(
    result: SearchResult,
    measure: MeasureFn,
    *,
    max_retries: int = 3,
    on_attempt: Callable[[], Any] | None = None,
    good_use: float = 0.95,
) -> bool:
    """Measure the found network on the device and re-run the final steps under a tighter internal limit while it
    is above the limit T (at most ``max_retries`` re-runs in all); met means ``m <= T + spread``.

    A network measured at ``m`` ms whose table latency is ``E`` shows the device running ``m / E`` times the
    table; the next internal limit is ``E * T / m`` (the observed ratio applied to the limit), which is below
    ``E`` so the next network differs. The search steers for ``m <= T``; the measurement's spread is the
    tolerance of the verdict, not the target.

    One measurement can catch the device in a slow moment and tighten too far. So once a network measures under T
    but uses less than ``good_use`` of it after a tighter re-run, the internal limit moves back up between the
    highest internal limit measured under T and the lowest measured above (the observed ratio, or their midpoint),
    while re-runs are left. The network returned is the one measured under T with the highest latency; else the
    one within T + spread with the highest latency; else the last. The internal limit never exceeds T, so every
    attempt keeps the table guarantee. Every attempt (internal limit, arch, expected, measured, spread, verdicts,
    ``returned``) is in ``result.attempts``; ``result.extra["guarantee"]`` says whether the returned network met
    ``m <= T + spread``.
    """
    limit = result.settings.latency_limit_ms
    first = len(result.attempts) - 1
    finals = {first: result.finalization}
    lowest_above: float | None = None  # internal limit of the tightest attempt measured above T
    retries = 0
    reason = ""

    def best_of(key: str) -> int | None:
        hits = [i for i, a in enumerate(result.attempts) if i >= first and a.get(key)]
        return max(hits, key=lambda i: result.attempts[i]["measured_latency_ms"]) if hits else None

    while True:
        index = len(result.attempts) - 1
        fin = result.finalization
        answer = measure(result.arch)
        measured_ms = answer.measured.median_ms
        spread_ms = answer.spread_ms
        result.attempts[-1].update({
            "measured_latency_ms": measured_ms,
            "measured_spread_ms": spread_ms,
            "measured": answer.measured.model_dump(),
            "under_limit": measured_ms <= limit,
            "within_limit": measured_ms <= limit + spread_ms,
            **{key: getattr(answer, key) for key in ANSWER_FIELDS},
            "measurement_fingerprint": answer.fingerprint,
        })
        if measured_ms > limit:
            lowest_above = fin.limit_ms if lowest_above is None else min(lowest_above, fin.limit_ms)
        log.info("attempt %d: %s measured %.4f ms (spread %.4f ms) against T = %.4f ms (table %.4f ms): %s",
                 len(result.attempts), result.arch, measured_ms, spread_ms, limit, fin.latency_ms,
                 "under" if measured_ms <= limit else "within the spread" if measured_ms <= limit + spread_ms
                 else "ABOVE")
        under = best_of("under_limit")
        best = under if under is not None else best_of("within_limit")
        returned = best if best is not None else index
        _return_attempt(result, finals, returned)
        if on_attempt is not None:
            on_attempt()
        if under is not None and (result.attempts[under]["measured_latency_ms"] >= good_use * limit
                                  or lowest_above is None):
            break  # uses the budget well, or measured under T at the full limit (never exceeded)
        if retries >= max_retries:
            if best is None:
                reason = f"still above the limit after {retries} retries"
            break
        ratio_limit = fin.latency_ms * limit / measured_ms  # the observed ratio applied to the limit
        if under is None:
            nxt = ratio_limit
        else:  # between the highest internal limit measured under T and the lowest measured above
            lo = max(a["internal_limit_ms"] for a in result.attempts[first:] if a.get("under_limit"))
            hi = min(lowest_above, limit)  # type: ignore[type-var]
            nxt = ratio_limit if lo < ratio_limit < hi else 0.5 * (lo + hi)
            if hi - lo <= 0.002 * limit:
                break  # the bracket is as tight as the measurement noise allows
        try:
            refinalize(result, min(nxt, limit))
        except LatencyLimitError as exc:
            reason = f"cannot tighten further: {exc}"
            log.warning("measured guarantee: %s", reason)
            break
        retries += 1
        finals[len(result.attempts) - 1] = result.finalization
    met = bool(result.attempts[returned].get("within_limit"))
    result.extra["guarantee"] = {
        "met": met,
        "under_limit": bool(result.attempts[returned].get("under_limit")),
        "criterion": "measured median <= latency_limit_ms + measured spread",
        "retries": retries,
        "max_retries": max_retries,
        "returned_attempt": returned,
        **({"reason": reason} if reason and not met else {}),
    }
    return met


def _return_attempt(result: SearchResult, finals: dict[int, Finalization], index: int) -> None:
    """Make attempt ``index`` the result's network, and its measurement the result's headline figures."""
    result.finalization = finals[index]
    for i, attempt in enumerate(result.attempts):
        attempt["returned"] = i == index
    a = result.attempts[index]
    keys = ("measured_latency_ms", "measured_spread_ms", "measured", *ANSWER_FIELDS, "measurement_fingerprint")
    result.extra.update({key: a.get(key) for key in keys})
    result.extra["measured_budget_used"] = a["measured_latency_ms"] / result.settings.latency_limit_ms
