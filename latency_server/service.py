"""The latency service: the object through which the REST layer reaches everything it measures or looks up.

:class:`LatencyService` owns the service's lifecycle (the measurement queue, the store), the device
fingerprint and backend for each measuring setting, the measurement method and how each figure records it,
the measurement counters, the jobs of this process, and block figures (stored lookups and queued
measurements). Tables and their builds live in :attr:`LatencyService.tables` (:mod:`latency_server.tables`),
whole-network measurements in :attr:`LatencyService.networks` (:mod:`latency_server.networks`). It holds no
HTTP concepts: every measurement runs inside a task on the single
:class:`~latency_server.queue.MeasurementQueue`, and every block figure is stored as soon as it is measured
(so an interrupted table build resumes from what was stored).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from latency_server.backends import Backend, available_backends, make_backend
from latency_server.config import Settings
from latency_server.correction import parse_features
from latency_server.fingerprint import DeviceFingerprint, fingerprint_for
from latency_server.measure import Method, Stats, measure_block
from latency_server.networks import NetworkMeasurements
from latency_server.queue import INTERACTIVE, Job, MeasurementQueue
from latency_server.store import Store, stats_of
from latency_server.tables import TableBuilds
from shared.api_schemas import MeasureSettings
from shared.block_key import BlockKey

__all__ = ["BlockFigure", "LatencyService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockFigure:
    """A stored block figure and whether this call measured it."""

    key: BlockKey
    stats: Stats
    measured: bool


def _settings_key(measuring: MeasureSettings) -> tuple[str, int, int]:
    return (measuring.backend, measuring.threads, measuring.batch_size)


class LatencyService:
    """Measure, cache and serve latencies for this device."""

    def __init__(self, settings: Settings, store: Store, measurement_queue: MeasurementQueue | None = None) -> None:
        self.settings = settings
        self.store = store
        self.queue = measurement_queue or MeasurementQueue()
        self.method = Method(
            warmup=settings.warmup,
            min_repeats=settings.min_repeats,
            max_repeats=max(settings.max_repeats, settings.min_repeats),
            budget_s=settings.budget_s,
            time_scale=settings.time_scale,
        )
        store.use_method(self.method.to_dict())  # figures of other methods are neither served nor stored
        self.correction_features = parse_features(settings.correction_features)
        self.block_measurements = 0
        self.network_measurements = 0
        self.calibration_measurements = 0
        self.jobs: dict[str, Job] = {}
        self._fingerprints: dict[tuple[str, int, int], DeviceFingerprint] = {}
        self._backends: dict[tuple[str, int], Backend] = {}
        self._lock = threading.Lock()
        self.available = available_backends()
        self.tables = TableBuilds(self)
        self.networks = NetworkMeasurements(self)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.queue.start()

    def stop(self) -> None:
        self.queue.stop()
        self.store.close()

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
        with self._lock:
            fp = self._fingerprints.get(key)
        if fp is None:
            fp = fingerprint_for(measuring.backend, measuring.threads, measuring.batch_size,
                                 onnx_exporter=self.settings.onnx_exporter)
            self.store.ensure_fingerprint(fp)
            with self._lock:
                self._fingerprints[key] = fp
        return fp

    def known_fingerprint(self, measuring: MeasureSettings) -> DeviceFingerprint | None:
        """The fingerprint if this process has computed it already (never blocks on the device or database)."""
        return self._fingerprints.get(_settings_key(measuring))

    def backend(self, measuring: MeasureSettings) -> Backend:
        """The backend object (worker thread only)."""
        key = (measuring.backend, measuring.threads)
        if key not in self._backends:
            self._backends[key] = make_backend(measuring.backend, measuring.threads,
                                               onnx_exporter=self.settings.onnx_exporter)
        return self._backends[key]

    def method_record(self, measuring: MeasureSettings, backend: Backend) -> dict[str, Any]:
        """How a figure was measured (stored with it)."""
        return {
            **self.method.to_dict(),
            **backend.describe(),
            "batch_size": measuring.batch_size,
            "statistic": "median",
            "unit": "ms/image",
            "measured_at": datetime.now(timezone.utc).isoformat(),
        }

    # -- blocks ---------------------------------------------------------------------------------------
    def _measure_block_task(self, measuring: MeasureSettings, fp_id: str, key: BlockKey) -> BlockFigure:
        """Measure and store one block on the worker thread (a table build runs the same task)."""
        row = self.store.get_block(fp_id, str(key))
        if row is not None:  # stored meanwhile (by us or by another server on the same database)
            return BlockFigure(key, stats_of(row), measured=False)
        backend = self.backend(measuring)
        start = time.perf_counter()
        stats = measure_block(backend, key, self.method, batch_size=measuring.batch_size)
        row = self.store.save_block(fp_id, key, stats, self.method_record(measuring, backend))
        self.add_counts(blocks=1)
        log.debug("measured %s: %.4f ms (%d samples, %.2f s)", key, stats.median_ms, stats.samples,
                  time.perf_counter() - start)
        return BlockFigure(key, stats_of(row), measured=True)

    def submit_block(self, measuring: MeasureSettings, key: BlockKey, *, priority: int = INTERACTIVE) -> Future:
        """Queue the measurement of ``key`` (merged with an identical pending one)."""
        fp_id = self.fingerprint(measuring).id
        return self.queue.submit(
            ("block", fp_id, str(key)), lambda: self._measure_block_task(measuring, fp_id, key), priority=priority
        )

    def lookup_blocks(self, measuring: MeasureSettings, keys: list[BlockKey]) -> list[BlockFigure | Future]:
        """Each key's stored figure, or the future of its queued measurement."""
        fp_id = self.fingerprint(measuring).id
        rows = self.store.get_blocks(fp_id, [str(k) for k in keys])
        out: list[BlockFigure | Future] = []
        for key in keys:
            row = rows.get(str(key))
            out.append(BlockFigure(key, stats_of(row), measured=False) if row else self.submit_block(measuring, key))
        return out
