"""The measurement worker as the server sees it: one spawned process per device, killed, restarted and recycled.

:class:`MeasurementWorker` owns a :class:`~latency_server.worker.process.WorkerProcess`. The queue's thread hands
it one task at a time (:meth:`MeasurementWorker.call`) and watches the task while it runs: past its wall-clock
limit, or with the worker's resident memory past its limit, the worker is killed with SIGKILL, the task fails
with the reason, and a monitor thread starts a new worker. The monitor also restarts a worker that dies while
idle and recycles it after N tasks or M minutes, so a long-running server measures like a fresh one.

Memory is enforced by polling resident memory rather than ``RLIMIT_AS``: torch, CUDA and ONNX Runtime reserve
far more address space than they use, so an address-space limit low enough to matter breaks imports and aborts
the process deep inside a runtime. Resident memory is what a co-located service feels; a spike shorter than the
poll interval can pass, which is why requests are also budgeted before any work
(:mod:`latency_server.admission.budget`) against an estimate well under the kill limit.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import wait
from typing import Any

from latency_server.errors import ServerStopping, TaskError, TaskKilled, WorkerUnavailable
from latency_server.worker.child import WorkerConfig, rss_bytes
from latency_server.worker.limits import WorkerLimits, WorkerStatus
from latency_server.worker.process import WorkerProcess
from latency_server.worker.tasks import TaskFailure, WorkerHello

__all__ = ["MeasurementWorker", "WorkerLimits", "WorkerStatus"]

log = logging.getLogger(__name__)

class MeasurementWorker:
    """The server's handle on its measurement worker: one task at a time, with limits, restarts and recycling."""

    def __init__(self, config: WorkerConfig, limits: WorkerLimits) -> None:
        self.config = config
        self.limits = limits
        self._ctx = multiprocessing.get_context("spawn")
        self._cond = threading.Condition()
        self._proc: WorkerProcess | None = None
        self._ready = False
        self._busy = False
        self._stopping = False
        self._closing = False
        self._current: tuple[str, float] | None = None
        self._hello: WorkerHello | None = None
        self._ids = itertools.count()
        self._monitor = threading.Thread(target=self._watch, name="worker-monitor", daemon=True)
        self.restarts = 0
        self.recycles = 0
        self.spawn_failures = 0  # in a row; a task does not wait for a worker while the last start failed
        self.last_error: str | None = None
        self.on_hello: Any = None  # called with each new worker's hello (the service checks the device is the same)

    # -- life cycle -----------------------------------------------------------------------------------
    def start(self) -> WorkerHello:
        """Start the monitor and wait for the first worker's hello (raises :class:`WorkerUnavailable`)."""
        self._monitor.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._hello is not None or self._stopping,
                                       timeout=self.limits.start_timeout_s):
                raise WorkerUnavailable(f"the measurement worker did not start: {self.last_error or 'timeout'}")
        assert self._hello is not None
        return self._hello

    def close(self) -> None:
        """Take no more tasks: callers waiting for a worker to come up give up (the running task goes on)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let the running task finish for up to ``timeout_s``, then stop (or kill) the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._busy, timeout=timeout_s)
            proc, busy = self._proc, self._busy
            if not busy:
                self._proc, self._ready = None, False
        if proc is not None and busy and proc.alive:
            os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]  # the task's thread sees it and cleans up
        elif proc is not None:
            proc.end(graceful=True)
        if self._monitor.is_alive():
            self._monitor.join(5.0)

    @property
    def hello(self) -> WorkerHello:
        """The latest worker's hello (available once :meth:`start` has returned)."""
        if self._hello is None:
            raise WorkerUnavailable("the measurement worker has not started yet", retry_after_s=5)
        return self._hello

    def _held(self) -> bool:
        hold = self.limits.restart_hold_file
        return hold is not None and hold.exists() and self._hello is not None

    def _spawn(self) -> tuple[WorkerProcess, WorkerHello] | None:
        """A new worker process and its hello, or ``None`` if it did not start (the monitor retries later)."""
        fail = self.limits.spawn_fail_file
        try:
            if fail is not None and fail.exists():
                raise OSError(f"starting a worker is made to fail while {fail} exists (test hook)")
            proc = WorkerProcess(self._ctx, self.config)
        except Exception as exc:  # noqa: BLE001 - no process, no worker: the monitor retries with back-off
            return self._spawn_failed(f"the worker process could not be started ({type(exc).__name__}: {exc})")
        hello = proc.wait_hello(self.limits.start_timeout_s)
        if hello is None:
            proc.end(graceful=False)
            return self._spawn_failed(f"the worker did not say hello ({proc.exit_text()})")
        if self.on_hello is not None:
            try:
                self.on_hello(hello)
            except BaseException:
                proc.end(graceful=False)
                raise
        self.spawn_failures = 0
        return proc, hello

    def _spawn_failed(self, why: str) -> None:
        log.error("measurement worker failed to start: %s", why)
        with self._cond:
            self.last_error, self.spawn_failures = why, self.spawn_failures + 1
            self._cond.notify_all()  # a task waiting for a worker gives up rather than waiting out its timeout

    def _install(self, proc: WorkerProcess, hello: WorkerHello) -> WorkerProcess | None:
        """Make ``proc`` the worker; returns the one it replaces (or ``proc`` itself when stopping)."""
        with self._cond:
            if self._stopping:
                return proc
            old, self._proc, self._hello, self._ready = self._proc, proc, hello, True
            self.last_error = None
            self._cond.notify_all()
        log.log(logging.WARNING if old is None and self.restarts else logging.INFO,  # a restart after a death
                "measurement worker %d ready (%.0f MB resident)", hello.pid, hello.rss_bytes / 2**20)
        return old

    def _takes_tasks(self) -> bool:
        """A worker is up, alive, idle and not due for recycling (a due one is recycled by the monitor first, so
        that a steady stream of tasks cannot postpone it for ever). A worker that died idle takes no task even
        before the monitor has buried it: the task waits for its successor instead of failing with it."""
        proc = self._proc
        return (self._ready and not self._busy and proc is not None and proc.alive
                and not self._due_for_recycling(proc))

    def _cannot_start(self) -> bool:
        """No worker, and the last start failed (not merely held by the test hook): fail now, not after a wait."""
        return (self._proc is None and self.spawn_failures > 0) or not self._monitor.is_alive()

    def _due_for_recycling(self, proc: WorkerProcess) -> bool:
        limits = self.limits
        return ((limits.recycle_tasks > 0 and proc.tasks_done >= limits.recycle_tasks)
                or (limits.recycle_s > 0 and time.monotonic() - proc.started >= limits.recycle_s))

    def _recycle(self, proc: WorkerProcess) -> bool:
        """Replace an idle worker (claimed by the caller) by a fresh one, started first so that there is no gap."""
        log.info("recycling measurement worker %s after %d tasks, %.0f s", proc.pid, proc.tasks_done,
                 time.monotonic() - proc.started)
        spawned = None  # also when starting raised: the finally below hands the old one back all the same
        try:
            if (spawned := self._spawn()) is not None:
                replaced = self._install(*spawned)
                if replaced is not None:
                    replaced.end(graceful=True)
                self.recycles += 1
        finally:
            if spawned is None:  # keep measuring with the old one rather than not at all; try again later
                log.warning("recycling failed: the measurement worker %s goes on", proc.pid)
                proc.started, proc.tasks_done = time.monotonic(), 0
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return spawned is not None

    def _next_action(self) -> tuple[WorkerProcess | None, str]:
        """What the monitor does next: bury a worker that died idle, recycle one that is due, start one, wait."""
        with self._cond:
            proc = self._proc
            if proc is None:
                return None, "hold" if self._held() else "start"
            if self._busy:
                return proc, "wait"
            if not proc.alive:
                self._proc, self._ready = None, False
                return proc, "bury"
            if self._due_for_recycling(proc):
                self._busy = True  # it takes no task until its successor is up
                return proc, "recycle"
            return proc, "wait"

    def _start_new(self) -> bool:
        spawned = self._spawn()
        if spawned is None:
            return False
        replaced = self._install(*spawned)
        if replaced is spawned[0]:  # the server stopped meanwhile
            replaced.end(graceful=True)
        return True

    def _watch(self) -> None:
        """Start the worker, restart it when it dies, recycle it between tasks when due; an unexpected error is
        logged and retried with back-off, so that the monitor outlives it."""
        backoff_s = 1.0
        while not self._stopping:
            try:
                backoff_s = self._watch_once(backoff_s)
            except Exception as exc:  # noqa: BLE001 - the monitor must not die: no worker would ever start again
                log.exception("the worker monitor failed; retrying in %.0f s", backoff_s)
                self.last_error = f"the worker monitor failed ({type(exc).__name__}: {exc})"
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)

    def _watch_once(self, backoff_s: float) -> float:
        """One step of the monitor; returns the next back-off."""
        proc, action = self._next_action()
        if action == "wait":
            if proc is not None and proc.alive:
                wait([proc.process.sentinel], timeout=0.5)
            else:  # died under a task: the task's thread reports it and hands the process back
                with self._cond:
                    self._cond.wait(self.limits.poll_s)
        elif action == "hold":
            time.sleep(self.limits.poll_s)
        elif action == "bury" and proc is not None:
            self.restarts += 1
            self.last_error = f"the worker died while idle ({proc.exit_text()})"
            log.error("measurement worker %s died while idle (%s)", proc.pid, proc.exit_text())
            proc.end(graceful=False)
        else:
            started = self._recycle(proc) if action == "recycle" and proc is not None else self._start_new()
            if started or self._stopping:
                backoff_s = 1.0
            else:  # it did not start: try again later, less and less often
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)
        return backoff_s

    # -- tasks ----------------------------------------------------------------------------------------
    def call(self, task: Any, *, timeout_s: float | None = None) -> Any:
        """Run ``task`` in the worker and return its result (one caller at a time: the queue's thread).

        Raises :class:`TaskError` when the task raised, :class:`TaskKilled` when it ran over a limit or the
        worker died under it, :class:`WorkerUnavailable` when no worker came up in time.
        """
        with self._cond:
            up = self._cond.wait_for(lambda: self._closing or self._stopping or self._takes_tasks()
                                     or self._cannot_start(), timeout=self.limits.start_timeout_s)
            if self._closing or self._stopping:
                raise ServerStopping("the server is stopping", retry_after_s=10)
            up = up and self._takes_tasks()
            if not up or self._proc is None:
                raise WorkerUnavailable(f"{task.label}: the measurement worker is not running "
                                        f"({self.last_error or 'restarting'}); retry later", retry_after_s=10)
            proc, self._busy, self._current = self._proc, True, (task.label, time.monotonic())
        try:
            return self._exchange(proc, task, timeout_s or self.limits.task_timeout_s)
        finally:
            with self._cond:
                self._busy, self._current = False, None
                self._cond.notify_all()

    def _exchange(self, proc: WorkerProcess, task: Any, timeout_s: float) -> Any:
        task_id = next(self._ids)
        start = time.monotonic()
        try:
            proc.tasks.send((task_id, task))
        except (OSError, ValueError):
            self._lost(proc, task)
        memory_limit = self.limits.task_memory_bytes
        while True:
            if proc.tasks.poll(self.limits.poll_s):
                try:
                    reply_id, ok, payload = proc.tasks.recv()
                except (EOFError, OSError):
                    self._lost(proc, task)
                proc.tasks_done += 1
                if reply_id != task_id:
                    raise RuntimeError(f"the worker answered task {reply_id} to task {task_id}")
                if ok:
                    return payload
                failure: TaskFailure = payload
                log.error("%s raised in the worker: %s: %s\n%s", task.label, failure.type, failure.message,
                          failure.traceback.rstrip())
                raise TaskError(task.label, failure.type, failure.message, failure.traceback)
            if not proc.alive:
                self._lost(proc, task)
            if time.monotonic() - start > timeout_s:
                self._kill(proc, task, "timeout", f"ran past the task time limit of {timeout_s:g} s "
                                                  "(LATENCY_SERVER_TASK_TIMEOUT_S); the worker was killed")
            resident = rss_bytes(proc.pid)  # type: ignore[arg-type]
            if resident is not None and resident > memory_limit:
                self._kill(proc, task, "memory", f"the worker reached {resident / 2**20:.0f} MB resident, over the "
                                                 f"task memory limit {memory_limit / 2**20:.0f} MB "
                                                 "(LATENCY_SERVER_TASK_MEMORY_MB); the worker was killed")

    def _forget(self, proc: WorkerProcess) -> None:
        with self._cond:
            if self._proc is proc:
                self._proc, self._ready = None, False
            if not self._stopping:
                self.restarts += 1
            self._cond.notify_all()

    def _kill(self, proc: WorkerProcess, task: Any, reason: str, why: str) -> None:
        self._forget(proc)
        proc.end(graceful=False)
        if self._stopping:
            raise ServerStopping(f"{task.label}: stopped with the server; measured again after a restart",
                                 retry_after_s=10)
        log.error("%s: %s", task.label, why)
        self.last_error = f"{reason}: {task.label}"
        raise TaskKilled(task.label, reason, why)

    def _lost(self, proc: WorkerProcess, task: Any) -> None:
        proc.process.join(5.0)
        self._kill(proc, task, "crash", f"the worker died while measuring ({proc.exit_text()})")

    # -- state ----------------------------------------------------------------------------------------
    def ping(self, timeout_s: float) -> dict[str, Any] | None:
        """The worker's answer to a ping (pid, resident bytes, tasks), or ``None`` when it does not answer."""
        proc = self._proc
        if proc is None or not proc.alive:
            return None
        return proc.ping(next(self._ids), timeout_s)

    def status(self, ping_timeout_s: float = 2.0) -> WorkerStatus:
        """The worker's state now (pings it)."""
        with self._cond:
            proc, busy, ready, current = self._proc, self._busy, self._ready, self._current
            stopping = self._stopping
        alive = proc is not None and proc.alive
        answer = self.ping(ping_timeout_s) if alive else None
        state = ("stopped" if stopping else "busy" if busy and current else "ready" if ready and alive
                 else "starting" if alive else "down")
        now = time.monotonic()
        return WorkerStatus(
            state=state, alive=alive, answered_ping=answer is not None, pid=proc.pid if proc else None,
            rss_bytes=answer.get("rss_bytes") if answer else None, tasks=proc.tasks_done if proc else 0,
            restarts=self.restarts, recycles=self.recycles, uptime_s=now - proc.started if proc else None,
            current_task=current[0] if current else None, current_task_s=now - current[1] if current else None,
            last_error=self.last_error, monitor_alive=self._monitor.is_alive() or stopping,
            spawn_failures=self.spawn_failures,
        )
