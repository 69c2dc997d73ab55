"""Whole-network measurements, compared with the table's prediction and compensated for the device's drift.

This module owns :class:`NetworkResult` (a network's figure over independent rounds, the table's prediction,
the drift reference measured alongside, and the arithmetic between them) and :class:`NetworkMeasurements`,
which queues a measurement: the network and, when the table was built with a drift reference, that
reference network too, timed round-robin in the same rounds so that slow drift of the device moves both
alike (one :class:`~latency_server.tasks.NetworkTask` run by the worker); the figure is stored with how it
was measured.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from latency_server.calibration import reference_arch
from latency_server.prediction import Prediction, choice_in, predict
from latency_server.queue import INTERACTIVE
from latency_server.stats import NetworkFigure
from latency_server.tasks import NetworksResult, NetworkTask
from shared.api_schemas import MeasureSettings
from shared.arch_string import ArchDef, format_arch
from shared.search_space import SearchSpace

if TYPE_CHECKING:
    from latency_server.service import LatencyService

__all__ = ["NetworkMeasurements", "NetworkResult"]

log = logging.getLogger(__name__)


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


class NetworkMeasurements:
    """Queues whole-network measurements on the service's queue and stores their figures."""

    def __init__(self, service: LatencyService) -> None:
        self.service = service
        self.settings = service.settings

    def task(self, measuring: MeasureSettings, archs: list[ArchDef | str], resolution: int,
             space: SearchSpace) -> NetworkTask:
        """The worker task that measures ``archs`` (a network, then the reference) over the configured rounds."""
        return NetworkTask(measuring, tuple(a if isinstance(a, str) else format_arch(a) for a in archs), resolution,
                           self.service.method, rounds=self.settings.network_rounds, num_classes=space.num_classes)

    def submit(self, measuring: MeasureSettings, arch: ArchDef, resolution: int, space: SearchSpace) -> Future:
        """Queue a whole-network measurement (merged with an identical pending one); refused before any work
        when over budget or when the same measurement recently killed the worker."""
        fp_id = self.service.fingerprint(measuring).id
        key = ("network", fp_id, format_arch(arch), resolution, space.name)
        self.service.failures.refuse_if_recent(key, f"the network at {resolution} px", ("body", "arch"))
        archs: list[ArchDef | str] = [arch] + ([reference_arch(space)] if self.settings.drift_reference else [])
        self.service.budget.check([(self.task(measuring, archs, resolution, space), ("body", "arch"))])
        return self.service.queue.submit(key, lambda: self._measure(measuring, fp_id, arch, resolution, space, key),
                                         priority=INTERACTIVE, label=f"network at {resolution} px")

    def _measure(
        self, measuring: MeasureSettings, fp_id: str, arch: ArchDef, resolution: int, space: SearchSpace,
        failure_key: tuple,
    ) -> NetworkResult:
        service = self.service
        choice = choice_in(space, arch, resolution)
        view = None if choice is None else service.tables.view(measuring, space, resolution)
        prediction = None if choice is None or view is None else predict(view, space, choice, resolution)
        reference = None
        if self.settings.drift_reference and prediction is not None and prediction.reference_ms:
            reference = reference_arch(space)
        archs: list[ArchDef | str] = [arch] + ([reference] if reference else [])
        measured: NetworksResult = service.run_task(self.task(measuring, archs, resolution, space), (failure_key,))
        figures = measured.figures
        figure = figures[0]
        service.add_counts(networks=1)
        result = NetworkResult(fp_id, figure, None, prediction, reference, figures[1] if reference else None)
        predicted = None
        if prediction is not None:
            predicted = prediction.corrected_ms * (result.drift_ratio or 1.0)
        result = dataclasses.replace(result, predicted_ms=predicted)
        service.store.save_network(fp_id, format_arch(arch), resolution, figure.stats,
                                   {**service.method_record(measuring, measured.backend), "rounds": len(figure.rounds),
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
