"""The measurer: the one way tables and network verdicts get work measured, admitted and counted.

Carved out of the service so that the helpers (table builds, calibration, network measurements) receive what
they use rather than the whole service: the measuring settings' fingerprints, the method and how each figure
records it, the budget and cooldowns that admit work, the queue and the worker that run it, the store that
keeps every figure as soon as it is measured (so an interrupted table build resumes from what was stored), the
jobs of this process and the measurement counters. It holds no HTTP concepts and no lifecycle: the service
starts and stops what it is handed.
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
from typing import TYPE_CHECKING, Any

from latency_server.admission.budget import Budget, DeviceSpeed, Limits
from latency_server.admission.failures import FailureLog
from latency_server.config import Settings
from latency_server.errors import TaskFailed
from latency_server.observability import Metrics
from latency_server.store.crud import Store, stats_of
from latency_server.worker.fingerprint import DeviceFingerprint, fingerprint_for
from latency_server.worker.jobs import JobRegistry
from latency_server.worker.queue import INTERACTIVE, MeasurementQueue
from latency_server.worker.stats import Method, Stats
from latency_server.worker.tasks import BlockResult, BlockTask, WorkerHello

if TYPE_CHECKING:  # the service hands the worker in; only its interface is used here
    from latency_server.worker.supervisor import MeasurementWorker
from shared.api_schemas import MeasureSettings
from shared.block_key import BlockKey

__all__ = ["BlockFigure", "Measurer"]

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


#: the settings most requests use: their fingerprint is never evicted by others
_DEFAULT_KEY = _settings_key(MeasureSettings())


class Measurer:
    """Admit, queue, run and store measurements for this device (any thread unless a method says otherwise)."""

    def __init__(self, settings: Settings, store: Store, queue: MeasurementQueue, worker: MeasurementWorker,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.worker = worker
        self.method = Method(
            warmup=settings.warmup,
            min_repeats=settings.min_repeats,
            max_repeats=max(settings.max_repeats, settings.min_repeats),
            budget_s=settings.budget_s,
            time_scale=settings.time_scale,
        )
        store.use_method(self.method.to_dict())  # figures of other methods are neither served nor stored
        self.speed = DeviceSpeed(settings.assumed_macs_per_s)
        self.budget = Budget(Limits.from_settings(settings), self.speed)
        self.failures = FailureLog(settings.failure_cooldown_s)
        self.jobs = JobRegistry(settings.max_jobs, settings.job_ttl_s)
        self.block_measurements = 0
        self.network_measurements = 0
        self.calibration_measurements = 0
        self.metrics = metrics or Metrics()
        self._fingerprints: OrderedDict[tuple[str, int, int], DeviceFingerprint] = OrderedDict()
        self._device: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    # -- counters -------------------------------------------------------------------------------------
    @property
    def measurements(self) -> int:
        return self.block_measurements + self.network_measurements

    def add_counts(self, *, blocks: int = 0, networks: int = 0, calibration: int = 0, references: int = 0,
                   backend: str = "unknown") -> None:
        """Count measurements taken (``references``: the drift reference timed alone, a kind of calibration)."""
        with self._lock:
            self.block_measurements += blocks
            self.network_measurements += networks
            self.calibration_measurements += calibration + references
        for kind, count in (("block", blocks), ("network", networks), ("calibration", calibration),
                            ("reference", references)):
            self.metrics.measured(kind, backend, count)

    # -- identity -------------------------------------------------------------------------------------
    def device_reported(self, hello: WorkerHello) -> bool:
        """A (re)started worker reported the device; if it changed (an upgraded library), forget the fingerprints
        and say so."""
        device = (hello.hardware, hello.software)
        with self._lock:
            changed = self._device is not None and device != self._device
            self._device = device
            if changed:
                self._fingerprints.clear()
        return changed

    def fingerprint(self, measuring: MeasureSettings, *, store: bool = True) -> DeviceFingerprint:
        """The fingerprint for these settings, stored in the database and kept in memory; with ``store`` false
        (read-only queries, which must write nothing) a fingerprint not known yet is computed only."""
        fp = self.known_fingerprint(measuring)
        if fp is None:
            hello = self.worker.hello
            fp = fingerprint_for(measuring.backend, measuring.threads, measuring.batch_size,
                                 onnx_exporter=self.settings.onnx_exporter, hardware=hello.hardware,
                                 software=hello.software)
            if not store:
                return fp
            self.store.ensure_fingerprint(fp)
            with self._lock:
                self._fingerprints[_settings_key(measuring)] = fp
                while len(self._fingerprints) > _FINGERPRINTS_KEPT:  # the default settings' stays
                    del self._fingerprints[next(k for k in self._fingerprints if k != _DEFAULT_KEY)]
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
        """Run ``task`` in the worker (queue thread only); a kill or crash is recorded under ``failure_keys`` so
        that the same work is not retried in a loop."""
        try:
            return self.worker.call(task)
        except TaskFailed as exc:
            self.failures.record(exc, failure_keys)
            raise

    # -- blocks ---------------------------------------------------------------------------------------
    def measure_block(self, measuring: MeasureSettings, fp_id: str, key: BlockKey) -> BlockFigure:
        """Measure and store one block (queue thread only; a table build runs the same step)."""
        row = self.store.get_block(fp_id, str(key))
        if row is not None:  # stored meanwhile (by us or by another server on the same database)
            return BlockFigure(key, stats_of(row), measured=False)
        start = time.perf_counter()
        result: BlockResult = self.run_task(BlockTask(measuring, str(key), self.method), (("block", fp_id, str(key)),))
        row = self.store.save_block(fp_id, key, result.stats, self.method_record(measuring, result.backend))
        self.add_counts(blocks=1, backend=measuring.backend)
        self.speed.observe(key, result.stats.median_ms, measuring)
        log.debug("measured %s: %.4f ms (%d samples, %.2f s)", key, result.stats.median_ms, result.stats.samples,
                  time.perf_counter() - start)
        return BlockFigure(key, stats_of(row), measured=True)

    def submit_block(self, measuring: MeasureSettings, key: BlockKey, *, priority: int = INTERACTIVE) -> Future:
        """Queue the measurement of ``key`` (merged with an identical pending one)."""
        fp_id = self.fingerprint(measuring).id
        self.failures.refuse_if_recent(("block", fp_id, str(key)), f"block {key}")
        return self.queue.submit(("block", fp_id, str(key)), lambda: self.measure_block(measuring, fp_id, key),
                                 priority=priority, label=f"block {key}")

    def lookup_blocks(self, measuring: MeasureSettings, keys: list[BlockKey]) -> list[BlockFigure | Future]:
        """Each key's stored figure, or the future of its queued measurement; over-budget requests are refused
        before anything is queued (each block within the per-model limits, the missing ones within the time)."""
        fp_id = self.fingerprint(measuring).id
        rows = self.store.get_blocks(fp_id, [str(k) for k in keys])
        for key, row in rows.items():
            self.speed.observe(key, row.median_ms, measuring)
        work = [(BlockTask(measuring, str(k), self.method), ("body", "blocks", i)) for i, k in enumerate(keys)]
        self.budget.check(work, timed=[str(k) not in rows for k in keys])
        for i, key in enumerate(keys):
            if str(key) not in rows:
                self.failures.refuse_if_recent(("block", fp_id, str(key)), f"block {key}", ("body", "blocks", i))
        self.queue.reserve(len({str(k) for k in keys if str(k) not in rows}))
        out: list[BlockFigure | Future] = []
        try:
            for key in keys:
                row = rows.get(str(key))
                out.append(BlockFigure(key, stats_of(row), measured=False) if row
                           else self.submit_block(measuring, key))
        except BaseException:  # e.g. the queue filled up meanwhile: what this request queued must not run
            self.queue.release_all(item for item in out if isinstance(item, Future))
            raise
        return out
