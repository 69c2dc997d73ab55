"""How the measurement worker holds the CPU: pinned to chosen cores and at a chosen scheduling priority.

Applied in the spawned worker before it imports torch or starts a thread, so every thread it makes inherits both.
Pinning keeps the worker (and the drift reference it times beside each network) on the same core and its caches;
a higher priority (a negative ``nice``) lets it preempt ordinary work on a shared machine. Both are best-effort:
a core outside the process's allowed set is dropped, and a priority the process may not take (raising it needs
``CAP_SYS_NICE``) is left as it was; what was applied, and why not, is reported in the worker's hello.
The CPU set the worker ends with enters the device fingerprint (``cpu_affinity``), so figures measured pinned are
never served as figures of an unpinned worker. Nothing here imports torch.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["apply_discipline", "parse_cpus"]


def parse_cpus(text: str) -> tuple[int, ...]:
    """The CPUs of a list like ``1`` or ``0-3,6``; ``""`` is none (no pinning). ``ValueError`` names the bad part."""
    cpus: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"not a CPU or CPU range: {part!r} (expected e.g. 1 or 0-3,6)") from None
        if low < 0 or high < low:
            raise ValueError(f"not a CPU range: {part!r}")
        cpus.extend(range(low, high + 1))
    return tuple(sorted(set(cpus)))


def _pin(cpus: tuple[int, ...]) -> dict[str, Any]:
    if not cpus:
        return {"pinned": None}
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError) as exc:
        return {"pinned": None, "pin_error": f"no CPU affinity here: {exc}"}
    chosen = sorted(set(cpus) & allowed)
    if not chosen:
        return {"pinned": None, "pin_error": f"none of CPUs {list(cpus)} is allowed (allowed: {sorted(allowed)})"}
    try:
        os.sched_setaffinity(0, chosen)
    except OSError as exc:
        return {"pinned": None, "pin_error": str(exc)}
    return {"pinned": chosen}


def _prioritise(nice: int) -> dict[str, Any]:
    if nice == 0:
        return {"nice": os.getpriority(os.PRIO_PROCESS, 0)}
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except (OSError, AttributeError) as exc:
        return {"nice": os.getpriority(os.PRIO_PROCESS, 0), "nice_error": f"could not set nice {nice}: {exc}"}
    return {"nice": os.getpriority(os.PRIO_PROCESS, 0)}


def apply_discipline(cpus: tuple[int, ...], nice: int) -> dict[str, Any]:
    """Pin this process to ``cpus`` (none: leave it) and set its ``nice`` (0: leave it); what was applied."""
    return {**_pin(cpus), **_prioritise(nice)}
