"""Independent interleaved rounds of whole networks (fake backend: no timing noise) and the time-scale hook."""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from latency_server.tables.prediction import Prediction
from latency_server.verdicts.networks import NetworkResult
from latency_server.worker.backends.base import Backend, Runner
from latency_server.worker.timing import Method, NetworkFigure, NetworkSet, Stats
from shared.arch_string import parse_arch
from shared.published import PUBLISHED
from tests.latency_server.timing_helpers import measure_networks

FAST = Method(warmup=1, min_repeats=3, budget_s=0.0)


class _FakeRunner(Runner):
    def __init__(self, backend: _FakeBackend, name: int) -> None:
        self.backend, self.name = backend, name

    def run(self) -> None:
        pass

    def timed(self) -> float:
        self.backend.timeline.append(self.name)
        return 0.001 * (self.name + 1)


class _FakeBackend(Backend):
    """Each network 'takes' (index + 1) ms; records which network ran when and how often it was prepared."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__(1)
        self.timeline: list[int] = []
        self.prepared: list[int] = []
        self.exports: list[object] = []
        self._count = 0

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:  # pragma: no cover - factory is used
        raise AssertionError("NetworkSet must prepare through factory()")

    def factory(self, module, example, *, cache_key=None):
        index = self._count
        self._count += 1
        self.exports.append(cache_key)

        def session() -> Runner:
            self.prepared.append(index)
            return _FakeRunner(self, index)

        return session


def test_rounds_interleave_alternate_and_open_fresh_sessions() -> None:
    backend = _FakeBackend()
    archs = [parse_arch(PUBLISHED["A"].arch), parse_arch(PUBLISHED["B"].arch)]
    nets = NetworkSet(backend, archs, 32, FAST)
    for _ in range(3):
        nets.measure_round()
    assert backend.prepared == [0, 1, 1, 0, 0, 1]  # a fresh session per round, order alternating
    figures = nets.figures()
    assert [len(f.rounds) for f in figures] == [3, 3]
    assert [f.stats.median_ms for f in figures] == [1.0, 2.0]
    assert len(set(backend.exports)) == 2 and all(k[0] == "network" for k in backend.exports)


def test_time_scale_multiplies_every_timed_duration() -> None:
    scaled = measure_networks(_FakeBackend(), [PUBLISHED["A"].arch], 32, Method(warmup=1, min_repeats=3,
                                                                                budget_s=0.0, time_scale=2.5))
    assert scaled[0].stats.median_ms == 2.5 and scaled[0].spread_ms == 0.0


def _figure(medians: list[float]) -> NetworkFigure:
    rounds = [Stats(m, 0.0, m, m, m, 10, 1) for m in medians]
    return NetworkFigure(Stats(statistics.median(medians), 0.0, 0.0, 0.0, 0.0, 10 * len(medians), 1), rounds)


def test_normalized_figure_pairs_each_round_with_its_reference() -> None:
    # the device slows down by up to 30 % during the request and one round is disturbed (an outlier for the
    # network only): the raw median follows the drift, the paired figure stays at the table-time speed
    speed = [1.0, 1.1, 1.3, 1.2, 1.05, 1.0, 1.25]
    network = [5.0 * s for s in speed]
    network[3] *= 1.5
    reference = [2.0 * s for s in speed]
    result = NetworkResult("fp", _figure(network), None, Prediction(5.0, 5.0, reference_ms=2.0), "ref",
                           _figure(reference))
    assert result.figure.stats.median_ms >= 5.5  # 10 % above the table-time figure
    assert result.round_ratios()[0] == pytest.approx(2.5)
    assert result.normalized_ms == pytest.approx(5.0)
    assert result.normalized_spread_ms == pytest.approx(2.0 * 2.5 * 0.5)
    assert result.drift_ratio == pytest.approx(statistics.median(reference) / 2.0)
    # without a table reference there is nothing to normalise to
    bare = NetworkResult("fp", _figure(network), None, None, "ref", _figure(reference))
    assert bare.normalized_ms is None and bare.normalized_spread_ms is None
