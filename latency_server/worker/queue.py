"""The measurement queue: one thread hands the worker one task at a time, by priority, identical ones merged.

Every measurement goes through :class:`MeasurementQueue`, whatever the number of HTTP requests, so two
measurements never overlap on this device (the queue's thread is the measurement worker's only caller). A task
is identified by a hashable key; submitting a key that is already pending returns the pending task's future.
Interactive requests (priority 0) overtake table builds (priority 1); within a priority, clients are served
round-robin (a client is the hash of its token or its address, :data:`client_id`), so one client's hundreds of
queued blocks do not starve another's single request. Interactive and background tasks are bounded separately,
and each client's pending interactive tasks optionally too (:class:`~latency_server.errors.QueueFull`, answered
429), so a full build queue never blocks interactive requests nor the other way round. A task nobody waits for any
more is not started and leaves the queue at once: each interactive submission counts a waiter,
:meth:`MeasurementQueue.release` drops one (a request whose client disconnected), and a task left with no waiter is
dropped and cancelled unless a job owns it (a table build continues without its requester, who polls the job).
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from latency_server.errors import QueueFull, ServerStopping
from latency_server.worker.jobs import Job

__all__ = ["INTERACTIVE", "BACKGROUND", "Job", "MeasurementQueue", "client_id"]

log = logging.getLogger(__name__)

INTERACTIVE = 0
BACKGROUND = 1

#: who submits: set by the HTTP layer for each request (a hash of the token, or the peer address); tasks of one
#: client queue behind each other, clients take turns
client_id: contextvars.ContextVar[str] = contextvars.ContextVar("client_id", default="")


@dataclass(eq=False)
class _Task:
    key: Hashable
    fn: Callable[[], Any]
    priority: int
    label: str
    client: str = ""
    future: Future = field(default_factory=Future)
    started: bool = False
    waiters: int = 0
    owned: bool = False
    kind: int = INTERACTIVE  # the cap it counts against (its priority when submitted)
    submitted: float = field(default_factory=time.monotonic)


class MeasurementQueue:
    """A single thread running submitted callables one at a time, merging identical keys, clients in turn.

    At most ``max_tasks`` interactive and ``max_background`` background tasks pending (the running one included;
    0 = unbounded), and at most ``max_per_client`` interactive tasks of one client waiting (0 = unbounded).
    """

    def __init__(self, name: str = "measurement-queue", max_tasks: int = 0, *, max_background: int = 0,
                 max_per_client: int = 0) -> None:
        self.max_tasks = max_tasks
        self.max_background = max_background
        self.max_per_client = max_per_client
        #: waiting tasks by priority, then by client in turn order
        self._waiting: dict[int, OrderedDict[str, deque[_Task]]] = {INTERACTIVE: OrderedDict(),
                                                                     BACKGROUND: OrderedDict()}
        self._pending: dict[Hashable, _Task] = {}
        self._counts = {INTERACTIVE: 0, BACKGROUND: 0}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False
        self._stopping = False
        self._halt = False
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
                self._drop(task)
        for task in pending:
            if not task.future.done():
                task.future.set_exception(ServerStopping(f"{task.label}: cancelled, the server is stopping",
                                                         retry_after_s=10))

    def stop(self, timeout: float | None = 5.0) -> None:
        """:meth:`close`, then stop the thread after its current task."""
        self.close()
        with self._wake:
            self._halt = True
            self._wake.notify_all()
        if self._started:
            self._thread.join(timeout)

    # -- state ----------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Tasks submitted and not finished (the running one included)."""
        with self._lock:
            return len(self._pending)

    def waiting(self, priority: int | None = None) -> int:
        """Tasks waiting to start (of one priority, or all)."""
        with self._lock:
            groups = self._waiting.values() if priority is None else [self._waiting[priority]]
            return sum(len(tasks) for group in groups for tasks in group.values())

    def oldest_age_s(self) -> float | None:
        """Seconds since the oldest unfinished task was submitted (``None`` when empty)."""
        with self._lock:
            oldest = min((t.submitted for t in self._pending.values()), default=None)
        return None if oldest is None else time.monotonic() - oldest

    def current(self) -> tuple[str, float] | None:
        """The running task's label and seconds since it started."""
        running = self._running
        return None if running is None else (running[0].label, time.monotonic() - running[1])

    def current_waiters(self) -> int:
        """Requests waiting for the running task (0 when none runs)."""
        running = self._running
        return 0 if running is None else running[0].waiters

    def _full(self, more: int, kind: int = INTERACTIVE, client: str = "") -> QueueFull | None:
        """The error to raise if ``more`` tasks of ``kind`` from ``client`` do not fit (caller holds the lock)."""
        depth = self._counts[kind]
        limit, setting = ((self.max_tasks, "LATENCY_SERVER_MAX_QUEUED_TASKS") if kind == INTERACTIVE
                          else (self.max_background, "LATENCY_SERVER_QUEUE_MAX_BACKGROUND"))
        # when there may be room again: the queue's depth times the mean task time (1 s to 10 min)
        retry_after_s = min(600, max(1, math.ceil(len(self._pending) * self._mean_task_s)))
        what = "interactive" if kind == INTERACTIVE else "background (table build)"
        if limit and depth + more > limit:
            return QueueFull(f"the measurement queue is full ({depth} {what} tasks pending, limit {limit}, "
                             f"{setting}); retry later", retry_after_s=retry_after_s)
        if kind == INTERACTIVE and self.max_per_client:
            mine = len(self._waiting[INTERACTIVE].get(client, ()))
            if mine + more > self.max_per_client:
                return QueueFull(f"this client has {mine} measurements waiting, the per-client limit is "
                                 f"{self.max_per_client} (LATENCY_SERVER_QUEUE_MAX_PER_CLIENT); retry later",
                                 retry_after_s=retry_after_s)
        return None

    # -- submitting -----------------------------------------------------------------------------------
    def reserve(self, count: int, *, priority: int = INTERACTIVE) -> None:
        """Raise :class:`QueueFull` unless ``count`` more tasks fit (a request checks before queueing)."""
        with self._lock:
            error = self._full(count, priority, client_id.get())
        if error is not None:
            raise error

    def submit(self, key: Hashable, fn: Callable[[], Any], *, priority: int = INTERACTIVE, label: str | None = None,
               owned: bool = False, bounded: bool = True, client: str | None = None) -> Future:
        """Queue ``fn`` under ``key``, or return the future of the identical pending task.

        ``owned`` tasks belong to a job and run even when nobody waits; other submissions each count a waiter
        (see :meth:`release`). ``bounded=False`` skips the size check (a build that reserved its room).
        ``client`` defaults to the current request's :data:`client_id`.
        """
        client = client_id.get() if client is None else client
        with self._wake:
            if self._stopping:
                raise ServerStopping("the measurement queue is stopping", retry_after_s=10)
            task = self._pending.get(key)
            if task is not None:
                if owned:
                    task.owned = True
                else:
                    task.waiters += 1
                if priority < task.priority and not task.started:  # promoted: it now queues as this client's
                    self._unqueue(task)
                    task.priority, task.client = priority, client
                    self._enqueue(task)
                return task.future
            error = self._full(1, priority, client) if bounded else None
            if error is not None:
                raise error
            task = _Task(key, fn, priority, label or str(key), client, waiters=0 if owned else 1, owned=owned,
                         kind=priority)
            self._pending[key] = task
            self._counts[task.kind] += 1
            self._enqueue(task)
            self._wake.notify()
            return task.future

    def release(self, future: Future) -> None:
        """One waiter of ``future``'s task has gone; drop and cancel the task if it has not started and nobody
        else waits."""
        with self._lock:
            task = next((t for t in self._pending.values() if t.future is future), None)
            if task is None:
                return
            task.waiters -= 1
            if task.waiters > 0 or task.owned or task.started:
                return
            self._drop(task)
            self.abandoned += 1
        if task.future.cancel():
            log.info("%s: not started, every request waiting for it has gone", task.label)

    def release_all(self, futures: Iterable[Future]) -> None:
        """:meth:`release` each of ``futures`` (a request that cannot go on with what it submitted)."""
        for future in futures:
            self.release(future)

    def disown(self, future: Future) -> None:
        """The job that owned ``future``'s task has ended; cancel it unless it started or a request waits."""
        with self._lock:
            task = next((t for t in self._pending.values() if t.future is future), None)
            if task is None:
                return
            task.owned = False
            task.waiters += 1  # released at once below: cancelled exactly when no waiter remains
        self.release(future)

    # -- bookkeeping (caller holds the lock) ----------------------------------------------------------
    def _enqueue(self, task: _Task) -> None:
        group = self._waiting[task.priority]
        group.setdefault(task.client, deque()).append(task)

    def _unqueue(self, task: _Task) -> None:
        group = self._waiting[task.priority]
        tasks = group.get(task.client)
        if tasks is not None and task in tasks:
            tasks.remove(task)
            if not tasks:
                del group[task.client]

    def _drop(self, task: _Task) -> None:
        """Forget ``task``: out of the waiting lines and the pending tasks, its room freed."""
        if self._pending.get(task.key) is task:
            del self._pending[task.key]
            self._counts[task.kind] -= 1
        if not task.started:
            self._unqueue(task)

    def _next(self) -> _Task | None:
        """The next task: the most urgent priority, the client whose turn it is (then it goes to the back)."""
        for priority in (INTERACTIVE, BACKGROUND):
            group = self._waiting[priority]
            if group:
                client, tasks = next(iter(group.items()))
                task = tasks.popleft()
                if tasks:
                    group.move_to_end(client)
                else:
                    del group[client]
                return task
        return None

    # -- running --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                task = None
                while not self._halt and (task := self._next()) is None:
                    self._wake.wait()
                if self._halt or task is None:
                    return
                task.started = True
            if not task.future.set_running_or_notify_cancel():
                with self._lock:
                    self._drop(task)
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
            self._drop(task)
            self.executed += 1
            self._mean_task_s = 0.8 * self._mean_task_s + 0.2 * elapsed
