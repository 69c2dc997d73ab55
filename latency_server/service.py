"""The latency service: the object through which the REST layer reaches everything it measures or looks up.

:class:`LatencyService` owns the service's lifecycle (the measurement worker process, the queue that feeds it,
the store), the device fingerprint for each measuring setting (from what the worker reports: the server itself
never imports torch), the measurement method and how each figure records it, budgets and failures, the
measurement counters, the jobs of this process, and block figures (stored lookups and queued measurements).
Tables and their builds live in :attr:`LatencyService.tables` (:mod:`latency_server.tables.builds`), whole-network
measurements in :attr:`LatencyService.networks` (:mod:`latency_server.verdicts.networks`). It holds no HTTP concepts:
every measurement is a task (:mod:`latency_server.worker.tasks`) run by the worker from the single
:class:`~latency_server.worker.queue.MeasurementQueue`, and every block figure is stored as soon as it is measured (so
an interrupted table build resumes from what was stored).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from latency_server.admission.budget import Budget, DeviceSpeed, Limits
from latency_server.admission.failures import FailureLog
from latency_server.config import Settings
from latency_server.errors import TaskFailed
from latency_server.health import DatabaseProbe, Health, check_health
from latency_server.store.crud import Store, stats_of
from latency_server.tables.builds import TableBuilds
from latency_server.tables.correction import parse_features
from latency_server.verdicts.networks import NetworkMeasurements
from latency_server.worker.child import WorkerConfig
from latency_server.worker.fingerprint import DeviceFingerprint, fingerprint_for
from latency_server.worker.jobs import JobRegistry
from latency_server.worker.queue import INTERACTIVE, MeasurementQueue
from latency_server.worker.stats import Method, Stats
from latency_server.worker.supervisor import MeasurementWorker, WorkerLimits
from latency_server.worker.tasks import BlockResult, BlockTask, WorkerHello
from shared.api_schemas import MeasureSettings
from shared.block_key import BlockKey

__all__ = ["BlockFigure", "LatencyService"]

log = logging.getLogger(__name__)

#: fingerprints kept in memory (one per measuring setting asked for)
_FINGERPRINTS_KEPT = 256


@dataclass(frozen=True)
class BlockFigure:
    """A stored block figure and whether this call measured it."""

    key: BlockKey
    stats: Stats
    measured: bool


def _settings_key(measuring: MeasureSettings) -> tuple[str, int, int]:
    return (measuring.backend, measuring.threads, measuring.batch_size)


def _worker(settings: Settings) -> MeasurementWorker:
    config = WorkerConfig(onnx_exporter=settings.onnx_exporter, default_threads=settings.default_threads,
                          log_level=settings.log_level)
    limits = WorkerLimits(
        task_timeout_s=settings.task_timeout_s, task_memory_bytes=settings.task_memory_mb << 20,
        recycle_tasks=settings.worker_recycle_tasks, recycle_s=settings.worker_recycle_minutes * 60,
        start_timeout_s=settings.worker_start_timeout_s, restart_hold_file=settings.worker_restart_hold_file,
    )
    return MeasurementWorker(config, limits)


class LatencyService:
    """Measure, cache and serve latencies for this device."""

    def __init__(self, settings: Settings, store: Store, measurement_queue: MeasurementQueue | None = None,
                 worker: MeasurementWorker | None = None) -> None:
        self.settings = settings
        self.store = store
        self.queue = measurement_queue or MeasurementQueue(max_tasks=settings.max_queued_tasks)
        self.worker = worker or _worker(settings)
        self.method = Method(
            warmup=settings.warmup,
            min_repeats=settings.min_repeats,
            max_repeats=max(settings.max_repeats, settings.min_repeats),
            budget_s=settings.budget_s,
            time_scale=settings.time_scale,
        )
        store.use_method(self.method.to_dict())  # figures of other methods are neither served nor stored
        self.correction_features = parse_features(settings.correction_features)
        self.speed = DeviceSpeed(settings.assumed_macs_per_s)
        self.budget = Budget(Limits.from_settings(settings), self.speed)
        self.failures = FailureLog(settings.failure_cooldown_s)
        self.block_measurements = 0
        self.network_measurements = 0
        self.calibration_measurements = 0
        self.jobs = JobRegistry(settings.max_jobs, settings.job_ttl_s)
        self._fingerprints: OrderedDict[tuple[str, int, int], DeviceFingerprint] = OrderedDict()
        self._device: tuple[Any, Any] | None = None
        self._stop_deadline: float | None = None
        self.database_probe = DatabaseProbe(store.engine)
        self._lock = threading.Lock()
        self.tables = TableBuilds(self)
        self.networks = NetworkMeasurements(self)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker (waits for it to say what the device runs) and the queue."""
        self.worker.on_hello = self._device_reported
        self.worker.start()
        self.queue.start()

    def begin_stop(self) -> None:
        """Refuse new work and cancel what has not started (waiting requests get 503 at once); the shutdown
        time starts now."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout_s
        self.queue.close()
        self.worker.close()

    def stop(self) -> None:
        """Cancel pending work, let the running task finish within the shutdown time, stop the worker."""
        self.begin_stop()
        self.worker.stop(max(0.0, self._stop_deadline - time.monotonic()))  # type: ignore[operator]
        self.queue.stop(timeout=5.0)
        self.database_probe.close()
        self.store.close()

    def health(self) -> Health:
        """Worker liveness, database reachability, queue depth (blocks up to twice the health timeout)."""
        return check_health(self.worker, self.database_probe, self.queue, self.settings.health_timeout_s)

    def _device_reported(self, hello: WorkerHello) -> None:
        """A (re)started worker reported the device; if it changed (an upgraded library), forget the fingerprints."""
        device = (hello.hardware, hello.software)
        with self._lock:
            changed = self._device is not None and device != self._device
            self._device = device
            if changed:
                self._fingerprints.clear()
        if changed:
            log.warning("the measurement worker reports another device or software than before: %s; "
                        "figures are stored under new fingerprints from now on", hello.software)
            self.tables.forget_bodies()

    @property
    def available(self) -> list[str]:
        """Backends that run on this device (as the worker reported)."""
        return list(self.worker.hello.backends)

    # -- counters -------------------------------------------------------------------------------------
    @property
    def measurements(self) -> int:
        return self.block_measurements + self.network_measurements

    def add_counts(self, *, blocks: int = 0, networks: int = 0, calibration: int = 0) -> None:
        """Count measurements taken (any thread)."""
        with self._lock:
            self.block_measurements += blocks
            self.network_measurements += networks
            self.calibration_measurements += calibration

    # -- identity -------------------------------------------------------------------------------------
    def fingerprint(self, measuring: MeasureSettings) -> DeviceFingerprint:
        """The fingerprint for these settings (also stored in the database)."""
        key = _settings_key(measuring)
        fp = self.known_fingerprint(measuring)
        if fp is None:
            hello = self.worker.hello
            fp = fingerprint_for(measuring.backend, measuring.threads, measuring.batch_size,
                                 onnx_exporter=self.settings.onnx_exporter, hardware=hello.hardware,
                                 software=hello.software)
            self.store.ensure_fingerprint(fp)
            with self._lock:
                self._fingerprints[key] = fp
                while len(self._fingerprints) > _FINGERPRINTS_KEPT:
                    self._fingerprints.popitem(last=False)
        return fp

    def known_fingerprint(self, measuring: MeasureSettings) -> DeviceFingerprint | None:
        """The fingerprint if this process has computed it already (never blocks on the device or database)."""
        return self._fingerprints.get(_settings_key(measuring))

    def method_record(self, measuring: MeasureSettings, backend: dict[str, Any]) -> dict[str, Any]:
        """How a figure was measured (stored with it); ``backend`` is what the worker's backend described."""
        return {
            **self.method.to_dict(),
            **backend,
            "batch_size": measuring.batch_size,
            "statistic": "median",
            "unit": "ms/image",
            "measured_at": datetime.now(timezone.utc).isoformat(),
        }

    # -- running tasks --------------------------------------------------------------------------------
    def run_task(self, task: Any, failure_keys: tuple[Hashable, ...] = ()) -> Any:
        """Run ``task`` in the worker (queue thread only); a failure is counted, and a kill or crash recorded
        under ``failure_keys`` so that the same work is not retried in a loop."""
        try:
            return self.worker.call(task)
        except TaskFailed as exc:
            self.failures.record(exc, failure_keys)
            raise

    # -- blocks ---------------------------------------------------------------------------------------
    def _measure_block_task(self, measuring: MeasureSettings, fp_id: str, key: BlockKey) -> BlockFigure:
        """Measure and store one block on the queue's thread (a table build runs the same task)."""
        row = self.store.get_block(fp_id, str(key))
        if row is not None:  # stored meanwhile (by us or by another server on the same database)
            return BlockFigure(key, stats_of(row), measured=False)
        start = time.perf_counter()
        result: BlockResult = self.run_task(BlockTask(measuring, str(key), self.method), (("block", fp_id, str(key)),))
        row = self.store.save_block(fp_id, key, result.stats, self.method_record(measuring, result.backend))
        self.add_counts(blocks=1)
        self.speed.observe(key, result.stats.median_ms)
        log.debug("measured %s: %.4f ms (%d samples, %.2f s)", key, result.stats.median_ms, result.stats.samples,
                  time.perf_counter() - start)
        return BlockFigure(key, stats_of(row), measured=True)

    def submit_block(self, measuring: MeasureSettings, key: BlockKey, *, priority: int = INTERACTIVE) -> Future:
        """Queue the measurement of ``key`` (merged with an identical pending one)."""
        fp_id = self.fingerprint(measuring).id
        self.failures.refuse_if_recent(("block", fp_id, str(key)), f"block {key}")
        return self.queue.submit(("block", fp_id, str(key)), lambda: self._measure_block_task(measuring, fp_id, key),
                                 priority=priority, label=f"block {key}")

    def lookup_blocks(self, measuring: MeasureSettings, keys: list[BlockKey]) -> list[BlockFigure | Future]:
        """Each key's stored figure, or the future of its queued measurement; over-budget requests are refused
        before anything is queued (each block within the per-model limits, the missing ones within the time)."""
        fp_id = self.fingerprint(measuring).id
        rows = self.store.get_blocks(fp_id, [str(k) for k in keys])
        for key, row in rows.items():
            self.speed.observe(key, row.median_ms)
        work = [(BlockTask(measuring, str(k), self.method), ("body", "blocks", i)) for i, k in enumerate(keys)]
        self.budget.check(work, timed=[str(k) not in rows for k in keys])
        for i, key in enumerate(keys):
            if str(key) not in rows:
                self.failures.refuse_if_recent(("block", fp_id, str(key)), f"block {key}", ("body", "blocks", i))
        self.queue.reserve(len({str(k) for k in keys if str(k) not in rows}))
        out: list[BlockFigure | Future] = []
        for key in keys:
            row = rows.get(str(key))
            out.append(BlockFigure(key, stats_of(row), measured=False) if row else self.submit_block(measuring, key))
        return out
