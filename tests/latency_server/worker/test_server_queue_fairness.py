"""The measurement queue under load from several clients: separate caps for builds and interactive work, turns
between clients, a per-client cap, and abandoned tasks leaving the queue at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from latency_server.errors import QueueFull
from latency_server.worker.queue import BACKGROUND, MeasurementQueue


@pytest.fixture
def blocked() -> Iterator[tuple[MeasurementQueue, threading.Event]]:
    """A started queue whose thread is busy with a task that waits for the returned event."""
    q = MeasurementQueue()
    q.start()
    gate = threading.Event()
    running = threading.Event()
    q.submit("blocker", lambda: running.set() or gate.wait(), client="setup")
    assert running.wait(10)
    yield q, gate
    gate.set()
    q.stop()


def test_a_full_build_queue_does_not_block_interactive_work_nor_the_other_way(
        blocked: tuple[MeasurementQueue, threading.Event]) -> None:
    q, gate = blocked
    q.max_tasks, q.max_background = 3, 2
    for i in range(2):
        q.submit(("build", i), lambda: None, priority=BACKGROUND, owned=True)
    with pytest.raises(QueueFull, match="LATENCY_SERVER_QUEUE_MAX_BACKGROUND"):
        q.submit(("build", 2), lambda: None, priority=BACKGROUND, owned=True)
    with pytest.raises(QueueFull):
        q.reserve(1, priority=BACKGROUND)
    interactive = [q.submit(("block", i), lambda i=i: i) for i in range(2)]  # the blocker is the third
    with pytest.raises(QueueFull, match="LATENCY_SERVER_MAX_QUEUED_TASKS"):
        q.submit(("block", 2), lambda: None)
    q.reserve(0)
    gate.set()
    assert [f.result(5) for f in interactive] == [0, 1]


def test_clients_take_turns(blocked: tuple[MeasurementQueue, threading.Event]) -> None:
    q, gate = blocked
    order: list[str] = []
    for i in range(50):
        q.submit(("greedy", i), lambda i=i: order.append(f"greedy{i}"), client="greedy")
    single = q.submit("single", lambda: order.append("single"), client="modest")
    gate.set()
    single.result(5)
    q.submit("end", lambda: None, client="greedy").result(5)
    assert order.index("single") <= 1, order[:5]  # served after at most one of the greedy client's tasks
    assert order[-1] == "greedy49" and len(order) == 51


def test_builds_of_two_clients_interleave(blocked: tuple[MeasurementQueue, threading.Event]) -> None:
    q, gate = blocked
    order: list[str] = []
    for client in ("a", "b"):
        for i in range(3):
            q.submit((client, i), lambda c=client: order.append(c), priority=BACKGROUND, owned=True, client=client)
    gate.set()
    q.submit("end", lambda: None, priority=BACKGROUND).result(5)
    assert order == ["a", "b", "a", "b", "a", "b"]


def test_a_client_has_a_cap_of_its_own(blocked: tuple[MeasurementQueue, threading.Event]) -> None:
    q, _ = blocked
    q.max_per_client = 2
    q.submit("a1", lambda: None, client="a")
    q.submit("a2", lambda: None, client="a")
    assert q.submit("a2", lambda: None, client="a") is not None  # merged: no room needed
    with pytest.raises(QueueFull, match="LATENCY_SERVER_QUEUE_MAX_PER_CLIENT") as full:
        q.submit("a3", lambda: None, client="a")
    assert full.value.status_code == 429 and full.value.retry_after_s >= 1
    q.submit("b1", lambda: None, client="b")  # another client is not affected


def test_an_abandoned_task_leaves_the_queue_at_once(blocked: tuple[MeasurementQueue, threading.Event]) -> None:
    q, _ = blocked
    q.max_tasks = 3
    for i in range(100):  # submit and disconnect in a loop
        q.release(q.submit(("gone", i), lambda: None, client="looper"))
    assert q.depth == 1 and q.abandoned == 100
    assert q.waiting() == 0  # nothing left for the thread to skip later
    q.submit("x", lambda: None)
    q.submit("y", lambda: None)  # the room of the abandoned ones is free again


def test_a_promoted_build_task_keeps_its_turn_order(blocked: tuple[MeasurementQueue, threading.Event]) -> None:
    q, gate = blocked
    order: list[str] = []
    build = q.submit("k", lambda: order.append("k"), priority=BACKGROUND, owned=True, client="builder")
    q.submit("other", lambda: order.append("other"), priority=BACKGROUND, owned=True, client="builder")
    assert q.submit("k", lambda: order.append("never"), client="asker") is build
    gate.set()
    q.submit("end", lambda: None, priority=BACKGROUND).result(5)
    assert order == ["k", "other"]
