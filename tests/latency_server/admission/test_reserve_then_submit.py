"""A request whose blocks no longer fit the queue part-way (another request took the room between the check and
the queueing) leaves nothing of its own behind: the blocks it had queued are dropped and never run."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from latency_server.admission.measurer import Measurer
from latency_server.config import Settings
from latency_server.errors import QueueFull
from latency_server.store.crud import Store
from latency_server.store.database import upgrade_database
from latency_server.worker.queue import MeasurementQueue
from latency_server.worker.tasks import WorkerHello
from shared.api_schemas import MeasureSettings
from shared.search_space import HARDCORENAS


class _RacedQueue(MeasurementQueue):
    """A real queue in which another request takes the last room after the first of our submissions."""

    def __init__(self) -> None:
        super().__init__(max_tasks=100)
        self.submitted = 0

    def submit(self, key: Hashable, fn: Any, **kwargs: Any) -> Future:
        self.submitted += 1
        if self.submitted == 3:  # the blocker, our first block, then our second
            self.max_tasks = self.depth  # full now
        return super().submit(key, fn, **kwargs)


def test_blocks_queued_before_queue_full_do_not_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_database(url)
    queue = _RacedQueue()
    gate = threading.Event()
    queue.start()
    queue.submit("blocker", gate.wait)  # keeps the queue's thread busy meanwhile
    worker = SimpleNamespace(hello=WorkerHello(pid=1, backends=["onnxruntime"], hardware={"cpu": "test"},
                                               software={"onnxruntime": "test"}))
    measurer = Measurer(Settings(db=url), Store(url), queue, worker)  # type: ignore[arg-type]
    keys = HARDCORENAS.searchable_keys(32)[:3]
    try:
        with pytest.raises(QueueFull):
            measurer.lookup_blocks(MeasureSettings(), keys)
        assert queue.depth == 1 and queue.waiting() == 0  # only the blocker: the first block was dropped
    finally:
        gate.set()
        queue.stop()
