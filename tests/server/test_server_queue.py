"""The single measurement worker: one at a time, identical pending requests merged, priorities, jobs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from latency_server.queue import BACKGROUND, INTERACTIVE, Job, MeasurementQueue


@pytest.fixture
def worker() -> MeasurementQueue:
    q = MeasurementQueue()
    q.start()
    yield q
    q.stop()


def test_identical_pending_tasks_run_once(worker: MeasurementQueue) -> None:
    gate = threading.Event()
    calls: list[str] = []
    worker.submit("blocker", gate.wait)
    futures = [worker.submit("same", lambda: calls.append("x") or 42) for _ in range(20)]
    assert len({id(f) for f in futures}) == 1 and worker.depth == 2
    gate.set()
    assert [f.result(5) for f in futures] == [42] * 20 and calls == ["x"]


def test_never_two_at_once(worker: MeasurementQueue) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def task() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1

    submitters = [threading.Thread(target=lambda i=i: worker.submit(i, task).result(10)) for i in range(30)]
    for t in submitters:
        t.start()
    for t in submitters:
        t.join()
    assert peak == 1 and worker.executed == 30


def test_interactive_overtakes_background(worker: MeasurementQueue) -> None:
    gate = threading.Event()
    order: list[str] = []
    worker.submit("blocker", gate.wait)
    worker.submit("b1", lambda: order.append("b1"), priority=BACKGROUND)
    worker.submit("b2", lambda: order.append("b2"), priority=BACKGROUND)
    worker.submit("i1", lambda: order.append("i1"), priority=INTERACTIVE)
    # an interactive request for a pending background task promotes it
    promoted = worker.submit("b2", lambda: order.append("never"), priority=INTERACTIVE)
    gate.set()
    promoted.result(5)
    worker.submit("end", lambda: None).result(5)
    assert order == ["i1", "b2", "b1"]


def test_errors_reach_the_caller_and_the_worker_survives(worker: MeasurementQueue) -> None:
    def boom() -> None:
        raise RuntimeError("bad block")

    with pytest.raises(RuntimeError, match="bad block"):
        worker.submit("x", boom).result(5)
    assert worker.submit("y", lambda: 1).result(5) == 1


def test_stop_cancels_pending() -> None:
    q = MeasurementQueue()
    pending = q.submit("never-started", lambda: 1)
    q.stop()
    assert pending.cancelled()
    with pytest.raises(RuntimeError):
        q.submit("late", lambda: 1)


def test_job_progress_and_failure() -> None:
    finished: list[Job] = []
    ok, bad, ok2 = Future(), Future(), Future()
    job = Job(kind="lut", total=5, done=2, on_finish=finished.append)
    job.track([("a", ok), ("b", bad), ("c", ok2)])
    assert job.state == "queued"
    ok.set_result(1)
    assert job.state == "running" and job.done == 3
    bad.set_exception(RuntimeError("nope"))
    assert job.state == "running" and job.error == "b: RuntimeError: nope"  # the others still run
    ok2.set_result(1)
    assert job.state == "failed" and job.done == 4 and finished == [job]
    empty = Job(kind="lut", total=0)
    empty.track([])
    assert empty.state == "done"
