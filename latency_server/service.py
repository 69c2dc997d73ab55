"""The latency service: cached lookups, measurement tasks on the single queue, table builds, predictions.

Routes call this layer; it holds no HTTP concepts. Every measurement runs inside a task on
:class:`~latency_server.queue.MeasurementQueue`, and every block figure is written to the store as soon as
it is measured (so an interrupted table build resumes from what was stored).
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
from latency_server.fingerprint import DeviceFingerprint, fingerprint_for
from latency_server.measure import Method, NetworkFigure, Stats, measure_block, measure_network
from latency_server.models import BlockMeasurement
from latency_server.queue import BACKGROUND, INTERACTIVE, Job, MeasurementQueue
from latency_server.store import Store, stats_of
from shared.api_schemas import LatencyStats, LutResponse, MeasureSettings
from shared.arch_string import ArchDef, format_arch
from shared.block_key import BlockKey
from shared.search_space import SearchSpace, SearchSpaceError

__all__ = ["BlockFigure", "LatencyService", "NetworkResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockFigure:
    """A stored block figure and whether this call measured it."""

    key: BlockKey
    stats: Stats
    measured: bool


@dataclass(frozen=True)
class NetworkResult:
    fingerprint: str
    figure: NetworkFigure
    predicted_ms: float | None


def _settings_key(ms: MeasureSettings) -> tuple[str, int, int]:
    return (ms.backend, ms.threads, ms.batch_size)


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
        )
        self.block_measurements = 0
        self.network_measurements = 0
        self.jobs: dict[str, Job] = {}
        self._active_builds: dict[tuple[str, str, int], Job] = {}
        self._lut_cache: dict[tuple[str, str, int], bytes] = {}
        self._fingerprints: dict[tuple[str, int, int], DeviceFingerprint] = {}
        self._backends: dict[tuple[str, int], Backend] = {}
        self._lock = threading.Lock()
        self.available = available_backends()

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.queue.start()

    def stop(self) -> None:
        self.queue.stop()
        self.store.close()

    @property
    def measurements(self) -> int:
        return self.block_measurements + self.network_measurements

    # -- identity -------------------------------------------------------------------------------------
    def fingerprint(self, ms: MeasureSettings) -> DeviceFingerprint:
        """The fingerprint for these settings (also stored in the database)."""
        key = _settings_key(ms)
        with self._lock:
            fp = self._fingerprints.get(key)
        if fp is None:
            fp = fingerprint_for(ms.backend, ms.threads, ms.batch_size, onnx_exporter=self.settings.onnx_exporter)
            self.store.ensure_fingerprint(fp)
            with self._lock:
                self._fingerprints[key] = fp
        return fp

    def backend(self, ms: MeasureSettings) -> Backend:
        """The backend object (worker thread only)."""
        key = (ms.backend, ms.threads)
        if key not in self._backends:
            self._backends[key] = make_backend(ms.backend, ms.threads, onnx_exporter=self.settings.onnx_exporter)
        return self._backends[key]

    def method_record(self, ms: MeasureSettings, backend: Backend) -> dict[str, Any]:
        """How a figure was measured (stored with it)."""
        return {
            **self.method.to_dict(),
            **backend.describe(),
            "batch_size": ms.batch_size,
            "statistic": "median",
            "unit": "ms/image",
            "measured_at": datetime.now(timezone.utc).isoformat(),
        }

    # -- blocks ---------------------------------------------------------------------------------------
    def _measure_block_task(self, ms: MeasureSettings, fp_id: str, key: BlockKey) -> BlockFigure:
        row = self.store.get_block(fp_id, str(key))
        if row is not None:  # stored meanwhile (by us or by another server on the same database)
            return BlockFigure(key, stats_of(row), measured=False)
        backend = self.backend(ms)
        start = time.perf_counter()
        stats = measure_block(backend, key, self.method, batch_size=ms.batch_size)
        row = self.store.save_block(fp_id, key, stats, self.method_record(ms, backend))
        with self._lock:
            self.block_measurements += 1
        log.debug("measured %s: %.4f ms (%d samples, %.2f s)", key, stats.median_ms, stats.samples,
                  time.perf_counter() - start)
        return BlockFigure(key, stats_of(row), measured=True)

    def submit_block(self, ms: MeasureSettings, key: BlockKey, *, priority: int = INTERACTIVE) -> Future:
        """Queue the measurement of ``key`` (merged with an identical pending one)."""
        fp_id = self.fingerprint(ms).id
        return self.queue.submit(
            ("block", fp_id, str(key)), lambda: self._measure_block_task(ms, fp_id, key), priority=priority
        )

    def lookup_blocks(self, ms: MeasureSettings, keys: list[BlockKey]) -> list[BlockFigure | Future]:
        """Each key's stored figure, or the future of its queued measurement."""
        fp_id = self.fingerprint(ms).id
        rows = self.store.get_blocks(fp_id, [str(k) for k in keys])
        out: list[BlockFigure | Future] = []
        for key in keys:
            row = rows.get(str(key))
            out.append(BlockFigure(key, stats_of(row), measured=False) if row else self.submit_block(ms, key))
        return out

    # -- tables ---------------------------------------------------------------------------------------
    @staticmethod
    def table_keys(space: SearchSpace, resolution: int) -> tuple[dict[str, BlockKey], list[BlockKey]]:
        """The fixed parts (by name) and the searchable keys of a table."""
        return space.fixed_keys(resolution), space.searchable_keys(resolution)

    def cached_lut(self, ms: MeasureSettings, space: str, resolution: int) -> bytes | None:
        """The serialised complete table if this process has served it before."""
        fp = self._fingerprints.get(_settings_key(ms))
        if fp is None:
            return None
        return self._lut_cache.get((fp.id, space, resolution))

    def _lut_response(
        self, ms: MeasureSettings, fp_id: str, space: SearchSpace, resolution: int, rows: dict[str, BlockMeasurement],
        meta: dict[str, Any],
    ) -> LutResponse:
        fixed_keys, searchable = self.table_keys(space, resolution)
        fixed = {str(k): rows[str(k)].median_ms for k in fixed_keys.values()}
        entries = {str(k): rows[str(k)].median_ms for k in searchable}
        stats = {
            name: LatencyStats(**stats_of(rows[name]).public()) for name in list(fixed) + list(entries)
        }
        return LutResponse(
            space=space.name,
            fingerprint=fp_id,
            backend=ms.backend,
            batch_size=ms.batch_size,
            threads=ms.threads,
            resolution=resolution,
            fixed_ms=sum(fixed.values()),
            fixed=fixed,
            entries=entries,
            stats=stats,
            fixed_names={name: str(k) for name, k in fixed_keys.items()},
            meta=meta,
        )

    def lut_or_job(self, ms: MeasureSettings, space: SearchSpace, resolution: int) -> bytes | Job:
        """The complete table (serialised JSON), or the build job that completes it (started or joined)."""
        fp_id = self.fingerprint(ms).id
        cache_key = (fp_id, space.name, resolution)
        cached = self._lut_cache.get(cache_key)
        if cached is not None:
            return cached
        fixed_keys, searchable = self.table_keys(space, resolution)
        keys = list(fixed_keys.values()) + searchable
        rows = self.store.get_blocks(fp_id, [str(k) for k in keys])
        if len(rows) == len(keys):
            table = self.store.ensure_table(fp_id, space.name, resolution, len(keys))
            if table.completed_at is None:
                self.store.mark_table_complete(table.id)
            body = self._lut_response(ms, fp_id, space, resolution, rows, table.meta or {}).model_dump_json().encode()
            self._lut_cache[cache_key] = body
            return body
        with self._lock:
            job = self._active_builds.get(cache_key)
            if job is not None:
                return job
            job = Job(kind="lut", total=len(keys), done=len(rows),
                      params={"space": space.name, "resolution": resolution, **ms.model_dump(), "fingerprint": fp_id})
            self.jobs[job.id] = job
            self._active_builds[cache_key] = job
        table = self.store.ensure_table(fp_id, space.name, resolution, len(keys))
        missing = [k for k in keys if str(k) not in rows]
        log.info("table build %s: %s at %d px, %s/%d threads/batch %d: %d of %d entries to measure",
                 job.id, space.name, resolution, ms.backend, ms.threads, ms.batch_size, len(missing), len(keys))
        started = time.perf_counter()

        def finished(done_job: Job) -> None:
            with self._lock:
                self._active_builds.pop(cache_key, None)
            elapsed = time.perf_counter() - started
            if done_job.state == "done":
                self.store.mark_table_complete(table.id)
                log.info("table build %s done: %d entries in %.1f s", done_job.id, done_job.total, elapsed)
            else:
                log.warning("table build %s failed after %.1f s: %s", done_job.id, elapsed, done_job.error)

        job.on_finish = finished
        progress_every = max(1, len(missing) // 10)

        def run(key: BlockKey) -> BlockFigure:
            job.mark_running()
            figure = self._measure_block_task(ms, fp_id, key)
            done = job.done + 1
            if self.settings.progress and (done - len(rows)) % progress_every == 0:
                log.info("table build %s: %d/%d entries (%.0f s)", job.id, done, job.total,
                         time.perf_counter() - started)
            return figure

        futures = [
            (str(key), self.queue.submit(("block", fp_id, str(key)), lambda key=key: run(key), priority=BACKGROUND))
            for key in missing
        ]
        job.track(futures)
        return job

    def table_medians(self, ms: MeasureSettings, space: SearchSpace, resolution: int) -> dict[str, float] | None:
        """``key -> median_ms`` of every table entry (fixed parts included) if the table is complete."""
        fp_id = self.fingerprint(ms).id
        fixed_keys, searchable = self.table_keys(space, resolution)
        keys = [str(k) for k in list(fixed_keys.values()) + searchable]
        rows = self.store.get_blocks(fp_id, keys)
        if len(rows) != len(keys):
            return None
        return {k: rows[k].median_ms for k in keys}

    def predict_ms(self, ms: MeasureSettings, space: SearchSpace, arch: ArchDef, resolution: int) -> float | None:
        """Fixed parts plus the chosen blocks' entries, when the arch is in ``space`` and its table complete."""
        try:
            choice = space.choice_from_arch(arch)
            space.check_resolution(resolution)
        except SearchSpaceError:
            return None
        medians = self.table_medians(ms, space, resolution)
        if medians is None:
            return None
        total = sum(medians[str(k)] for k in space.fixed_keys(resolution).values())
        for s, stage in enumerate(choice.options):
            for j, option in enumerate(stage):
                total += medians[str(space.block_key(s, j, option, resolution))]
        return total

    # -- networks -------------------------------------------------------------------------------------
    def _measure_network_task(
        self, ms: MeasureSettings, fp_id: str, arch: ArchDef, resolution: int, space: SearchSpace
    ) -> NetworkResult:
        backend = self.backend(ms)
        figure = measure_network(
            backend, arch, resolution, self.method, batch_size=ms.batch_size, rounds=self.settings.network_rounds,
            num_classes=space.num_classes,
        )
        with self._lock:
            self.network_measurements += 1
        predicted = self.predict_ms(ms, space, arch, resolution)
        self.store.save_network(fp_id, format_arch(arch), resolution, figure.stats,
                                {**self.method_record(ms, backend), "rounds": len(figure.rounds)}, predicted)
        log.info("measured network at %d px: %.3f ms (predicted %s)", resolution, figure.stats.median_ms,
                 "n/a" if predicted is None else f"{predicted:.3f} ms")
        return NetworkResult(fp_id, figure, predicted)

    def submit_network(self, ms: MeasureSettings, arch: ArchDef, resolution: int, space: SearchSpace) -> Future:
        """Queue a whole-network measurement (merged with an identical pending one)."""
        fp_id = self.fingerprint(ms).id
        return self.queue.submit(
            ("network", fp_id, format_arch(arch), resolution, space.name),
            lambda: self._measure_network_task(ms, fp_id, arch, resolution, space),
            priority=INTERACTIVE,
        )
