"""Why a measured guarantee ended unmet, in words a user can act on: the target, its limit, the best bound reached.

The guarantee's policies (:mod:`nas.search.guarantee`, :mod:`nas.search.fleet_guarantee`) stop for a few reasons:
the bound stayed above the limit through every re-run, even the lightest network's bound was above it, or the
final steps could not find a network under a tighter internal limit. The last one comes from the exact
discretisation, whose own wording is the solver's; a user needs the target and the limit instead, and what the
attempts showed. The solver's detail stays in the debug log.
"""

from __future__ import annotations

import logging
from typing import Any

from nas.search.result import SearchResult

__all__ = ["ADVICE", "describe_target", "unmet_reason"]

log = logging.getLogger(__name__)

#: what would help when the device's variability keeps every verified bound above the limit
ADVICE = "The device is too noisy for this limit now: try a higher limit, fewer threads, or a quieter moment."

#: what each stop means, for a sentence "... at T ms: <why>; ..."
WHY = {
    "cannot_tighten": "no network in the space has a verified bound under its limit",
    "retries": "the verified bound stayed above the limit after {retries} re-run(s)",
    "lightest": "even the lightest network's verified bound is above the limit",
}

FLEET_WHY = {
    "cannot_tighten": "no network in the space meets every target's tightened internal limit together, so none has "
                      "a verified bound under each limit",
    "retries": "a verified bound stayed above its target's limit after {retries} re-run(s)",
    "lightest": "even the lightest network's verified bound is above its target's limit",
}
HEAD = {"cannot_tighten": "cannot tighten further", "retries": "no verified bound under the limit",
        "lightest": "no verified bound under the limit"}


def describe_target(result: SearchResult, k: int = 0) -> str:
    """Target ``k`` (0: the first) in words: its backend, threads and batch, and the server or table file it is on."""
    info: dict[str, Any] = result.target_info[k] if k < len(result.target_info) else {}
    s = result.settings
    backend = info.get("backend") or (s.backend if k == 0 else f"target {k + 1}")
    threads = info.get("threads") or (s.threads if k == 0 else None)
    batch = info.get("batch_size") or (s.latency_batch_size if k == 0 else None)
    how = [f"{threads} thread{'s' if threads != 1 else ''}"] if threads else []
    how += [f"batch {batch}"] if batch and batch != 1 else []
    where = info.get("endpoint") or info.get("lut")
    text = f"{backend} ({', '.join(how)})" if how else str(backend)
    return f"{text} on {where}" if where else text


def _best_seen(attempts: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The lowest verified bound among ``attempts``' figures and that attempt's table latency."""
    seen = [(a["upper_latency_ms"], a["expected_latency_ms"]) for a in attempts
            if a.get("upper_latency_ms") is not None and a.get("expected_latency_ms") is not None]
    return min(seen) if seen else None


def unmet_reason(result: SearchResult, kind: str, *, first: int = 0, retries: int = 0,
                 detail: BaseException | None = None) -> str:
    """The sentence recorded as ``guarantee.reason`` when the search stops unmet: for every target whose bound is
    above its limit, its name, its limit in ms and the best bound reached (with its table latency), then why the
    search stopped (``kind``: ``cannot_tighten``, ``retries`` or ``lightest``) and what would help. ``first``: the
    index of the search's first attempt; ``detail``: the solver's exception, logged at debug level only."""
    if detail is not None:
        log.debug("measured guarantee: the final steps stopped: %s", detail)
    limits = [result.settings.latency_limit_ms, *(limit for _, limit in result.others)]
    attempts = result.attempts[first:]
    held_back = []  # (target k, its limit, the best (bound, table latency) it reached) of every unmet target
    for k, limit in enumerate(limits):
        per_target = [a["targets"][k] for a in attempts if "targets" in a] if len(limits) > 1 else attempts
        best = _best_seen(per_target)
        if best is None or best[0] > limit:
            held_back.append((k, limit, best))
    if len(limits) == 1:
        _, limit, best = held_back[0] if held_back else (0, limits[0], None)
        text = f"{HEAD[kind]} for {describe_target(result)} at {limit:.2f} ms: {WHY[kind].format(retries=retries)}"
        if best is not None:
            text += f"; the best bound reached was {best[0]:.2f} ms with a table latency of {best[1]:.2f} ms"
        return f"{text}. {ADVICE}"
    why = FLEET_WHY[kind].format(retries=retries)
    named = [f"{describe_target(result, k)} at {limit:.2f} ms"
             + ("" if best is None else f" (best bound reached {best[0]:.2f} ms, table latency {best[1]:.2f} ms)")
             for k, limit, best in held_back or [(k, t, None) for k, t in enumerate(limits)]]
    return f"{HEAD[kind]} for {'; '.join(named)}: {why}. {ADVICE}"
