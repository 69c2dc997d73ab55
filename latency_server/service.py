"""The latency service: the facade through which the REST layer reaches everything it measures or looks up.

:class:`LatencyService` owns the service's lifecycle (the measurement worker process, the queue that feeds it,
the store) and composes the wings: the :class:`~latency_server.admission.measurer.Measurer` (fingerprints,
method, budgets, cooldowns, block figures, counters, jobs), the tables (:mod:`latency_server.tables.builds`) and
whole-network measurements (:mod:`latency_server.verdicts.networks`), each handed the measurer rather than the
service. It holds no HTTP concepts.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future

from latency_server.admission.failures import FailureLog
from latency_server.admission.measurer import BlockFigure, Measurer
from latency_server.config import Settings
from latency_server.health import DatabaseProbe, Health, check_health
from latency_server.store.crud import Store
from latency_server.tables.builds import TableBuilds
from latency_server.verdicts.models import ModelMeasurements
from latency_server.verdicts.networks import NetworkMeasurements
from latency_server.worker.child import WorkerConfig
from latency_server.worker.discipline import parse_cpus
from latency_server.worker.fingerprint import DeviceFingerprint
from latency_server.worker.jobs import JobRegistry
from latency_server.worker.queue import MeasurementQueue
from latency_server.worker.supervisor import MeasurementWorker, WorkerLimits
from latency_server.worker.tasks import WorkerHello
from shared.api_schemas import MeasureSettings
from shared.block_key import BlockKey

__all__ = ["BlockFigure", "LatencyService"]

log = logging.getLogger(__name__)


def _worker(settings: Settings) -> MeasurementWorker:
    config = WorkerConfig(onnx_exporter=settings.onnx_exporter, default_threads=settings.default_threads,
                          log_level=settings.log_level, cpus=parse_cpus(settings.worker_cpus),
                          nice=settings.worker_nice)
    limits = WorkerLimits(
        task_timeout_s=settings.task_timeout_s, task_memory_bytes=settings.task_memory_mb << 20,
        recycle_tasks=settings.worker_recycle_tasks, recycle_s=settings.worker_recycle_minutes * 60,
        start_timeout_s=settings.worker_start_timeout_s, restart_hold_file=settings.worker_restart_hold_file,
        spawn_fail_file=settings.worker_spawn_fail_file,
    )
    return MeasurementWorker(config, limits)


class LatencyService:
    """Measure, cache and serve latencies for this device."""

    def __init__(self, settings: Settings, store: Store, measurement_queue: MeasurementQueue | None = None,
                 worker: MeasurementWorker | None = None) -> None:
        self.settings = settings
        self.store = store
        self.queue = measurement_queue or MeasurementQueue(
            max_tasks=settings.max_queued_tasks, max_background=settings.queue_max_background,
            max_per_client=settings.queue_max_per_client)
        self.worker = worker or _worker(settings)
        self.measurer = Measurer(settings, store, self.queue, self.worker)
        self.metrics = self.measurer.metrics  # what GET /metrics exposes, with what it collects at scrape time
        self.database_probe = DatabaseProbe(store.engine)
        self._stop_deadline: float | None = None
        self.tables = TableBuilds(self.measurer)
        self.networks = NetworkMeasurements(self.measurer, self.tables)
        self.models = ModelMeasurements(self.networks)

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
        return check_health(self.worker, self.database_probe, self.queue, self.settings.health_timeout_s,
                            task_timeout_s=self.settings.task_timeout_s)

    def _device_reported(self, hello: WorkerHello) -> None:
        """A (re)started worker reported the device; if it changed (an upgraded library), start afresh."""
        if self.measurer.device_reported(hello):
            log.warning("the measurement worker reports another device or software than before: %s; "
                        "figures are stored under new fingerprints from now on", hello.software)
            self.tables.bodies.clear()

    @property
    def available(self) -> list[str]:
        """Backends that run on this device (as the worker reported)."""
        return list(self.worker.hello.backends)

    # -- what the routes read from the measurer -------------------------------------------------------
    @property
    def failures(self) -> FailureLog:
        return self.measurer.failures

    @property
    def jobs(self) -> JobRegistry:
        return self.measurer.jobs

    @property
    def measurements(self) -> int:
        return self.measurer.measurements

    @property
    def block_measurements(self) -> int:
        return self.measurer.block_measurements

    @property
    def network_measurements(self) -> int:
        return self.measurer.network_measurements

    @property
    def calibration_measurements(self) -> int:
        return self.measurer.calibration_measurements

    def fingerprint(self, measuring: MeasureSettings, *, store: bool = True) -> DeviceFingerprint:
        """The fingerprint for these settings (stored in the database unless ``store`` is false)."""
        return self.measurer.fingerprint(measuring, store=store)

    def lookup_blocks(self, measuring: MeasureSettings, keys: list[BlockKey]) -> list[BlockFigure | Future]:
        """Each key's stored figure, or the future of its queued measurement (refused when over budget)."""
        return self.measurer.lookup_blocks(measuring, keys)
