"""Verdicts for models outside the search space: a timm model by name or an uploaded ONNX graph.

The same verdict as a network's (:mod:`latency_server.verdicts.networks`): rounds of the model interleaved with
the drift reference, taken until the sequential rule stops, and a bound at the requested confidence from the
reference's history. A model is inspected in the worker first (known, allowed, its cost), and its cost is checked
against the same budgets as an arch string's before anything is timed. An ONNX file's answer is stored under
``onnx:<sha256>``; the same file at the same configuration and confidence is answered from the store.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import Future
from typing import Any

from latency_server.admission.validate import InputError
from latency_server.tables.reference import reference_arch, reference_network
from latency_server.verdicts.bound import prediction_bound
from latency_server.verdicts.networks import NetworkMeasurements
from latency_server.worker.model_tasks import ModelInspection, ModelInspectTask, ModelResult, ModelSource, ModelTask
from latency_server.worker.queue import INTERACTIVE
from latency_server.worker.stats import RoundSeries
from shared.api_schemas import LatencyStats, MeasureSettings, ModelResponse, OperatorTime, Verdict
from shared.search_space import get_space

__all__ = ["ModelMeasurements"]

log = logging.getLogger(__name__)

#: the drift reference comes from this space (its lightest network), as for arch strings
_REFERENCE_SPACE = "hardcorenas"


class ModelMeasurements:
    """Inspects, admits and measures models through the network measurements' measurer and rounds."""

    def __init__(self, networks: NetworkMeasurements) -> None:
        self.networks = networks
        self.measurer = networks.measurer
        self.settings = networks.settings

    def inspect(self, source: ModelSource, resolution: int, batch_size: int) -> Future:
        """Queue the model's inspection in the worker (merged with an identical pending one)."""
        task = ModelInspectTask(source, resolution, batch_size, self.settings.max_parameters)
        return self.measurer.queue.submit(("inspect", source.key, resolution, batch_size),
                                          lambda: self.measurer.run_task(task), priority=INTERACTIVE,
                                          label=task.label)

    @staticmethod
    def refuse(inspection: ModelInspection) -> None:
        """Answer a refused inspection with a 422 that names the field."""
        if inspection.error is not None:
            raise InputError(("body", inspection.where), inspection.error)

    def cached(self, measuring: MeasureSettings, source: ModelSource, resolution: int, confidence: float,
               profile: bool) -> ModelResponse | None:
        """An ONNX file's stored answer at this configuration and confidence (with a profile if one is asked)."""
        if source.onnx is None:
            return None
        fp_id = self.measurer.fingerprint(measuring).id
        method = self.measurer.store.latest_network_method(fp_id, source.key, resolution)
        answer = (method or {}).get("model_answer")
        if not answer or (profile and not answer.get("profile")):
            return None
        if answer.get("verdict") and abs(answer["verdict"]["confidence"] - confidence) > 1e-12:
            return None
        return ModelResponse(**{**answer, "cached": True})

    def submit(self, measuring: MeasureSettings, source: ModelSource, inspection: ModelInspection, resolution: int,
               *, confidence: float = 0.95, profile: bool = False) -> Future:
        """Queue the model's measurement; refused before any work when over budget or recently fatal."""
        measurer, settings = self.measurer, self.settings
        fp_id = measurer.fingerprint(measuring).id
        failure_key = ("model", fp_id, source.key, resolution)
        loc = ("body", "timm" if source.timm is not None else "file")
        measurer.failures.refuse_if_recent(failure_key, f"the model at {resolution} px", loc)
        space = get_space(_REFERENCE_SPACE)
        reference = reference_network(space) if settings.drift_reference else None
        rounds = max(settings.verdict_max_rounds, settings.network_rounds) if reference else settings.network_rounds
        task = ModelTask(measuring, source, inspection, reference, resolution, measurer.method, rounds=rounds,
                         num_classes=space.num_classes, profile=profile)
        measurer.budget.check([(task, loc)])
        return measurer.queue.submit((*failure_key, confidence, profile),
                                     lambda: self._measure(measuring, fp_id, task, confidence, failure_key),
                                     priority=INTERACTIVE, label=task.label)

    def _measure(self, measuring: MeasureSettings, fp_id: str, task: ModelTask, confidence: float,
                 failure_key: tuple) -> ModelResponse:
        networks, measurer, settings = self.networks, self.measurer, self.settings
        resolution = task.resolution
        space = get_space(_REFERENCE_SPACE)
        reference = reference_arch(space) if task.reference is not None else None
        past = networks.history(fp_id, reference, resolution) if reference else []
        moving_ratio = networks.ratio_drift(fp_id, reference, resolution) if reference else None
        series = RoundSeries(1 + len(task.archs), batch_size=task.inspection.batch_size,
                             warmup=measurer.method.warmup)
        last: ModelResult = networks._rounds(dataclasses.replace(task, rounds=1), series, past, reference is not None,
                                             failure_key, moving_ratio)  # type: ignore[assignment]
        figures = series.figures()
        figure = figures[0]
        measurer.add_counts(networks=1)
        method = measurer.method_record(measuring, last.backend)
        verdict = None
        if reference:
            ref_rounds = series.per_round[1]
            stats = prediction_bound([r.median_ms for r in series.per_round[0]], [r.median_ms for r in ref_rounds],
                                     [v for v, _ in past] + [r.median_ms for r in ref_rounds],
                                     history_series=[label for _, label in past] + ["this"] * len(ref_rounds),
                                     confidence=confidence, future_rounds=settings.network_rounds,
                                     drift_of_ratio=moving_ratio, drift_floor=settings.verdict_drift_floor)
            verdict = Verdict(**stats.to_dict(), network_rounds_ms=[r.median_ms for r in figure.rounds],
                              reference_rounds_ms=[r.median_ms for r in ref_rounds])
            measurer.store.save_reference_figures(fp_id, reference, resolution, ref_rounds,
                                                  {**method, "source": "model measurement"})
        answer = ModelResponse(
            fingerprint=fp_id, model=task.source.key, resolution=resolution,
            measured=LatencyStats(**figure.stats.public()), rounds=[LatencyStats(**r.public()) for r in figure.rounds],
            spread_ms=figure.spread_ms, reference_ms=figures[1].stats.median_ms if reference else None,
            verdict=verdict, parameters=last.parameters, macs=last.macs, peak_memory_bytes=last.peak_memory_bytes,
            memory_source=last.memory_source,
            profile=None if last.profile is None else [OperatorTime(**op) for op in last.profile])
        record: dict[str, Any] = {**method, "rounds": len(figure.rounds), "spread_ms": figure.spread_ms,
                                  "reference_ms": answer.reference_ms,
                                  "verdict": None if verdict is None else stats.to_dict(),
                                  "model_answer": answer.model_dump(mode="json")}
        measurer.store.save_network(fp_id, task.source.key, resolution, figure.stats, record, None)
        log.info("measured %s at %d px: %.3f ms over %d rounds%s", task.source.key, resolution,
                 figure.stats.median_ms, len(figure.rounds),
                 "" if verdict is None else f"; central {verdict.central_ms:.3f} ms, bound {verdict.upper_ms:.3f} ms")
        return answer
