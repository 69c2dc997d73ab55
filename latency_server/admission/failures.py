"""Failed measurement work: counted by reason, and work that killed or crashed the worker refused for a while.

A retrying client must not turn one bad request into a crash loop. When a task is killed over its time or memory
limit, or the worker dies under it, :class:`FailureLog` records the failure under the task's key (a block, a
network) and, for a table build, under the table; later requests for the same work are answered at once with an
error naming the failed entry and why (:class:`~latency_server.errors.RecentFailure`, the original status and a
``Retry-After``) until ``LATENCY_SERVER_FAILURE_COOLDOWN_S`` has passed. The log lives in the server process:
the limits are settings of the process, so a restart with other limits (``LATENCY_SERVER_TASK_TIMEOUT_S``,
``LATENCY_SERVER_TASK_MEMORY_MB``) is what changes them, and it starts with an empty log. Measurements that
merely raised are counted but not refused (they are cheap to repeat and often transient).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from latency_server.errors import RecentFailure, TaskFailed, TaskKilled

__all__ = ["Failure", "FailureLog"]


@dataclass(frozen=True)
class Failure:
    """One recorded failure: what failed, how, when."""

    message: str  # "<task label>: <why>"
    reason: str  # timeout, memory, crash
    status_code: int
    error_type: str
    at: float  # the log's clock
    at_utc: str


class FailureLog:
    """Failures by reason since start, and the recent kills and crashes by work key (bounded)."""

    def __init__(self, cooldown_s: float, *, capacity: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self.capacity = capacity
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._recent: OrderedDict[Hashable, Failure] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, exc: TaskFailed, keys: Iterable[Hashable] = ()) -> None:
        """Count ``exc`` and :meth:`remember` it under ``keys``."""
        with self._lock:
            self.counts[exc.reason] += 1
        self.remember(exc, keys)

    def remember(self, exc: TaskFailed, keys: Iterable[Hashable], *, message: str | None = None) -> None:
        """If ``exc`` killed or crashed the worker, refuse the work under ``keys`` for a while (``message``: what
        failed, by default the exception's)."""
        with self._lock:
            if not isinstance(exc, TaskKilled) or self.cooldown_s <= 0:
                return
            failure = Failure(message or exc.msg, exc.reason, exc.status_code, exc.error_type, self.clock(),
                              datetime.now(timezone.utc).isoformat(timespec="seconds"))
            for key in keys:
                self._recent[key] = failure
                self._recent.move_to_end(key)
            while len(self._recent) > self.capacity:
                self._recent.popitem(last=False)

    def recent(self, key: Hashable) -> Failure | None:
        """The failure recorded under ``key`` within the cool-down, if any."""
        with self._lock:
            failure = self._recent.get(key)
            if failure is not None and self.clock() - failure.at >= self.cooldown_s:
                del self._recent[key]
                return None
            return failure

    def refuse_if_recent(self, key: Hashable, what: str, loc: tuple[str | int, ...] = ()) -> None:
        """Raise :class:`RecentFailure` if the work under ``key`` recently killed or crashed the worker."""
        failure = self.recent(key)
        if failure is None:
            return
        left_s = max(1.0, self.cooldown_s - (self.clock() - failure.at))
        raise RecentFailure(
            f"{what} is not retried: at {failure.at_utc} {failure.message}; it may be tried again in {left_s:.0f} s "
            "(LATENCY_SERVER_FAILURE_COOLDOWN_S) or after a restart with other limits",
            status_code=failure.status_code, error_type=failure.error_type, retry_after_s=left_s, loc=loc)
