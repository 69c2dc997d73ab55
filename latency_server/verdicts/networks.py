"""Whole-network measurements: the verdict (a central figure and an upper bound), the table's prediction and
the device's drift.

This module owns :class:`NetworkResult` (a network's figure over independent rounds, the table's prediction, the
drift reference measured alongside, the verdict and the arithmetic between them) and :class:`NetworkMeasurements`,
which queues a measurement. A measurement times the network and the drift reference (the space's lightest network)
back to back in each round, the rounds spread out in time (``verdict_round_gap_s``); a sequential rule takes rounds
until more could hardly tighten the bound (:func:`~latency_server.verdicts.bound.enough_rounds`). Every reference round
joins the device's history, and the verdict (:func:`~latency_server.verdicts.bound.prediction_bound`) bounds a later
measurement of the network at the requested confidence from its ratio to the reference and that history. The
worker times the networks (:class:`~latency_server.worker.tasks.NetworkTask`): all rounds in one task without a
reference, one task per round with one, so that the stopping rule sees each round as it comes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from latency_server.tables.prediction import Prediction, choice_in, predict
from latency_server.tables.reference import reference_arch, reference_network
from latency_server.verdicts.bound import (
    RatioDrift,
    VerdictStats,
    device_spread,
    enough_rounds,
    prediction_bound,
    ratio_drift,
    ratio_drift_or_prior,
)
from latency_server.verdicts.drift_elasticity import Elasticity, estimate_elasticity
from latency_server.verdicts.drift_level import DriftLevel, drift_level
from latency_server.verdicts.noise_warning import noise_warning
from latency_server.verdicts.table_level import TableLevel, table_level
from latency_server.worker.queue import INTERACTIVE
from latency_server.worker.stats import NetworkFigure, RoundSeries
from latency_server.worker.tasks import NetworksResult, NetworkTask
from shared.api_schemas import NETWORK_NUM_FEATURES, NETWORK_STEM_SIZE, MeasureSettings
from shared.arch_string import ArchDef, format_arch
from shared.search_space import SearchSpace

if TYPE_CHECKING:
    from latency_server.admission.measurer import Measurer
    from latency_server.tables.builds import TableBuilds

__all__ = ["DEFAULT_WIDTH", "NetworkMeasurements", "NetworkResult", "network_key"]

log = logging.getLogger(__name__)

#: (stem_size, num_features) of the space's networks: the only stem and head the tables predict
DEFAULT_WIDTH = (NETWORK_STEM_SIZE, NETWORK_NUM_FEATURES)


def network_key(arch: ArchDef, width: tuple[int, int] = DEFAULT_WIDTH) -> str:
    """The network's one string form: its failure key and its key in the store. Another stem or head is part of
    the key, so the same arch with another head never shares the default's figures, repeats or failures; the
    default keeps the bare arch string (the keys stored so far)."""
    text = format_arch(arch)
    return text if width == DEFAULT_WIDTH else f"{text} stem_size={width[0]} num_features={width[1]}"


@dataclass(frozen=True)
class NetworkResult:
    """A whole-network measurement, the table's prediction, and the drift reference measured alongside."""

    fingerprint: str
    figure: NetworkFigure
    predicted_ms: float | None
    prediction: Prediction | None = None
    reference_arch: str | None = None
    reference: NetworkFigure | None = None
    verdict: VerdictStats | None = None
    elasticity: Elasticity | None = None  # the between-request slope: a diagnostic, not applied
    level: DriftLevel | None = None  # the reference's smoothed level now: reported beside the request's own
    table: TableLevel | None = None  # the table's level against other networks' recent measurements
    #: the bound's arguments but the confidence: one measurement answers requests at any confidence
    bound_inputs: dict[str, Any] | None = dataclasses.field(default=None, repr=False, compare=False)
    #: the too-noisy warning's arguments, so a bound at another confidence is judged the same way
    warning_inputs: dict[str, Any] | None = dataclasses.field(default=None, repr=False, compare=False)

    def at_confidence(self, confidence: float) -> NetworkResult:
        """This result with its verdict bounded at ``confidence`` (the same rounds and history)."""
        if self.bound_inputs is None or (self.verdict is not None and self.verdict.confidence == confidence):
            return self
        verdict = prediction_bound(**self.bound_inputs, confidence=confidence)
        if self.warning_inputs is not None:
            verdict = dataclasses.replace(verdict, noise_warning=noise_warning(verdict, **self.warning_inputs))
        return dataclasses.replace(self, verdict=verdict)

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


class NetworkMeasurements:
    """Queues whole-network measurements through the measurer and stores their figures; predictions come from
    the tables."""

    def __init__(self, measurer: Measurer, tables: TableBuilds) -> None:
        self.measurer = measurer
        self.tables = tables
        self.settings = measurer.settings
        self.last_verdict: dict[str, Any] | None = None  # the newest verdict's figures, no arch string

    def task(self, measuring: MeasureSettings, archs: list[ArchDef], resolution: int, space: SearchSpace,
             *, rounds: int = 1, first_round: int = 0, width: tuple[int, int] = DEFAULT_WIDTH) -> NetworkTask:
        """The worker task that times ``archs`` (a network with ``width``'s stem and head, then the reference with
        the default's) over ``rounds`` rounds."""
        return NetworkTask(measuring, tuple(archs), resolution, self.measurer.method,
                           rounds=rounds, num_classes=space.num_classes, first_round=first_round,
                           widths=() if width == DEFAULT_WIDTH else (width,))

    def submit(
        self, measuring: MeasureSettings, arch: ArchDef, resolution: int, space: SearchSpace, *,
        confidence: float = 0.95, width: tuple[int, int] = DEFAULT_WIDTH,
    ) -> Future:
        """Queue a whole-network measurement (merged with an identical pending one, whatever its confidence: the
        rounds do not depend on it, so take the result's :meth:`NetworkResult.at_confidence`); refused before any
        work when over budget (counting the most rounds the sequential rule may take) or when it recently killed
        the worker."""
        measurer, settings = self.measurer, self.settings
        fp_id = measurer.fingerprint(measuring).id
        key = network_key(arch, width)
        failure_key = ("network", fp_id, key, resolution, space.name)
        measurer.failures.refuse_if_recent(failure_key, f"the network at {resolution} px", ("body", "arch"))
        archs = [arch] + ([reference_network(space)] if settings.drift_reference else [])
        rounds = max(settings.verdict_max_rounds, settings.network_rounds) if settings.drift_reference \
            else settings.network_rounds
        task = self.task(measuring, archs, resolution, space, rounds=rounds, width=width)
        measurer.budget.check([(task, ("body", "arch"))])
        return measurer.queue.submit(
            failure_key,
            lambda: self._measure(measuring, fp_id, arch, key, resolution, space, confidence, failure_key, width),
            priority=INTERACTIVE, label=f"network at {resolution} px",
        )

    def history(self, fp_id: str, reference: str, resolution: int) -> list[tuple[float, str]]:
        """The drift reference's recent figures on this configuration (the device's variability), each with its
        series (the measurement it came from)."""
        since = datetime.now(timezone.utc) - timedelta(hours=self.settings.verdict_history_hours)
        return self.measurer.store.reference_history(fp_id, reference, resolution, limit=self.settings.verdict_history,
                                                    since=since)

    def ratio_drift(self, fp_id: str, reference: str, resolution: int) -> RatioDrift:
        """How much networks' ratios to the reference moved between their measurements on this configuration."""
        since = datetime.now(timezone.utc) - timedelta(hours=self.settings.verdict_history_hours)
        return ratio_drift(self.measurer.store.network_ratios(fp_id, reference, resolution, since=since),
                           max_repeats=self.settings.pooled_repeats_per_network)

    def elasticity(self, fp_id: str, reference: str, resolution: int) -> Elasticity:
        """How far networks' figures follow the reference's on this configuration (the drift ratio's exponent)."""
        since = datetime.now(timezone.utc) - timedelta(hours=self.settings.verdict_history_hours)
        groups = self.measurer.store.network_reference_pairs(fp_id, reference, resolution, since=since)
        return estimate_elasticity(groups, self.settings.drift_elasticity_prior,
                                   self.settings.drift_elasticity_prior_sd,
                                   max_repeats=self.settings.pooled_repeats_per_network)

    def level(self, fp_id: str, reference: str, resolution: int, request_ms: list[float]) -> DriftLevel | None:
        """The reference's smoothed level now: its figures within the window and this request's rounds."""
        since = datetime.now(timezone.utc) - timedelta(seconds=self.settings.drift_level_window_s)
        window = self.measurer.store.reference_history(fp_id, reference, resolution,
                                                       limit=self.settings.verdict_history, since=since)
        return drift_level(window, request_ms)

    def table_level(self, fp_id: str, resolution: int, prediction: Prediction, key: str) -> TableLevel | None:
        """How far other networks' recent normalised figures sit from this table (:mod:`.table_level`)."""
        if not prediction.reference_ms:
            return None
        since = datetime.now(timezone.utc) - timedelta(seconds=self.settings.table_level_window_s)
        residuals = self.measurer.store.table_residuals(fp_id, resolution, prediction.reference_ms, since=since)
        return table_level(residuals, exclude=key, prior_sd=self.settings.table_level_prior_sd,
                           max_repeats=self.settings.pooled_repeats_per_network)

    def _rounds(self, task: NetworkTask, series: RoundSeries, past: list[tuple[float, str]], with_reference: bool,
                failure_key: tuple, moving_ratio: RatioDrift | None = None) -> NetworksResult:
        """Rounds, spread out in time, until the sequential rule stops (a fixed count without a reference)."""
        settings, measurer = self.settings, self.measurer
        if not with_reference:
            result = measurer.run_task(dataclasses.replace(task, rounds=settings.network_rounds), (failure_key,))
            series.add_task(result.figures, result.samples_s)
            return result
        kept = [(v, series) for v, series in past if v > 0]
        sd_device = None
        if len(kept) >= 3:
            spread = device_spread(np.log([v for v, _ in kept]), [label for _, label in kept],
                                   drift_floor=settings.verdict_drift_floor)
            ratio_var, _, _ = ratio_drift_or_prior(moving_ratio, spread)
            sd_device = math.sqrt(spread.later_sd(settings.network_rounds) ** 2 + ratio_var)
        while True:
            result = measurer.run_task(dataclasses.replace(task, first_round=series.rounds), (failure_key,))
            series.add_task(result.figures, result.samples_s)
            if enough_rounds([r.median_ms for r in series.per_round[0]], [r.median_ms for r in series.per_round[1]],
                             sd_device=sd_device, min_rounds=settings.network_rounds,
                             max_rounds=max(settings.verdict_max_rounds, settings.network_rounds),
                             share=settings.verdict_share, future_rounds=settings.network_rounds):
                return result
            time.sleep(settings.verdict_round_gap_s)

    def _measure(
        self, measuring: MeasureSettings, fp_id: str, arch: ArchDef, key: str, resolution: int, space: SearchSpace,
        confidence: float, failure_key: tuple, width: tuple[int, int] = DEFAULT_WIDTH,
    ) -> NetworkResult:
        measurer = self.measurer
        # the tables hold the space's stem and head only: another one is a network outside the space
        choice = choice_in(space, arch, resolution) if width == DEFAULT_WIDTH else None
        view = None if choice is None else self.tables.view(measuring, space, resolution)
        prediction = None if choice is None or view is None else predict(view, space, choice, resolution)
        reference = reference_arch(space) if self.settings.drift_reference else None
        past = self.history(fp_id, reference, resolution) if reference else []
        moving_ratio = self.ratio_drift(fp_id, reference, resolution) if reference else None
        elasticity = self.elasticity(fp_id, reference, resolution) if reference else None
        archs = [arch] + ([reference_network(space)] if reference else [])
        series = RoundSeries(len(archs), batch_size=measuring.batch_size, warmup=measurer.method.warmup)
        last = self._rounds(self.task(measuring, archs, resolution, space, width=width), series, past,
                            reference is not None, failure_key, moving_ratio)
        figures = series.figures()
        figure = figures[0]
        measurer.add_counts(networks=1, backend=measuring.backend)
        method = measurer.method_record(measuring, last.backend)
        verdict = level = None
        bound_inputs: dict[str, Any] = {}
        warning_inputs = dict(threshold=self.settings.too_noisy_ratio, future_rounds=self.settings.network_rounds,
                              max_rounds=max(self.settings.verdict_max_rounds, self.settings.network_rounds))
        if reference:
            ref_rounds = series.per_round[1]
            bound_inputs = dict(network_ms=[r.median_ms for r in series.per_round[0]],
                                reference_ms=[r.median_ms for r in ref_rounds],
                                history_ms=[v for v, _ in past] + [r.median_ms for r in ref_rounds],
                                history_series=[label for _, label in past] + ["this"] * len(ref_rounds),
                                future_rounds=self.settings.network_rounds, drift_of_ratio=moving_ratio,
                                drift_floor=self.settings.verdict_drift_floor)
            verdict = prediction_bound(**bound_inputs, confidence=confidence)
            verdict = dataclasses.replace(verdict, noise_warning=noise_warning(verdict, **warning_inputs))
            level = self.level(fp_id, reference, resolution, [r.median_ms for r in ref_rounds])
            measurer.store.save_reference_figures(fp_id, reference, resolution, ref_rounds,
                                                 {**method, "source": "network measurement"})
        table = None if prediction is None or not reference else self.table_level(fp_id, resolution, prediction, key)
        result = NetworkResult(fp_id, figure, None, prediction, reference, figures[1] if reference else None,
                               verdict, elasticity, level, table, bound_inputs if reference else None,
                               warning_inputs if reference else None)
        predicted = None
        if prediction is not None:
            # the device's speed now as the reference timed beside this network shows it, in full (exponent 1), and
            # the table's level as other networks measure it now (verdicts.table_level)
            predicted = prediction.corrected_ms * (table.factor if table else 1.0) * (result.drift_ratio or 1.0)
        result = dataclasses.replace(result, predicted_ms=predicted)
        check = None
        if prediction is not None and result.normalized_ms and prediction.corrected_ms > 0:
            check = {"log_residual": math.log(result.normalized_ms / prediction.corrected_ms),
                     "table_reference_ms": prediction.reference_ms}
        self._observe(measuring, resolution, result)
        measurer.store.save_network(fp_id, key, resolution, figure.stats,
                                   {**method, "rounds": len(figure.rounds), "spread_ms": figure.spread_ms,
                                    "drift_ratio": result.drift_ratio,
                                    "drift_elasticity": None if elasticity is None else elasticity.to_dict(),
                                    "drift_level": None if level is None else level.to_dict(),
                                    "table_level": None if table is None else table.to_dict(), "table_check": check,
                                    "reference_ms": None if result.reference is None
                                    else result.reference.stats.median_ms,
                                    "normalized_ms": result.normalized_ms,
                                    "verdict": None if verdict is None else verdict.to_dict()}, predicted)
        log.info("measured network at %d px: %.3f ms over %d rounds (spread %.3f ms); %s; predicted %s",
                 resolution, figure.stats.median_ms, len(figure.rounds), figure.spread_ms,
                 "no verdict" if verdict is None else
                 f"central {verdict.central_ms:.3f} ms, {100 * confidence:.0f} % bound {verdict.upper_ms:.3f} ms "
                 f"(history {verdict.history}, device sd {100 * math.expm1(verdict.sd_device):.1f} %"
                 + ("" if verdict.sd_drift is None else f": drift {100 * math.expm1(verdict.sd_drift):.1f} %, "
                    f"jitter {100 * math.expm1(verdict.sd_jitter or 0.0):.1f} %")
                 + f"; ratio drift {100 * math.expm1(verdict.sd_ratio_drift or 0.0):.1f} % "
                   f"({verdict.ratio_drift_source}))",
                 "n/a" if predicted is None else f"{predicted:.3f} ms")
        return result

    def _observe(self, measuring: MeasureSettings, resolution: int, result: NetworkResult) -> None:
        """The configuration's drift ratio now and the verdict's margin, for the metrics."""
        metrics = self.measurer.metrics
        if result.drift_ratio is not None:
            metrics.drift(measuring.backend, measuring.threads, measuring.batch_size, resolution, result.drift_ratio)
        verdict = result.verdict
        if verdict is not None and verdict.central_ms > 0:
            metrics.bound_ratio.labels(backend=measuring.backend).observe(verdict.upper_ms / verdict.central_ms)
            self.last_verdict = {
                "central_ms": verdict.central_ms, "upper_ms": verdict.upper_ms, "confidence": verdict.confidence,
                "measured_ms": result.figure.stats.median_ms, "predicted_ms": result.predicted_ms,
                "backend": measuring.backend, "threads": measuring.threads, "batch_size": measuring.batch_size,
                "resolution": resolution, "at": datetime.now(timezone.utc).isoformat(),
            }
