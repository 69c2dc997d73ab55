"""One measurement worker per device: a priority queue, one thread, identical pending requests merged.

Every measurement goes through :class:`MeasurementQueue`, whatever the number of HTTP requests, so two
measurements never overlap on this device. A task is identified by a hashable key; submitting a key that
is already pending returns the pending task's future. Interactive requests (priority 0) overtake table
builds (priority 1). :class:`Job` tracks a group of tasks (a table build) for ``GET /v1/jobs/{id}``.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

__all__ = ["INTERACTIVE", "BACKGROUND", "Job", "MeasurementQueue"]

log = logging.getLogger(__name__)

INTERACTIVE = 0
BACKGROUND = 1


@dataclass(eq=False)
class _Task:
    key: Hashable
    fn: Callable[[], Any]
    priority: int
    future: Future = field(default_factory=Future)
    started: bool = False


class MeasurementQueue:
    """A single worker thread running submitted callables one at a time, merging identical keys."""

    def __init__(self, name: str = "measurement-worker") -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, _Task | None]] = queue.PriorityQueue()
        self._pending: dict[Hashable, _Task] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False
        self._stopping = False
        self.executed = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Cancel pending tasks and stop the worker after its current task."""
        with self._lock:
            self._stopping = True
            pending = list(self._pending.values())
            self._pending.clear()
        for task in pending:
            task.future.cancel()
        self._queue.put((-1, -1, None))
        if self._started:
            self._thread.join(timeout)

    @property
    def depth(self) -> int:
        """Tasks submitted and not finished (the running one included)."""
        with self._lock:
            return len(self._pending)

    def submit(self, key: Hashable, fn: Callable[[], Any], *, priority: int = INTERACTIVE) -> Future:
        """Queue ``fn`` under ``key``, or return the future of the identical pending task."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the measurement queue is stopping")
            task = self._pending.get(key)
            if task is not None:
                if priority < task.priority and not task.started:
                    task.priority = priority
                    self._queue.put((priority, next(self._seq), task))  # the stale entry is skipped
                return task.future
            task = _Task(key, fn, priority)
            self._pending[key] = task
            self._queue.put((priority, next(self._seq), task))
            return task.future

    def _loop(self) -> None:
        while True:
            _, _, task = self._queue.get()
            if task is None:
                return
            with self._lock:
                if task.started or task.future.done():
                    continue
                task.started = True
            if not task.future.set_running_or_notify_cancel():
                with self._lock:
                    self._pending.pop(task.key, None)
                continue
            try:
                result = task.fn()
            except BaseException as exc:  # noqa: BLE001 - reported through the future
                log.warning("measurement %s failed: %s: %s", task.key, type(exc).__name__, exc)
                with self._lock:
                    self._pending.pop(task.key, None)
                    self.executed += 1
                task.future.set_exception(exc)
            else:
                with self._lock:
                    self._pending.pop(task.key, None)
                    self.executed += 1
                task.future.set_result(result)


@dataclass(eq=False)
class Job:
    """A group of queued measurements (a table build) with progress for ``GET /v1/jobs/{id}``.

    A failing entry does not stop the others (they are stored, so a retry measures only what failed); the
    job ends ``failed`` with the first error once every entry has ended, ``done`` otherwise.
    """

    kind: str
    total: int
    done: int = 0
    state: str = "queued"
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _remaining: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    on_finish: Callable[[Job], None] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def mark_running(self) -> None:
        with self._lock:
            if self.state == "queued":
                self.state = "running"

    def track(self, futures: list[tuple[str, Future]]) -> None:
        """Follow ``futures`` (name, future); the job ends when all have ended."""
        with self._lock:
            self._remaining = len(futures)
        if not futures:
            self._finish()
            return
        for name, future in futures:
            future.add_done_callback(lambda fut, name=name: self._one_done(name, fut))

    def _one_done(self, name: str, future: Future) -> None:
        with self._lock:
            self._remaining -= 1
            remaining = self._remaining
            if future.cancelled():
                if self.error is None:
                    self.error = f"{name}: cancelled (server stopping)"
            elif future.exception() is not None:
                exc = future.exception()
                if self.error is None:  # the job ends 'failed' once its other entries have ended
                    self.error = f"{name}: {type(exc).__name__}: {exc}"
            else:
                self.done += 1
                if self.state == "queued":
                    self.state = "running"
        if remaining == 0:
            self._finish()

    def _finish(self) -> None:
        with self._lock:
            if self.state != "failed":
                self.state = "failed" if self.error else "done"
        if self.on_finish is not None:
            self.on_finish(self)
