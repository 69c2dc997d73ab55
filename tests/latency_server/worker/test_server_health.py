"""Honest health: the reasons that turn ``/healthz`` to 503 (a stuck worker, a dead monitor, a read-only
database), a cancelled job, and a worker monitor that outlives a failure while recycling (real processes)."""

from __future__ import annotations

import dataclasses
import sqlite3
from concurrent.futures import Future
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from latency_server.health import STUCK_GRACE_S, DatabaseProbe, Health
from latency_server.worker.child import WorkerConfig
from latency_server.worker.jobs import Job
from latency_server.worker.stats import Method
from latency_server.worker.supervisor import MeasurementWorker, WorkerLimits, WorkerStatus
from latency_server.worker.tasks import BlockTask
from shared.api_schemas import MeasureSettings
from shared.search_space import HARDCORENAS

READY = WorkerStatus(state="ready", alive=True, answered_ping=True, pid=1, rss_bytes=1, tasks=0, restarts=0,
                     recycles=0, uptime_s=1.0, current_task=None, current_task_s=None, last_error=None)


def _health(worker: WorkerStatus, database_error: str | None = None) -> Health:
    return Health(worker=worker, database_error=database_error, queue_depth=0, queue_capacity=1,
                  oldest_age_s=None, task_timeout_s=60.0)


def test_a_stuck_worker_or_a_dead_monitor_is_unhealthy() -> None:
    assert _health(READY).ok and _health(READY).reasons == []
    running = dataclasses.replace(READY, state="busy", current_task="block x", current_task_s=59.0)
    assert _health(running).ok  # within its limit
    stuck = dataclasses.replace(running, current_task_s=60.0 + STUCK_GRACE_S + 1)
    assert not _health(stuck).ok and "stuck" in _health(stuck).reasons[0]
    orphan = dataclasses.replace(READY, monitor_alive=False)
    assert not _health(orphan).ok and "monitor" in _health(orphan).reasons[0]
    assert "not writable" in _health(READY, "not writable").reasons[0]


def test_a_read_only_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE fingerprints (id TEXT PRIMARY KEY)")
    writable = DatabaseProbe(create_engine(f"sqlite:///{path}"))
    read_only = DatabaseProbe(create_engine(f"sqlite:///file:{path}?mode=ro&uri=true"))
    try:
        assert writable.error(10.0) is None
        assert read_only.error(10.0) == "not writable"
    finally:
        writable.close()
        read_only.close()


def test_a_cancelled_job_stays_cancelled() -> None:
    steps = [Future() for _ in range(3)]
    cancelled: list[Job] = []
    job = Job(kind="lut", total=3, on_cancel=cancelled.append)
    job.track([(str(i), f) for i, f in enumerate(steps)])
    steps[0].set_result(1)
    assert job.cancel() and job.state == "cancelled" and cancelled == [job] and job.finished
    steps[1].cancel()
    steps[2].set_result(1)
    assert job.state == "cancelled" and job.error is None and job.finished_at is not None
    assert not job.cancel()  # ended already


@pytest.mark.slow  # real worker processes
def test_the_monitor_survives_a_failure_while_recycling() -> None:
    hellos = 0

    def device_check(_hello: object) -> None:  # the service checks each new worker's device; here it fails
        nonlocal hellos
        hellos += 1
        if hellos > 1:
            raise RuntimeError("device check failed")

    worker = MeasurementWorker(WorkerConfig(), WorkerLimits(recycle_tasks=1, start_timeout_s=120.0))
    worker.on_hello = device_check
    worker.start()
    try:
        task = BlockTask(MeasureSettings(), str(HARDCORENAS.searchable_keys(32)[0]),
                         Method(warmup=10, min_repeats=3, budget_s=0.0))
        worker.call(task)  # the worker is due for recycling; its successor fails the device check
        worker.call(task)  # the old worker goes on instead of the queue stalling for ever
        status = worker.status()
        assert status.monitor_alive and hellos >= 2
        assert status.alive and status.answered_ping
    finally:
        worker.stop()
