"""The worker's child process: the only place that builds models and times them.

:func:`serve` is the child's main loop (started by :mod:`~latency_server.worker.process`): it says hello with
what this device runs, then receives one task at a time over a pipe, runs it on the :class:`TaskRunner` and
sends back its result or a :class:`~latency_server.worker.tasks.TaskFailure`. A second pipe answers pings from a
thread, also while a task runs, so the server can tell a busy worker from a dead one. The runner keeps one
backend per (runtime, thread count), with their export caches, for the life of the process: recycling the
worker releases them all.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

import torch

from latency_server.worker.backends import Backend, available_backends, make_backend
from latency_server.worker.backends.onnxruntime import runtime_settings
from latency_server.worker.child import WorkerConfig, rss_bytes
from latency_server.worker.fingerprint import hardware_info, software_info
from latency_server.worker.model_runner import inspect_model, measure_model
from latency_server.worker.model_tasks import ModelInspectTask, ModelTask
from latency_server.worker.tasks import BlockResult, BlockTask, NetworksResult, NetworkTask, TaskFailure, WorkerHello
from latency_server.worker.timing import NetworkSet, measure_block
from shared.api_schemas import MeasureSettings
from shared.block_key import BlockKey

__all__ = ["TaskRunner", "serve"]

log = logging.getLogger(__name__)


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with plain ``str`` values: ``torch.__version__`` is a ``str`` subclass whose unpickling would
    import torch into the server."""
    return {key: str(value) if isinstance(value, str) else value for key, value in info.items()}


class TaskRunner:
    """Runs measurement tasks with backends kept between tasks (least recently used ones dropped)."""

    def __init__(self, config: WorkerConfig, discipline: dict[str, Any] | None = None) -> None:
        self.config = config
        self.discipline = discipline or {}
        self._backends: OrderedDict[tuple[str, int], Backend] = OrderedDict()
        torch.set_num_threads(config.default_threads)

    def hello(self) -> WorkerHello:
        # how the worker holds the CPU is reported, not hashed: the CPU set it ends with is (``cpu_affinity``)
        software = {**software_info(), **runtime_settings(), "worker_discipline": self.discipline}
        return WorkerHello(pid=os.getpid(), backends=available_backends(), hardware=_plain(hardware_info()),
                           software=_plain(software), rss_bytes=rss_bytes(os.getpid()) or 0)

    def backend(self, measuring: MeasureSettings) -> Backend:
        key = (measuring.backend, measuring.threads)
        backend = self._backends.get(key)
        if backend is None:
            backend = make_backend(measuring.backend, measuring.threads, onnx_exporter=self.config.onnx_exporter)
            self._backends[key] = backend
            while len(self._backends) > self.config.max_backends:
                self._backends.popitem(last=False)
        self._backends.move_to_end(key)
        return backend

    def run(self, task: Any) -> Any:
        """The result of one task."""
        if isinstance(task, BlockTask):
            return self.measure_block(task)
        if isinstance(task, NetworkTask):
            return self.measure_networks(task)
        if isinstance(task, ModelInspectTask):
            return inspect_model(task)
        if isinstance(task, ModelTask):
            return measure_model(self.backend(task.measuring), task, lambda b: _plain(b.describe()))
        raise TypeError(f"the measurement worker has no task type {type(task).__name__}")

    def measure_block(self, task: BlockTask) -> BlockResult:
        backend = self.backend(task.measuring)
        stats = measure_block(backend, BlockKey.parse(task.key), task.method, batch_size=task.measuring.batch_size)
        return BlockResult(stats, _plain(backend.describe()))

    def measure_networks(self, task: NetworkTask) -> NetworksResult:
        backend = self.backend(task.measuring)
        nets = NetworkSet(backend, list(task.archs), task.resolution, task.method,
                          batch_size=task.measuring.batch_size, num_classes=task.num_classes, seed=task.seed,
                          first_round=task.first_round, widths=task.widths)
        for _ in range(max(1, task.rounds)):
            nets.measure_round()
        return NetworksResult(nets.figures(), _plain(backend.describe()), nets.pooled)


def _answer_pings(control: Connection, busy: dict[str, Any]) -> None:
    """Answer each ping with the worker's state; exit the process when the server's end is gone."""
    while True:
        try:
            ping_id = control.recv()
            control.send({"id": ping_id, "pid": os.getpid(), "rss_bytes": rss_bytes(os.getpid()), **busy})
        except (EOFError, OSError):
            os._exit(0)  # the server is gone (or stopped us): nothing may keep measuring on its own


def serve(tasks: Connection, control: Connection, config: WorkerConfig,
          discipline: dict[str, Any] | None = None) -> None:
    """The worker's main loop: hello, then (task id, task) -> (task id, ok, result or TaskFailure)."""
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s worker %(name)s: %(message)s")
    busy: dict[str, Any] = {"tasks": 0}
    threading.Thread(target=_answer_pings, args=(control, busy), name="worker-pings", daemon=True).start()
    runner = TaskRunner(config, discipline)
    tasks.send(runner.hello())
    while True:
        try:
            message = tasks.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, task = message
        try:
            reply = (task_id, True, runner.run(task))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the server, which logs it
            reply = (task_id, False, TaskFailure(type(exc).__name__, str(exc), traceback.format_exc()))
        busy["tasks"] += 1
        try:
            tasks.send(reply)
        except (EOFError, OSError):
            return
