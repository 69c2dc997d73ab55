"""The server's health as ``/healthz`` reports it: worker liveness, database reachability, queue depth.

The server is healthy when its measurement worker is alive and answers a ping, no task has run past its time limit
plus a grace (the kill that should have ended it did not), the thread that restarts the worker is alive, and the
database answers a ``SELECT 1`` and accepts a write (an ``UPDATE`` that matches no row, rolled back), each within
a short timeout. Anything else is reported with its reason. The database is probed on a thread of its own, so
that a database that hangs costs one thread, not one per health check.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from latency_server.worker.queue import MeasurementQueue
from latency_server.worker.supervisor import MeasurementWorker, WorkerStatus

__all__ = ["DatabaseProbe", "Health", "check_health"]

log = logging.getLogger(__name__)


class DatabaseProbe:
    """``SELECT 1`` with a timeout, at most one in flight."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="database-probe")
        self._inflight: Future | None = None

    def _select_one(self) -> str | None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            try:  # a write that changes nothing: refused by a read-only file, role or full disk
                conn.execute(text("UPDATE fingerprints SET id = id WHERE 1 = 0"))
            except OperationalError as exc:
                log.warning("database health check: not writable: %s", exc.orig)
                return "not writable"
            finally:
                conn.rollback()
        return None

    def error(self, timeout_s: float) -> str | None:
        """``None`` when the database answered, else why not (no exception text: it is logged)."""
        if self._inflight is not None and not self._inflight.done():
            return f"no answer within {timeout_s:g} s (an earlier check is still waiting)"
        self._inflight = self._pool.submit(self._select_one)
        try:
            return self._inflight.result(timeout_s)
        except FutureTimeout:
            return f"no answer within {timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable; the details go to the log
            log.warning("database health check failed: %s: %s", type(exc).__name__, exc)
            return f"unreachable ({type(exc).__name__})"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


#: how long past its time limit a task may still run before the worker counts as stuck (its kill takes a moment)
STUCK_GRACE_S = 30.0


@dataclass(frozen=True)
class Health:
    worker: WorkerStatus
    database_error: str | None
    queue_depth: int
    queue_capacity: int
    oldest_age_s: float | None
    task_timeout_s: float | None = None

    @property
    def reasons(self) -> list[str]:
        """Why the server is not healthy (empty when it is)."""
        worker, out = self.worker, []
        if not worker.monitor_alive:
            out.append("the worker monitor thread has died: no worker will be started again")
        if not worker.alive:
            out.append(f"the measurement worker is down ({worker.last_error or 'starting'})")
        elif not worker.answered_ping:
            out.append("the measurement worker does not answer a ping")
        limit = self.task_timeout_s
        if limit is not None and worker.current_task_s is not None and worker.current_task_s > limit + STUCK_GRACE_S:
            out.append(f"the measurement worker is stuck: {worker.current_task} has run {worker.current_task_s:.0f} s, "
                       f"past its time limit of {limit:g} s (LATENCY_SERVER_TASK_TIMEOUT_S)")
        if self.database_error is not None:
            out.append(f"the database is {self.database_error}")
        return out

    @property
    def ok(self) -> bool:
        return not self.reasons


def check_health(worker: MeasurementWorker, probe: DatabaseProbe, queue: MeasurementQueue,
                 timeout_s: float, task_timeout_s: float | None = None) -> Health:
    """Ping the worker, probe the database, read the queue (blocks up to about twice ``timeout_s``)."""
    return Health(worker=worker.status(timeout_s), database_error=probe.error(timeout_s), queue_depth=queue.depth,
                  queue_capacity=queue.max_tasks, oldest_age_s=queue.oldest_age_s(), task_timeout_s=task_timeout_s)
