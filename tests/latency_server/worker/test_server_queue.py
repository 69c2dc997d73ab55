"""The measurement queue: one at a time, identical pending requests merged, priorities, bounds, abandoned tasks,
jobs and their registry, and the failure log."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from latency_server.admission.failures import FailureLog
from latency_server.errors import QueueFull, RecentFailure, ServerStopping, TaskError, TaskKilled
from latency_server.worker.jobs import JobRegistry
from latency_server.worker.queue import BACKGROUND, INTERACTIVE, Job, MeasurementQueue


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


def test_stop_fails_pending_with_server_stopping() -> None:
    q = MeasurementQueue()
    pending = q.submit("never-started", lambda: 1)
    q.stop()
    with pytest.raises(ServerStopping):
        pending.result(0)
    with pytest.raises(ServerStopping):
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
    assert job.state == "running" and job.error.startswith("b: error;") and job.request_id  # the others still run
    ok2.set_result(1)
    assert job.state == "failed" and job.done == 4 and finished == [job]
    empty = Job(kind="lut", total=0)
    empty.track([])
    assert empty.state == "done"


def test_the_queue_is_bounded_and_merged_submissions_take_no_room(worker: MeasurementQueue) -> None:
    worker.max_tasks = 2
    gate = threading.Event()
    worker.submit("blocker", gate.wait)
    second = worker.submit("b", lambda: 2)
    assert worker.submit("b", lambda: 3) is second  # merged: no room needed
    with pytest.raises(QueueFull) as full:
        worker.submit("c", lambda: 4)
    assert full.value.status_code == 429 and full.value.retry_after_s >= 1
    assert "LATENCY_SERVER_MAX_QUEUED_TASKS" in full.value.msg
    with pytest.raises(QueueFull):
        worker.reserve(1)
    gate.set()
    assert second.result(5) == 2


def test_a_task_nobody_waits_for_is_not_started(worker: MeasurementQueue) -> None:
    gate = threading.Event()
    calls: list[str] = []
    worker.submit("blocker", gate.wait)
    first = worker.submit("x", lambda: calls.append("x"))
    again = worker.submit("x", lambda: calls.append("never"))  # a second request waits for the same task
    worker.release(first)
    assert not first.cancelled()  # the other request still waits
    worker.release(again)
    assert first.cancelled() and worker.abandoned == 1
    owned = worker.submit("step", lambda: calls.append("step"), owned=True)  # a job's step
    waiting = worker.submit("step", lambda: calls.append("never"))  # and a request for the same measurement
    worker.release(waiting)
    assert not owned.cancelled()  # the job still wants it
    worker.disown(owned)  # the job ended early and nobody else waits: not started
    assert owned.cancelled() and worker.abandoned == 2
    gate.set()
    worker.submit("end", lambda: None).result(5)
    assert calls == []


def test_the_running_task_and_the_oldest_age_are_reported(worker: MeasurementQueue) -> None:
    gate = threading.Event()
    assert worker.current() is None and worker.oldest_age_s() is None
    running = worker.submit("blocker", gate.wait, label="block under test")
    worker.submit("next", lambda: None)
    while worker.current() is None:
        time.sleep(0.01)
    label, running_s = worker.current()
    assert label == "block under test" and running_s >= 0 and worker.oldest_age_s() >= 0 and worker.depth == 2
    gate.set()
    running.result(5)


def test_job_registry_forgets_finished_jobs_first() -> None:
    now = [0.0]
    registry = JobRegistry(max_jobs=2, ttl_s=60.0, clock=lambda: now[0])
    running = Job(kind="lut", total=1)
    registry.add(running)
    running.track([("a", Future())])
    finished = []
    for _ in range(3):
        job = Job(kind="lut", total=0)
        registry.add(job)
        job.track([])
        finished.append(job)
    registry.add(Job(kind="lut", total=0))  # over the maximum: the oldest finished jobs go, the running one stays
    assert registry.get(running.id) is running and registry.get(finished[0].id) is None and len(registry) <= 3
    now[0] = 1000.0  # past the time-to-live
    assert registry.get(finished[-1].id) is None and registry.get(running.id) is running
    assert registry.active() == 2


def test_failure_log_refuses_recent_kills_until_the_cool_down_passes() -> None:
    now = [0.0]
    log = FailureLog(cooldown_s=600, clock=lambda: now[0])
    killed = TaskKilled("block x", "timeout", "ran past the task time limit of 3 s (LATENCY_SERVER_TASK_TIMEOUT_S)")
    log.record(killed, [("block", "fp", "x")])
    log.record(TaskError("block y", "RuntimeError", "boom", "tb"), [("block", "fp", "y")])
    assert log.counts == {"timeout": 1, "error": 1}
    log.refuse_if_recent(("block", "fp", "y"), "block y")  # a task that merely raised is retried
    with pytest.raises(RecentFailure) as refused:
        log.refuse_if_recent(("block", "fp", "x"), "block x", ("body", "blocks", 0))
    error = refused.value
    assert error.status_code == 504 and error.retry_after_s == 600 and error.loc == ("body", "blocks", 0)
    assert "block x" in error.msg and "LATENCY_SERVER_TASK_TIMEOUT_S" in error.msg
    assert "LATENCY_SERVER_FAILURE_COOLDOWN_S" in error.msg
    now[0] = 600.0
    log.refuse_if_recent(("block", "fp", "x"), "block x")  # cool-down over: tried again
