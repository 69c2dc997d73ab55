"""The server's health as ``/healthz`` reports it: worker liveness, database reachability, queue depth.

The server is healthy when its measurement worker is alive and answers a ping, and the database answers a
``SELECT 1``, each within a short timeout. The database is probed on a thread of its own, so that a database
that hangs costs one thread, not one per health check.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from sqlalchemy import Engine, text

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

    def _select_one(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def error(self, timeout_s: float) -> str | None:
        """``None`` when the database answered, else why not (no exception text: it is logged)."""
        if self._inflight is not None and not self._inflight.done():
            return f"no answer within {timeout_s:g} s (an earlier check is still waiting)"
        self._inflight = self._pool.submit(self._select_one)
        try:
            self._inflight.result(timeout_s)
        except FutureTimeout:
            return f"no answer within {timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable; the details go to the log
            log.warning("database health check failed: %s: %s", type(exc).__name__, exc)
            return f"unreachable ({type(exc).__name__})"
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Health:
    worker: WorkerStatus
    database_error: str | None
    queue_depth: int
    queue_capacity: int
    oldest_age_s: float | None

    @property
    def ok(self) -> bool:
        return self.worker.alive and self.worker.answered_ping and self.database_error is None


def check_health(worker: MeasurementWorker, probe: DatabaseProbe, queue: MeasurementQueue,
                 timeout_s: float) -> Health:
    """Ping the worker, probe the database, read the queue (blocks up to about twice ``timeout_s``)."""
    return Health(worker=worker.status(timeout_s), database_error=probe.error(timeout_s), queue_depth=queue.depth,
                  queue_capacity=queue.max_tasks, oldest_age_s=queue.oldest_age_s())
