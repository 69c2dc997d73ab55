"""A table build's reference and correction phases.

This module owns what a build measures besides the table's entries and what it derives from that: the plan
(which fit networks, which drift reference), the reference task (the reference network timed alone at the
start, middle and end of the build), the calibration rounds (the fit networks with several sessions of the
reference spread among them, each in a fresh session, one worker task per round), and the fit of the
whole-network correction, returned as the table metadata to store.

The reference's figure can jump from one fresh session to the next by more than the networks timed beside it
move (on the build machine a quarter of its sessions ran about 20 % faster, the networks beside them 4 %), so the
table's reference level is the median of all the build's reference sessions, and the fit networks are brought
to that level by one factor for the calibration phase (the level over the median of the phase's reference
sessions), not each by its own round's single reference figure.

Each task runs on the measurement queue's thread, which alone mutates a :class:`BuildCalibration`; storing the
metadata and forgetting the served table is the table module's job.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from latency_server.store.measurement_settings import calibration_settings, fitted_on
from latency_server.tables.correction import (
    FLOOR_FRACTION,
    CorrectionError,
    FitNetwork,
    fit_correction,
    parse_features,
    sample_choices,
)
from latency_server.tables.prediction import TableView
from latency_server.tables.reference import reference_arch, reference_network
from latency_server.worker.stats import Stats
from latency_server.worker.tasks import NetworksResult, NetworkTask
from shared.api_schemas import MeasureSettings
from shared.arch_string import parse_arch
from shared.block_key import BlockKey
from shared.search_space import SearchSpace

if TYPE_CHECKING:
    from latency_server.admission.measurer import Measurer

__all__ = ["BuildCalibration", "Calibrator", "fit_medians", "reference_arch", "reference_level", "reference_network"]

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass(eq=False)
class BuildCalibration:
    """One build's reference and correction phases (mutated by the worker thread only)."""

    measuring: MeasureSettings
    fp_id: str
    space: SearchSpace
    resolution: int
    reference_arch: str | None
    fit: list[tuple[str, str]]  # (arch, role) of the fit networks
    reference_sessions: int = 1  # the reference's sessions per calibration round
    references: list[dict[str, Any]] = field(default_factory=list)
    per_round: list[list[Stats]] = field(default_factory=list)  # per position of round_archs: each round's
    rounds: int = 0

    @property
    def reference_positions(self) -> list[int]:
        """Where the reference's sessions sit in :attr:`round_archs`: after each of ``reference_sessions`` even
        slices of the fit networks (the last at the end of the round)."""
        if not self.reference_arch:
            return []
        k, n = self.reference_sessions, len(self.fit)
        ends = [(j + 1) * n // k for j in range(k)]  # fit networks before each reference session
        return [end + j for j, end in enumerate(ends)]

    @property
    def fit_positions(self) -> list[int]:
        """Where the fit networks sit in :attr:`round_archs` (in the order of ``fit``)."""
        refs = set(self.reference_positions)
        return [i for i in range(len(self.fit) + len(refs)) if i not in refs]

    @property
    def round_archs(self) -> list[str]:
        """The networks of a calibration round: the fit networks with the reference's sessions among them."""
        out: list[str] = [""] * (len(self.fit) + len(self.reference_positions))
        for i, (arch, _) in zip(self.fit_positions, self.fit, strict=True):
            out[i] = arch
        for i in self.reference_positions:
            out[i] = self.reference_arch or ""
        return out

    @property
    def failure_key(self) -> tuple[str, str, str, int]:
        return ("table", self.fp_id, self.space.name, self.resolution)


def reference_level(cal: BuildCalibration) -> float | None:
    """The table's reference level: the median of every reference session of the build (``None`` without)."""
    if not (cal.reference_arch and cal.references):
        return None
    return float(statistics.median(r["median_ms"] for r in cal.references))


def fit_medians(cal: BuildCalibration, level_ms: float | None) -> list[float]:
    """Each fit network's median over the calibration rounds at the table's reference level ``level_ms``: one
    factor for the phase (the level over the median of the phase's reference sessions), since one round's
    reference figure moves more than the networks timed beside it."""
    sessions = [stats.median_ms for i in cal.reference_positions for stats in cal.per_round[i]]
    factor = level_ms / statistics.median(sessions) if level_ms and sessions else 1.0
    return [float(statistics.median(stats.median_ms for stats in cal.per_round[i]) * factor)
            for i in cal.fit_positions]


class Calibrator:
    """Plans and runs the reference and calibration tasks of table builds, and fits their correction."""

    def __init__(self, measurer: Measurer) -> None:
        self.measurer = measurer
        self.settings = measurer.settings
        self.correction_features = parse_features(self.settings.correction_features)

    def plan(self, measuring: MeasureSettings, fp_id: str, space: SearchSpace, resolution: int) -> BuildCalibration:
        """The fit networks (lightest, heaviest, seeded random ones) and the reference a build measures."""
        fit: list[tuple[str, str]] = []
        if self.settings.calibration_networks > 0:
            fit = [(reference_arch(space), "lightest"), (str(space.arch_from_choice(space.heaviest())), "heaviest")]
            fit += [(str(space.arch_from_choice(c)), "random")
                    for c in sample_choices(space, self.settings.calibration_networks, self.settings.calibration_seed)]
        ref = reference_arch(space) if self.settings.drift_reference else None
        return BuildCalibration(measuring, fp_id, space, resolution, ref, fit,
                                reference_sessions=self.settings.calibration_reference_sessions)

    def network_task(self, cal: BuildCalibration, archs: list[str], first_round: int = 0) -> NetworkTask:
        """One round of ``archs`` in a fresh session each (the worker keeps their exports between rounds)."""
        networks = tuple(parse_arch(a) for a in archs)  # calibration keeps arch strings: they key the store
        return NetworkTask(cal.measuring, networks, cal.resolution, self.measurer.method, rounds=1,
                           num_classes=cal.space.num_classes, first_round=first_round)

    def tasks(self, cal: BuildCalibration, *, references: int) -> list[NetworkTask]:
        """What a build's reference and calibration phases will ask of the worker (for its budget)."""
        out = [self.network_task(cal, [cal.reference_arch])] * references if cal.reference_arch else []
        if cal.fit:
            out += [self.network_task(cal, cal.round_archs, r) for r in range(self.settings.calibration_rounds)]
        return out

    def reference_task(self, cal: BuildCalibration, phase: str) -> float:
        """Measure the reference network once (a fresh session) during a build."""
        assert cal.reference_arch is not None
        result: NetworksResult = self.measurer.run_task(self.network_task(cal, [cal.reference_arch]),
                                                       (cal.failure_key,))
        stats = result.figures[0].rounds[0]
        self.measurer.add_counts(references=1, backend=cal.measuring.backend)
        self._keep_reference(cal, [stats], phase, result.backend)
        cal.references.append({"phase": phase, "median_ms": stats.median_ms, "at": _now()})
        log.info("table build reference (%s): %.4f ms", phase, stats.median_ms)
        return stats.median_ms

    def _keep_reference(self, cal: BuildCalibration, stats: list[Stats], phase: str, backend: dict[str, Any]) -> None:
        """A build's reference figures join the device's history (what network verdicts bound with)."""
        assert cal.reference_arch is not None
        method = {**self.measurer.method_record(cal.measuring, backend), "source": f"table build ({phase})"}
        self.measurer.store.save_reference_figures(cal.fp_id, cal.reference_arch, cal.resolution, stats, method)

    def round_task(self, cal: BuildCalibration) -> int:
        """One interleaved round of the fit networks and the reference's sessions among them."""
        result: NetworksResult = self.measurer.run_task(self.network_task(cal, cal.round_archs, cal.rounds),
                                                       (cal.failure_key,))
        stats = [figure.rounds[0] for figure in result.figures]
        if not cal.per_round:
            cal.per_round = [[] for _ in stats]
        for series, round_stats in zip(cal.per_round, stats, strict=True):
            series.append(round_stats)
        cal.rounds += 1
        self.measurer.add_counts(calibration=len(stats), backend=cal.measuring.backend)
        if cal.reference_arch:
            sessions = [stats[i] for i in cal.reference_positions]
            cal.references += [{"phase": f"calibration:{cal.rounds - 1}", "median_ms": r.median_ms, "at": _now()}
                               for r in sessions]
            self._keep_reference(cal, sessions, "calibration", result.backend)
        log.info("table build calibration round %d: %d networks", cal.rounds, len(stats))
        return cal.rounds

    def fitted_meta(self, cal: BuildCalibration, view: TableView, searchable: list[BlockKey]) -> dict[str, Any]:
        """The table metadata the build stores: the reference summary, the fitted correction, the time."""
        meta: dict[str, Any] = {}
        ref_ms = reference_level(cal)
        if ref_ms is not None:
            values = [r["median_ms"] for r in cal.references]
            meta["reference"] = {
                "arch": cal.reference_arch,
                "median_ms": ref_ms,
                "build_drift_pct": 100.0 * (max(values) / min(values) - 1.0),
                "measurements": cal.references,
            }
        if cal.fit:
            meta.update(self._correction_meta(cal, view, ref_ms, searchable))
        meta["calibrated_at"] = _now()
        return meta

    def _correction_meta(
        self, cal: BuildCalibration, view: TableView, ref_ms: float | None, searchable: list[BlockKey]
    ) -> dict[str, Any]:
        assert cal.rounds > 0, "the calibration rounds did not run"
        networks = []
        for (arch, role), median in zip(cal.fit, fit_medians(cal, ref_ms), strict=True):
            choice = cal.space.choice_from_arch(arch)
            keys = tuple(cal.space.block_key(s, j, o, cal.resolution)
                         for s, stage in enumerate(choice.options) for j, o in enumerate(stage))
            networks.append(FitNetwork(arch, keys, median, role))
        medians = view.medians
        try:
            correction = fit_correction(networks, medians, view.fixed_raw_ms,
                                        features=self.correction_features)
        except (CorrectionError, np.linalg.LinAlgError) as exc:
            log.warning("table correction could not be fitted (%s): serving raw sums", exc)
            return {"correction": None, "correction_error": str(exc)}
        floored = [str(k) for k in searchable
                   if correction.unfloored_entry_ms(k, medians[str(k)]) < FLOOR_FRACTION * medians[str(k)]]
        record = correction.to_json()
        record.update({"rounds": cal.rounds, "seed": self.settings.calibration_seed,
                       "floored_entries": floored, "fitted_on": fitted_on(
                           self.measurer.store.settings_hash, calibration_settings(self.settings), medians)})
        log.info("table correction: %s, fixed offset %.4f ms; naive MAPE %.1f %% -> leave-one-out %.2f %% "
                 "(worst %.1f %%) on %d networks", correction.coefficients, correction.fixed_offset_ms,
                 record["naive_mape_pct"], record["loo_mape_pct"], record["loo_max_abs_pct"], len(networks))
        return {"correction": record}
