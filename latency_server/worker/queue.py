"""The measurement queue: one thread hands the worker one task at a time, by priority, identical ones merged.

Every measurement goes through :class:`MeasurementQueue`, whatever the number of HTTP requests, so two
measurements never overlap on this device (the queue's thread is the measurement worker's only caller). A task
is identified by a hashable key; submitting a key that is already pending returns the pending task's future.
Interactive requests (priority 0) overtake table builds (priority 1). The queue is bounded
(:class:`~latency_server.errors.QueueFull`, answered 429), and a task nobody waits for any more is not started:
each interactive submission counts a waiter, :meth:`MeasurementQueue.release` drops one (a request whose client
disconnected), and a task left with no waiter is cancelled unless a job owns it (a table build continues
without its requester, who polls the job).
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from latency_server.errors import QueueFull, ServerStopping
from latency_server.worker.jobs import Job

__all__ = ["INTERACTIVE", "BACKGROUND", "Job", "MeasurementQueue"]

log = logging.getLogger(__name__)

INTERACTIVE = 0
BACKGROUND = 1


@dataclass(eq=False)
class _Task:
    key: Hashable
    fn: Callable[[], Any]
    priority: int
    label: str
    future: Future = field(default_factory=Future)
    started: bool = False
    waiters: int = 0
    owned: bool = False
    submitted: float = field(default_factory=time.monotonic)


class MeasurementQueue:
    """A single thread running submitted callables one at a time, merging identical keys; at most
    ``max_tasks`` pending (the running one included)."""

    def __init__(self, name: str = "measurement-queue", max_tasks: int = 0) -> None:
        self.max_tasks = max_tasks  # 0 = unbounded
        self._queue: queue.PriorityQueue[tuple[int, int, _Task | None]] = queue.PriorityQueue()
        self._pending: dict[Hashable, _Task] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False
        self._stopping = False
        self._running: tuple[_Task, float] | None = None
        self._mean_task_s = 1.0
        self.executed = 0
        self.abandoned = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def close(self) -> None:
        """Accept nothing more and fail every task not yet started (:class:`ServerStopping`)."""
        with self._lock:
            self._stopping = True
            pending = [t for t in self._pending.values() if not t.started]
            for task in pending:
                self._pending.pop(task.key, None)
        for task in pending:
            if not task.future.done():
                task.future.set_exception(ServerStopping(f"{task.label}: cancelled, the server is stopping",
                                                         retry_after_s=10))

    def stop(self, timeout: float | None = 5.0) -> None:
        """:meth:`close`, then stop the thread after its current task."""
        self.close()
        self._queue.put((-1, -1, None))
        if self._started:
            self._thread.join(timeout)

    # -- state ----------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Tasks submitted and not finished (the running one included)."""
        with self._lock:
            return len(self._pending)

    def oldest_age_s(self) -> float | None:
        """Seconds since the oldest unfinished task was submitted (``None`` when empty)."""
        with self._lock:
            oldest = min((t.submitted for t in self._pending.values()), default=None)
        return None if oldest is None else time.monotonic() - oldest

    def current(self) -> tuple[str, float] | None:
        """The running task's label and seconds since it started."""
        running = self._running
        return None if running is None else (running[0].label, time.monotonic() - running[1])

    def _full(self, more: int) -> QueueFull | None:
        """The error to raise if ``more`` tasks do not fit (caller holds the lock)."""
        depth = len(self._pending)
        if self.max_tasks and depth + more > self.max_tasks:
            # when there may be room again: the queue's depth times the mean task time (1 s to 10 min)
            retry_after_s = min(600, max(1, math.ceil(depth * self._mean_task_s)))
            return QueueFull(f"the measurement queue is full ({depth} tasks pending, limit {self.max_tasks}, "
                             "LATENCY_SERVER_MAX_QUEUED_TASKS); retry later", retry_after_s=retry_after_s)
        return None

    # -- submitting -----------------------------------------------------------------------------------
    def reserve(self, count: int) -> None:
        """Raise :class:`QueueFull` unless ``count`` more tasks fit (a table build checks before queueing)."""
        with self._lock:
            error = self._full(count)
        if error is not None:
            raise error

    def submit(self, key: Hashable, fn: Callable[[], Any], *, priority: int = INTERACTIVE, label: str | None = None,
               owned: bool = False, bounded: bool = True) -> Future:
        """Queue ``fn`` under ``key``, or return the future of the identical pending task.

        ``owned`` tasks belong to a job and run even when nobody waits; other submissions each count a waiter
        (see :meth:`release`). ``bounded=False`` skips the size check (a build that reserved its room).
        """
        with self._lock:
            if self._stopping:
                raise ServerStopping("the measurement queue is stopping", retry_after_s=10)
            task = self._pending.get(key)
            if task is not None:
                if owned:
                    task.owned = True
                else:
                    task.waiters += 1
                if priority < task.priority and not task.started:
                    task.priority = priority
                    self._queue.put((priority, next(self._seq), task))  # the stale entry is skipped
                return task.future
            error = self._full(1) if bounded else None
            if error is not None:
                raise error
            task = _Task(key, fn, priority, label or str(key), waiters=0 if owned else 1, owned=owned)
            self._pending[key] = task
            self._queue.put((priority, next(self._seq), task))
            return task.future

    def release(self, future: Future) -> None:
        """One waiter of ``future``'s task has gone; cancel the task if it has not started and nobody else waits."""
        with self._lock:
            task = next((t for t in self._pending.values() if t.future is future), None)
            if task is None:
                return
            task.waiters -= 1
            if task.waiters > 0 or task.owned or task.started:
                return
            self._pending.pop(task.key, None)
            self.abandoned += 1
        if task.future.cancel():
            log.info("%s: not started, every request waiting for it has gone", task.label)

    def disown(self, future: Future) -> None:
        """The job that owned ``future``'s task has ended; cancel it unless it started or a request waits."""
        with self._lock:
            task = next((t for t in self._pending.values() if t.future is future), None)
            if task is None:
                return
            task.owned = False
            task.waiters += 1  # released at once below: cancelled exactly when no waiter remains
        self.release(future)

    # -- running --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            _, _, task = self._queue.get()
            if task is None:
                return
            with self._lock:
                if task.started or task.future.done() or self._pending.get(task.key) is not task:
                    continue
                task.started = True
            if not task.future.set_running_or_notify_cancel():
                with self._lock:
                    self._pending.pop(task.key, None)
                continue
            start = time.monotonic()
            self._running = (task, start)
            try:
                result = task.fn()
            except BaseException as exc:  # noqa: BLE001 - reported through the future
                log.warning("%s failed: %s: %s", task.label, type(exc).__name__, exc)
                self._finish(task, start)
                task.future.set_exception(exc)
            else:
                self._finish(task, start)
                task.future.set_result(result)

    def _finish(self, task: _Task, start: float) -> None:
        elapsed = time.monotonic() - start
        with self._lock:
            self._running = None
            self._pending.pop(task.key, None)
            self.executed += 1
            self._mean_task_s = 0.8 * self._mean_task_s + 0.2 * elapsed
