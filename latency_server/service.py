"""The latency service: cached lookups, measurement tasks on the single queue, table builds, predictions.

Routes call this layer; it holds no HTTP concepts. Every measurement runs inside a task on
:class:`~latency_server.queue.MeasurementQueue`, and every block figure is written to the store as soon as
it is measured (so an interrupted table build resumes from what was stored).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from latency_server.backends import Backend, available_backends, make_backend
from latency_server.config import Settings
from latency_server.correction import (
    FLOOR_FRACTION,
    Correction,
    CorrectionError,
    FitNetwork,
    fit_correction,
    parse_features,
    sample_choices,
)
from latency_server.fingerprint import DeviceFingerprint, fingerprint_for
from latency_server.measure import Method, NetworkFigure, NetworkSet, Stats, measure_block
from latency_server.models import BlockMeasurement
from latency_server.queue import BACKGROUND, INTERACTIVE, Job, MeasurementQueue
from latency_server.store import Store, stats_of
from shared.api_schemas import LatencyStats, LutResponse, MeasureSettings
from shared.arch_string import ArchDef, format_arch
from shared.block_key import BlockKey
from shared.search_space import SearchSpace, SearchSpaceError

__all__ = ["BlockFigure", "LatencyService", "NetworkResult", "Prediction", "TableView"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockFigure:
    """A stored block figure and whether this call measured it."""

    key: BlockKey
    stats: Stats
    measured: bool


@dataclass(frozen=True)
class Prediction:
    """A complete table's prediction of one network (drift compensation is applied by the caller)."""

    naive_ms: float  # fixed parts plus raw block medians
    corrected_ms: float  # with the table's fitted correction (= naive_ms without one)
    reference_ms: float | None  # the reference network's latency when the table was built


@dataclass(frozen=True)
class NetworkResult:
    """A whole-network measurement, the table's prediction, and the drift reference measured alongside."""

    fingerprint: str
    figure: NetworkFigure
    predicted_ms: float | None
    prediction: Prediction | None = None
    reference_arch: str | None = None
    reference: NetworkFigure | None = None

    @property
    def drift_ratio(self) -> float | None:
        """The reference now over the reference when the table was built (``None`` without both)."""
        if self.reference is None or self.prediction is None or not self.prediction.reference_ms:
            return None
        return self.reference.stats.median_ms / self.prediction.reference_ms

    def round_ratios(self) -> list[float]:
        """Per round: the network's median over the reference's median of the same round (measured back to back)."""
        if self.reference is None:
            return []
        return [n.median_ms / r.median_ms for n, r in zip(self.figure.rounds, self.reference.rounds, strict=True)
                if r.median_ms > 0]

    def _normalized_rounds(self) -> list[float]:
        """Each round's figure at the device speed of the table's build (empty without both references)."""
        if self.prediction is None or not self.prediction.reference_ms:
            return []
        return [self.prediction.reference_ms * ratio for ratio in self.round_ratios()]

    @property
    def normalized_ms(self) -> float | None:
        """The figure at the device speed of the table's build: reference-at-build x median of the round ratios.

        Each round times the network and the reference back to back, so their ratio cancels the device's slow
        drift (seconds to minutes) that moves both alike; the median over rounds drops an odd round.
        """
        values = self._normalized_rounds()
        return float(statistics.median(values)) if values else None

    @property
    def normalized_spread_ms(self) -> float | None:
        """Max minus min of the per-round normalised figures (``None`` without a reference)."""
        values = self._normalized_rounds()
        return max(values) - min(values) if values else None


@dataclass(frozen=True)
class TableView:
    """A complete table as the service predicts from it: raw medians, its metadata, its correction."""

    medians: dict[str, float]
    fixed_raw_ms: float
    meta: dict[str, Any]
    correction: Correction | None

    @property
    def reference_ms(self) -> float | None:
        ref = self.meta.get("reference") or {}
        return ref.get("median_ms")


@dataclass(eq=False)
class _Calibration:
    """One build's reference and correction phases (mutated by the worker thread only)."""

    ms: MeasureSettings
    fp_id: str
    space: SearchSpace
    resolution: int
    table_id: int
    reference_arch: str | None
    fit: list[tuple[str, str]]  # (arch, role) of the fit networks
    references: list[dict[str, Any]] = field(default_factory=list)
    nets: NetworkSet | None = None


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
        self.method = Method(
            warmup=self.method.warmup, min_repeats=self.method.min_repeats, max_repeats=self.method.max_repeats,
            budget_s=self.method.budget_s, time_scale=settings.time_scale,
        )
        self.correction_features = parse_features(settings.correction_features)
        self.block_measurements = 0
        self.network_measurements = 0
        self.calibration_measurements = 0
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

    def invalidate_lut(self, fp_id: str, space: str, resolution: int) -> None:
        """Forget the serialised table (its metadata changed)."""
        with self._lock:
            self._lut_cache.pop((fp_id, space, resolution), None)

    def reference_arch(self, space: SearchSpace) -> str:
        """The drift reference: the space's lightest network (cheap, fixed, at the request's resolution)."""
        return str(space.arch_from_choice(space.lightest()))

    def _needs_calibration(self, meta: dict[str, Any]) -> bool:
        """Whether a table with all entries stored still lacks its reference or its correction."""
        if self.settings.drift_reference and "reference" not in meta:
            return True
        return self.settings.calibration_networks > 0 and "correction" not in meta

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
        correction = _correction_of(meta)
        fixed_ms = sum(fixed.values())
        if correction is not None:
            corrected = {str(k): correction.entry_ms(k, entries[str(k)]) for k in searchable}
            corrected_fixed = correction.fixed_ms(fixed_ms)
        else:
            corrected, corrected_fixed = dict(entries), fixed_ms
        return LutResponse(
            space=space.name,
            fingerprint=fp_id,
            backend=ms.backend,
            batch_size=ms.batch_size,
            threads=ms.threads,
            resolution=resolution,
            fixed_ms=fixed_ms,
            fixed=fixed,
            entries=entries,
            stats=stats,
            fixed_names={name: str(k) for name, k in fixed_keys.items()},
            meta=meta,
            corrected_entries=corrected,
            corrected_fixed_ms=corrected_fixed,
            correction=meta.get("correction"),
            reference=meta.get("reference"),
        )

    def lut_or_job(self, ms: MeasureSettings, space: SearchSpace, resolution: int) -> bytes | Job:
        """The complete table (serialised JSON), or the build job that completes it (started or joined).

        A build measures the missing entries, the reference network (start, middle, end) and the fit networks
        (interleaved rounds), then fits the correction; a table is complete when all of that is stored.
        """
        fp_id = self.fingerprint(ms).id
        cache_key = (fp_id, space.name, resolution)
        cached = self._lut_cache.get(cache_key)
        if cached is not None:
            return cached
        fixed_keys, searchable = self.table_keys(space, resolution)
        keys = list(fixed_keys.values()) + searchable
        rows = self.store.get_blocks(fp_id, [str(k) for k in keys])
        table = self.store.ensure_table(fp_id, space.name, resolution, len(keys))
        meta = dict(table.meta or {})
        if len(rows) == len(keys) and not self._needs_calibration(meta):
            if table.completed_at is None:
                self.store.mark_table_complete(table.id)
            body = self._lut_response(ms, fp_id, space, resolution, rows, meta).model_dump_json().encode()
            with self._lock:
                self._lut_cache[cache_key] = body
            return body
        with self._lock:
            job = self._active_builds.get(cache_key)
            if job is not None:
                return job
            missing = [k for k in keys if str(k) not in rows]
            calibration = self._calibration_plan(ms, fp_id, space, resolution, table.id)
            references = (3 if missing else 2) if calibration.reference_arch else 0
            rounds = self.settings.calibration_rounds if calibration.fit else 0
            job = Job(kind="lut", total=len(keys) + references + rounds + 1, done=len(rows),
                      params={"space": space.name, "resolution": resolution, **ms.model_dump(), "fingerprint": fp_id})
            self.jobs[job.id] = job
            self._active_builds[cache_key] = job
        log.info("table build %s: %s at %d px, %s/%d threads/batch %d: %d of %d entries to measure, "
                 "%d fit networks x %d rounds, reference %s",
                 job.id, space.name, resolution, ms.backend, ms.threads, ms.batch_size, len(missing), len(keys),
                 len(calibration.fit), self.settings.calibration_rounds,
                 "on" if calibration.reference_arch else "off")
        started = time.perf_counter()

        def finished(done_job: Job) -> None:
            with self._lock:
                self._active_builds.pop(cache_key, None)
            calibration.nets = None  # release the exported networks
            elapsed = time.perf_counter() - started
            if done_job.state == "done":
                self.store.mark_table_complete(table.id)
                self.invalidate_lut(fp_id, space.name, resolution)
                log.info("table build %s done: %d steps in %.1f s", done_job.id, done_job.total, elapsed)
            else:
                log.warning("table build %s failed after %.1f s: %s", done_job.id, elapsed, done_job.error)

        job.on_finish = finished
        progress_every = max(1, len(missing) // 10)

        def run(key: BlockKey) -> BlockFigure:
            job.mark_running()
            figure = self._measure_block_task(ms, fp_id, key)
            done = job.done + 1
            if self.settings.progress and (done - len(rows)) % progress_every == 0:
                log.info("table build %s: %d/%d steps (%.0f s)", job.id, done, job.total,
                         time.perf_counter() - started)
            return figure

        def submit(name: str, fn: Any) -> tuple[str, Future]:
            return name, self.queue.submit(("build", job.id, name), fn, priority=BACKGROUND)

        futures: list[tuple[str, Future]] = []
        if calibration.reference_arch:
            futures.append(submit("reference:start", lambda: self._reference_task(calibration, "start")))
        half = len(missing) // 2
        for i, key in enumerate(missing):
            if i == half and calibration.reference_arch and missing:
                futures.append(submit("reference:middle", lambda: self._reference_task(calibration, "middle")))
            futures.append((str(key), self.queue.submit(("block", fp_id, str(key)), lambda key=key: run(key),
                                                        priority=BACKGROUND)))
        if calibration.reference_arch:
            futures.append(submit("reference:end", lambda: self._reference_task(calibration, "end")))
        if calibration.fit:
            for r in range(self.settings.calibration_rounds):
                futures.append(submit(f"calibration:{r}", lambda: self._calibration_round_task(calibration)))
        futures.append(submit("fit", lambda: self._fit_task(calibration)))
        job.total = len(rows) + len(futures)  # the count announced above, now from the tasks themselves
        job.track(futures)
        return job

    def _calibration_plan(
        self, ms: MeasureSettings, fp_id: str, space: SearchSpace, resolution: int, table_id: int
    ) -> _Calibration:
        fit: list[tuple[str, str]] = []
        if self.settings.calibration_networks > 0:
            fit = [(str(space.arch_from_choice(space.lightest())), "lightest"),
                   (str(space.arch_from_choice(space.heaviest())), "heaviest")]
            fit += [(str(space.arch_from_choice(c)), "random")
                    for c in sample_choices(space, self.settings.calibration_networks, self.settings.calibration_seed)]
        ref = self.reference_arch(space) if self.settings.drift_reference else None
        return _Calibration(ms, fp_id, space, resolution, table_id, ref, fit)

    def _reference_task(self, cal: _Calibration, phase: str) -> float:
        """Measure the reference network once (a fresh session) during a build."""
        assert cal.reference_arch is not None
        nets = NetworkSet(self.backend(cal.ms), [cal.reference_arch], cal.resolution, self.method,
                          batch_size=cal.ms.batch_size, num_classes=cal.space.num_classes)
        stats = nets.measure_round()[0]
        with self._lock:
            self.calibration_measurements += 1
        cal.references.append({"phase": phase, "median_ms": stats.median_ms,
                               "at": datetime.now(timezone.utc).isoformat()})
        log.info("table build reference (%s): %.4f ms", phase, stats.median_ms)
        return stats.median_ms

    def _calibration_round_task(self, cal: _Calibration) -> int:
        """One interleaved round of the fit networks (and the reference, measured last in the list)."""
        if cal.nets is None:
            archs = [a for a, _ in cal.fit] + ([cal.reference_arch] if cal.reference_arch else [])
            cal.nets = NetworkSet(self.backend(cal.ms), archs, cal.resolution, self.method,
                                  batch_size=cal.ms.batch_size, num_classes=cal.space.num_classes)
        stats = cal.nets.measure_round()
        with self._lock:
            self.calibration_measurements += len(stats)
        if cal.reference_arch:
            cal.references.append({"phase": f"calibration:{cal.nets.rounds - 1}", "median_ms": stats[-1].median_ms,
                                   "at": datetime.now(timezone.utc).isoformat()})
        log.info("table build calibration round %d: %d networks", cal.nets.rounds, len(stats))
        return cal.nets.rounds

    def _fit_task(self, cal: _Calibration) -> dict[str, Any]:
        """Fit the correction on the calibration rounds and store it with the reference in the table's meta."""
        fixed_keys, searchable = self.table_keys(cal.space, cal.resolution)
        all_keys = [str(k) for k in list(fixed_keys.values()) + searchable]
        rows = self.store.get_blocks(cal.fp_id, all_keys)
        if len(rows) != len(all_keys):  # a block failed: the job fails with its error; a retry calibrates again
            log.warning("table correction not fitted: %d table entries are missing", len(all_keys) - len(rows))
            return {}
        medians = {k: rows[k].median_ms for k in all_keys}
        fixed_raw = sum(medians[str(k)] for k in fixed_keys.values())
        meta: dict[str, Any] = {}
        ref_ms: float | None = None
        if cal.reference_arch and cal.references:
            ref_ms = float(statistics.median(r["median_ms"] for r in cal.references))
            values = [r["median_ms"] for r in cal.references]
            meta["reference"] = {
                "arch": cal.reference_arch,
                "median_ms": ref_ms,
                "build_drift_pct": 100.0 * (max(values) / min(values) - 1.0),
                "measurements": cal.references,
            }
        if cal.fit:
            meta.update(self._fit_meta(cal, medians, fixed_raw, ref_ms, searchable))
        meta["calibrated_at"] = datetime.now(timezone.utc).isoformat()
        self.store.update_table_meta(cal.table_id, meta)
        self.invalidate_lut(cal.fp_id, cal.space.name, cal.resolution)
        return meta

    def _fit_meta(
        self, cal: _Calibration, medians: dict[str, float], fixed_raw: float, ref_ms: float | None,
        searchable: list[BlockKey],
    ) -> dict[str, Any]:
        assert cal.nets is not None, "the calibration rounds did not run"
        per_round = cal.nets.per_round
        n_fit = len(cal.fit)
        networks = []
        for i, (arch, role) in enumerate(cal.fit):
            values = []
            for r, stats in enumerate(per_round[i]):
                ratio = ref_ms / per_round[n_fit][r].median_ms if ref_ms and cal.reference_arch else 1.0
                values.append(stats.median_ms * ratio)  # drift-normalised to the table's reference level
            choice = cal.space.choice_from_arch(arch)
            keys = tuple(cal.space.block_key(s, j, o, cal.resolution)
                         for s, stage in enumerate(choice.options) for j, o in enumerate(stage))
            networks.append(FitNetwork(arch, keys, float(statistics.median(values)), role))
        try:
            correction = fit_correction(networks, medians, fixed_raw, features=self.correction_features)
        except (CorrectionError, np.linalg.LinAlgError) as exc:
            log.warning("table correction could not be fitted (%s): serving raw sums", exc)
            return {"correction": None, "correction_error": str(exc)}
        floored = [str(k) for k in searchable
                   if correction.unfloored_entry_ms(k, medians[str(k)]) < FLOOR_FRACTION * medians[str(k)]]
        record = correction.to_json()
        record.update({"rounds": cal.nets.rounds, "seed": self.settings.calibration_seed,
                       "floored_entries": floored})
        log.info("table correction: %s, fixed offset %.4f ms; naive MAPE %.1f %% -> leave-one-out %.2f %% "
                 "(worst %.1f %%) on %d networks", correction.coefficients, correction.fixed_offset_ms,
                 record["naive_mape_pct"], record["loo_mape_pct"], record["loo_max_abs_pct"], len(networks))
        return {"correction": record}

    def table_view(self, ms: MeasureSettings, space: SearchSpace, resolution: int) -> TableView | None:
        """The complete table's raw medians (fixed parts included), metadata and correction, or ``None``."""
        fp_id = self.fingerprint(ms).id
        fixed_keys, searchable = self.table_keys(space, resolution)
        keys = [str(k) for k in list(fixed_keys.values()) + searchable]
        rows = self.store.get_blocks(fp_id, keys)
        if len(rows) != len(keys):
            return None
        table = self.store.get_table(fp_id, space.name, resolution)
        meta = dict(table.meta or {}) if table is not None else {}
        medians = {k: rows[k].median_ms for k in keys}
        return TableView(medians, sum(medians[str(k)] for k in fixed_keys.values()), meta, _correction_of(meta))

    def table_medians(self, ms: MeasureSettings, space: SearchSpace, resolution: int) -> dict[str, float] | None:
        """``key -> median_ms`` of every table entry (fixed parts included) if the table is complete."""
        view = self.table_view(ms, space, resolution)
        return None if view is None else view.medians

    def predict(self, ms: MeasureSettings, space: SearchSpace, arch: ArchDef, resolution: int) -> Prediction | None:
        """The table's naive and corrected prediction of ``arch`` when it is in ``space`` and the table complete."""
        try:
            choice = space.choice_from_arch(arch)
            space.check_resolution(resolution)
        except SearchSpaceError:
            return None
        view = self.table_view(ms, space, resolution)
        if view is None:
            return None
        pairs = [(k, view.medians[str(k)]) for s, stage in enumerate(choice.options) for j, o in enumerate(stage)
                 for k in (space.block_key(s, j, o, resolution),)]
        naive = view.fixed_raw_ms + sum(t for _, t in pairs)
        corrected = naive if view.correction is None else view.correction.predict_ms(view.fixed_raw_ms, pairs)
        return Prediction(naive, corrected, view.reference_ms)

    def predict_ms(self, ms: MeasureSettings, space: SearchSpace, arch: ArchDef, resolution: int) -> float | None:
        """The corrected table prediction (no drift compensation), or ``None``."""
        prediction = self.predict(ms, space, arch, resolution)
        return None if prediction is None else prediction.corrected_ms

    # -- networks -------------------------------------------------------------------------------------
    def _measure_network_task(
        self, ms: MeasureSettings, fp_id: str, arch: ArchDef, resolution: int, space: SearchSpace
    ) -> NetworkResult:
        backend = self.backend(ms)
        prediction = self.predict(ms, space, arch, resolution)
        reference = None
        if self.settings.drift_reference and prediction is not None and prediction.reference_ms:
            reference = self.reference_arch(space)
        archs = [arch] + ([reference] if reference else [])
        nets = NetworkSet(backend, archs, resolution, self.method, batch_size=ms.batch_size,
                          num_classes=space.num_classes)
        for _ in range(self.settings.network_rounds):
            nets.measure_round()
        figures = nets.figures()
        figure = figures[0]
        with self._lock:
            self.network_measurements += 1
        result = NetworkResult(fp_id, figure, None, prediction, reference, figures[1] if reference else None)
        predicted = None
        if prediction is not None:
            predicted = prediction.corrected_ms * (result.drift_ratio or 1.0)
        result = NetworkResult(fp_id, figure, predicted, prediction, reference, result.reference)
        self.store.save_network(fp_id, format_arch(arch), resolution, figure.stats,
                                {**self.method_record(ms, backend), "rounds": len(figure.rounds),
                                 "spread_ms": figure.spread_ms, "drift_ratio": result.drift_ratio,
                                 "reference_ms": None if result.reference is None
                                 else result.reference.stats.median_ms,
                                 "normalized_ms": result.normalized_ms}, predicted)
        log.info("measured network at %d px: %.3f ms over %d rounds (spread %.3f ms); predicted %s%s",
                 resolution, figure.stats.median_ms, len(figure.rounds), figure.spread_ms,
                 "n/a" if predicted is None else f"{predicted:.3f} ms",
                 "" if result.normalized_ms is None
                 else f" (drift ratio {result.drift_ratio:.3f}, normalised {result.normalized_ms:.3f} ms)")
        return result

    def submit_network(self, ms: MeasureSettings, arch: ArchDef, resolution: int, space: SearchSpace) -> Future:
        """Queue a whole-network measurement (merged with an identical pending one)."""
        fp_id = self.fingerprint(ms).id
        return self.queue.submit(
            ("network", fp_id, format_arch(arch), resolution, space.name),
            lambda: self._measure_network_task(ms, fp_id, arch, resolution, space),
            priority=INTERACTIVE,
        )


def _correction_of(meta: dict[str, Any]) -> Correction | None:
    data = meta.get("correction")
    if not data:
        return None
    try:
        return Correction.from_json(data)
    except (CorrectionError, KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring a stored correction that cannot be read: %s", exc)
        return None
