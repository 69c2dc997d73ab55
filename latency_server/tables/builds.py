"""Latency tables: when a table is complete, and the build job that completes it.

This module owns a table's keys (fixed parts and searchable blocks of a space at a resolution), the test
of completeness (every entry stored, plus the reference and correction the settings ask for), the build job
(missing entries, the reference and calibration tasks of :mod:`latency_server.tables.calibration`, the fit, each
queued at background priority and tracked by one :class:`~latency_server.worker.jobs.Job`; refused before any work
when over budget or when the table's last build killed the worker, stopped at the first such kill), and the views
of a stored table (:class:`CompleteTable` to serve, :class:`~latency_server.tables.prediction.TableView` to predict
from). It holds the served bodies (:mod:`latency_server.tables.served_bodies`), which the REST layer serialises once
so that the pure-ASGI fast path can answer from memory, because it knows when a table's metadata changes and a body
must be forgotten.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from latency_server.errors import QueueFull, TaskKilled, WorkerUnavailable
from latency_server.store.crud import stats_of
from latency_server.store.measurement_settings import calibration_settings, usable_meta
from latency_server.store.models import BlockMeasurement
from latency_server.tables.calibration import BuildCalibration, Calibrator
from latency_server.tables.prediction import TableView
from latency_server.tables.served_bodies import ServedBodies
from latency_server.worker.jobs import Job
from latency_server.worker.queue import BACKGROUND
from latency_server.worker.stats import Stats
from latency_server.worker.tasks import BlockTask
from shared.api_schemas import MeasureSettings
from shared.block_key import BlockKey
from shared.search_space import SearchSpace

if TYPE_CHECKING:
    from latency_server.admission.measurer import BlockFigure, Measurer

__all__ = ["CompleteTable", "TableBuilds", "table_keys"]

log = logging.getLogger(__name__)

TableId = tuple[str, str, int]  # (fingerprint, space, resolution)


def table_keys(space: SearchSpace, resolution: int) -> tuple[dict[str, BlockKey], list[BlockKey]]:
    """The fixed parts (by name) and the searchable keys of a table."""
    return space.fixed_keys(resolution), space.searchable_keys(resolution)


@dataclass(frozen=True)
class CompleteTable:
    """A complete table as served: raw and corrected medians, each entry's statistics, the metadata."""

    fingerprint: str
    measuring: MeasureSettings
    space: str
    resolution: int
    fixed_names: dict[str, str]  # fixed part name -> key
    fixed: dict[str, float]  # key -> raw median of the fixed parts
    entries: dict[str, float]  # key -> raw median of the searchable blocks
    stats: dict[str, Stats]  # key -> statistics, fixed parts first
    fixed_ms: float
    corrected_entries: dict[str, float]
    corrected_fixed_ms: float
    meta: dict[str, Any]


@dataclass(frozen=True)
class _StoredEntries:
    """The stored rows of one table's entries."""

    fixed_keys: dict[str, BlockKey]
    searchable: list[BlockKey]
    rows: dict[str, BlockMeasurement]

    @property
    def keys(self) -> list[BlockKey]:
        return list(self.fixed_keys.values()) + self.searchable

    @property
    def missing(self) -> list[BlockKey]:
        return [k for k in self.keys if str(k) not in self.rows]

    def view(self, meta: dict[str, Any]) -> TableView:
        return TableView.from_rows(self.rows, self.fixed_keys, self.searchable, meta)


class TableBuilds:
    """Complete tables of this device, and the builds that complete them (at most one per table)."""

    def __init__(self, measurer: Measurer) -> None:
        self.measurer = measurer
        self.settings = measurer.settings
        self.store = measurer.store
        self.calibrator = Calibrator(measurer)
        self._active: dict[TableId, Job] = {}
        self.bodies = ServedBodies(measurer)  # the serialised complete tables, for the fast path
        self._lock = threading.Lock()

    # -- reading --------------------------------------------------------------------------------------
    def _stored(self, fp_id: str, space: SearchSpace, resolution: int) -> _StoredEntries:
        fixed_keys, searchable = table_keys(space, resolution)
        keys = [str(k) for k in list(fixed_keys.values()) + searchable]
        return _StoredEntries(fixed_keys, searchable, self.store.get_blocks(fp_id, keys))

    def _usable_meta(self, meta: dict[str, Any] | None, stored: _StoredEntries) -> dict[str, Any]:
        """The table's metadata, less a correction fitted on other settings or entries (then the build refits)."""
        medians = {key: row.median_ms for key, row in stored.rows.items()}
        return usable_meta(meta, self.store.settings_hash, calibration_settings(self.settings), medians)

    def _needs_calibration(self, meta: dict[str, Any]) -> bool:
        """Whether a table with all entries stored still lacks its reference or its correction."""
        if self.settings.drift_reference and "reference" not in meta:
            return True
        return self.settings.calibration_networks > 0 and "correction" not in meta

    def view(self, measuring: MeasureSettings, space: SearchSpace, resolution: int) -> TableView | None:
        """The table's raw medians (fixed parts included), metadata and correction, or ``None`` if incomplete."""
        fp_id = self.measurer.fingerprint(measuring).id
        stored = self._stored(fp_id, space, resolution)
        if stored.missing:
            return None
        table = self.store.get_table(fp_id, space.name, resolution)
        return stored.view(self._usable_meta(table.meta if table is not None else {}, stored))

    def stale(self, measuring: MeasureSettings, space: SearchSpace, resolution: int) -> CompleteTable | None:
        """The newest complete table of these settings under an older fingerprint of this device (the software or
        environment changed since it was measured), or ``None``."""
        fp = self.measurer.fingerprint(measuring)
        for old_id in self.store.stale_table_fingerprints(fp, space.name, resolution)[:1]:
            stored = self._stored(old_id, space, resolution)
            if not stored.missing:
                table = self.store.get_table(old_id, space.name, resolution)
                meta = self._usable_meta(table.meta if table is not None else {}, stored)
                return self._complete(measuring, old_id, space, resolution, stored, meta)
        return None

    def complete_or_build(
        self, measuring: MeasureSettings, space: SearchSpace, resolution: int, *, build: bool = True
    ) -> CompleteTable | Job | None:
        """The complete table, or the build job that completes it (started or joined; ``None`` unless ``build``).

        A build measures the missing entries, the reference network (start, middle, end) and the fit networks
        (interleaved rounds), then fits the correction; a table is complete when all of that is stored.
        """
        fp_id = self.measurer.fingerprint(measuring).id
        with self._lock:
            job = self._active.get((fp_id, space.name, resolution))
        if job is not None:
            return job
        stored = self._stored(fp_id, space, resolution)
        for key, row in stored.rows.items():
            self.measurer.speed.observe(key, row.median_ms, measuring)
        table = self.store.get_table(fp_id, space.name, resolution)
        meta = self._usable_meta(table.meta if table is not None else {}, stored)
        if not stored.missing and not self._needs_calibration(meta):
            if table is None or table.completed_at is None:
                table = self.store.ensure_table(fp_id, space.name, resolution, len(stored.keys))
                self.store.mark_table_complete(table.id)
            return self._complete(measuring, fp_id, space, resolution, stored, meta)
        if not build:
            return None
        calibration = self.calibrator.plan(measuring, fp_id, space, resolution)
        self._check_build(calibration, stored)
        table = self.store.ensure_table(fp_id, space.name, resolution, len(stored.keys))
        return self._build(calibration, stored, table.id)

    def _check_build(self, cal: BuildCalibration, stored: _StoredEntries) -> None:
        """Refuse a build that recently killed the worker or whose estimated cost is over the limits."""
        failures, loc = self.measurer.failures, ("query", "resolution")
        failures.refuse_if_recent(cal.failure_key, f"the table {cal.space.name} at {cal.resolution} px", loc)
        for key in stored.missing:
            failures.refuse_if_recent(("block", cal.fp_id, str(key)), f"the table's entry {key}", loc)
        method = self.measurer.method
        work = [(BlockTask(cal.measuring, str(key), method), loc) for key in stored.missing]
        references = (3 if stored.missing else 2) if cal.reference_arch else 0
        work += [(task, loc) for task in self.calibrator.tasks(cal, references=references)]
        self.measurer.budget.check(work)

    @staticmethod
    def _complete(
        measuring: MeasureSettings, fp_id: str, space: SearchSpace, resolution: int, stored: _StoredEntries,
        meta: dict[str, Any],
    ) -> CompleteTable:
        view = stored.view(meta)
        fixed = {str(k): view.medians[str(k)] for k in stored.fixed_keys.values()}
        entries = {str(k): view.medians[str(k)] for k in stored.searchable}
        fixed_ms = sum(fixed.values())
        if view.correction is not None:
            corrected = {str(k): view.correction.entry_ms(k, entries[str(k)]) for k in stored.searchable}
            corrected_fixed = view.correction.fixed_ms(fixed_ms)
        else:
            corrected, corrected_fixed = dict(entries), fixed_ms
        return CompleteTable(
            fingerprint=fp_id, measuring=measuring, space=space.name, resolution=resolution,
            fixed_names={name: str(k) for name, k in stored.fixed_keys.items()}, fixed=fixed, entries=entries,
            stats={key: stats_of(stored.rows[key]) for key in list(fixed) + list(entries)}, fixed_ms=fixed_ms,
            corrected_entries=corrected, corrected_fixed_ms=corrected_fixed, meta=meta,
        )

    # -- building -------------------------------------------------------------------------------------
    def _build(self, calibration: BuildCalibration, stored: _StoredEntries, table_id: int) -> Job:
        """Join the table's running build, or queue a new one."""
        measuring, fp_id, space, resolution = (calibration.measuring, calibration.fp_id, calibration.space,
                                               calibration.resolution)
        table = (fp_id, space.name, resolution)
        keys, missing, done = stored.keys, stored.missing, len(stored.rows)
        with self._lock:
            job = self._active.get(table)
            if job is not None:
                return job
            limit = self.settings.max_concurrent_builds
            if len(self._active) >= limit:
                raise QueueFull(f"{len(self._active)} table builds are running, the limit is {limit} "
                                "(LATENCY_SERVER_MAX_CONCURRENT_BUILDS); retry when one has finished",
                                retry_after_s=60)
            references = (3 if missing else 2) if calibration.reference_arch else 0
            rounds = self.settings.calibration_rounds if calibration.fit else 0
            self.measurer.queue.reserve(len(missing) + references + rounds + 1, priority=BACKGROUND)
            job = Job(kind="lut", total=len(keys) + references + rounds + 1, done=done,
                      params={"space": space.name, "resolution": resolution, **measuring.model_dump(),
                              "fingerprint": fp_id})
            self.measurer.jobs.add(job)
            self._active[table] = job
        log.info("table build %s: %s at %d px, %s/%d threads/batch %d: %d of %d entries to measure, "
                 "%d fit networks x %d rounds, reference %s",
                 job.id, space.name, resolution, measuring.backend, measuring.threads, measuring.batch_size,
                 len(missing), len(keys), len(calibration.fit), self.settings.calibration_rounds,
                 "on" if calibration.reference_arch else "off")
        started = time.perf_counter()

        def finished(done_job: Job) -> None:
            with self._lock:
                if self._active.get(table) is done_job:
                    self._active.pop(table)
            elapsed = time.perf_counter() - started
            if done_job.state == "done":
                self.store.mark_table_complete(table_id)
                self.bodies.forget(*table)
                log.info("table build %s done: %d steps in %.1f s", done_job.id, done_job.total, elapsed)
            else:
                log.warning("table build %s failed after %.1f s: %s", done_job.id, elapsed, done_job.error)

        def cancelled(done_job: Job) -> None:
            with self._lock:
                if self._active.get(table) is done_job:
                    self._active.pop(table)  # a new request for the table starts a new build
            log.info("table build %s cancelled: %d of %d steps done", done_job.id, done_job.done, done_job.total)
            self._abandon(done_job)

        job.on_finish = finished
        job.on_cancel = cancelled
        futures = self._queue_steps(job, calibration, missing, done, started, table_id)
        job.total = done + len(futures)  # the count announced above, now from the tasks themselves
        job.track(futures)
        if job.error is not None:  # a step was killed before the job followed its futures
            self._abandon(job)
        return job

    def _abandon(self, job: Job) -> None:
        """Cancel the job's steps that have not started (the ones a request also waits for still run)."""
        for _, future in job.futures:
            self.measurer.queue.disown(future)

    def _step(self, job: Job, cal: BuildCalibration, name: str, fn: Any) -> Any:
        """Run one build step; a step that killed the worker ends the build and is remembered for the table."""
        job.mark_running()
        try:
            return fn()
        except TaskKilled as exc:
            job.fail_with(name, exc)
            self.measurer.failures.remember(exc, [cal.failure_key], message=f"step {name}: {exc.msg}")
            self._abandon(job)
            raise
        except WorkerUnavailable as exc:  # the worker cannot be (re)started: end the build now, not step by step
            job.fail(f"{name}: {exc.msg}")
            self._abandon(job)
            raise

    def _queue_steps(
        self, job: Job, cal: BuildCalibration, missing: list[BlockKey], done_before: int, started: float,
        table_id: int,
    ) -> list[tuple[str, Future]]:
        """Queue a build's steps in order: reference, missing entries (reference midway), reference, rounds, fit."""
        queue, measurer = self.measurer.queue, self.measurer
        progress_every = max(1, len(missing) // 10)
        where = f"table build {job.id}"

        def run(key: BlockKey) -> BlockFigure:
            figure = self._step(job, cal, str(key), lambda: measurer.measure_block(cal.measuring, cal.fp_id, key))
            done = job.done + 1
            if self.settings.progress and (done - done_before) % progress_every == 0:
                log.info("%s: %d/%d steps (%.0f s)", where, done, job.total, time.perf_counter() - started)
            return figure

        def submit(name: str, fn: Any) -> tuple[str, Future]:
            return name, queue.submit(("build", job.id, name), lambda: self._step(job, cal, name, fn),
                                      priority=BACKGROUND, label=f"{where}: {name}", owned=True, bounded=False)

        futures: list[tuple[str, Future]] = []
        if cal.reference_arch:
            futures.append(submit("reference:start", lambda: self.calibrator.reference_task(cal, "start")))
        half = len(missing) // 2
        for i, key in enumerate(missing):
            if i == half and cal.reference_arch and missing:
                futures.append(submit("reference:middle", lambda: self.calibrator.reference_task(cal, "middle")))
            # keyed like an interactive request for the same block, so the two merge into one measurement
            futures.append((str(key), queue.submit(("block", cal.fp_id, str(key)), lambda key=key: run(key),
                                                   priority=BACKGROUND, label=f"block {key}", owned=True,
                                                   bounded=False)))
        if cal.reference_arch:
            futures.append(submit("reference:end", lambda: self.calibrator.reference_task(cal, "end")))
        if cal.fit:
            for r in range(self.settings.calibration_rounds):
                futures.append(submit(f"calibration:{r}", lambda: self.calibrator.round_task(cal)))
        futures.append(submit("fit", lambda: self._fit_task(cal, table_id)))
        return futures

    def _fit_task(self, cal: BuildCalibration, table_id: int) -> dict[str, Any]:
        """Fit the correction on the calibration rounds and store it with the reference in the table's meta."""
        stored = self._stored(cal.fp_id, cal.space, cal.resolution)
        if stored.missing:  # a block failed: the job fails with its error; a retry calibrates again
            log.warning("table correction not fitted: %d table entries are missing", len(stored.missing))
            return {}
        meta = self.calibrator.fitted_meta(cal, stored.view({}), stored.searchable)
        self.store.update_table_meta(table_id, meta)
        self.bodies.forget(cal.fp_id, cal.space.name, cal.resolution)
        return meta
