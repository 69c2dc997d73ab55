"""The measurement method and backends (real ORT sessions and torch modules at tiny sizes)."""

from __future__ import annotations

import gc

import numpy as np
import onnx
import pytest
import torch

from latency_server.worker.backends import BackendUnavailable, available_backends, make_backend
from latency_server.worker.backends.base import Runner
from latency_server.worker.backends.onnxruntime import OnnxRuntimeBackend, export_onnx
from latency_server.worker.backends.torch_cuda import TorchCudaBackend
from latency_server.worker.timing import (
    Method,
    Stats,
    measure_block,
    measure_interleaved,
    measure_module,
    time_runner,
)
from shared.builders import block_input, build_block
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS
from tests.latency_server.timing_helpers import measure_network

FAST = Method(warmup=10, min_repeats=5, budget_s=0.0)
KEY = HARDCORENAS.searchable_keys(32)[0]


class CountingRunner(Runner):
    """Records calls and whether gc was enabled while timing; each run "takes" 2 ms."""

    def __init__(self) -> None:
        self.runs = 0
        self.timed_calls = 0
        self.gc_during_timing: set[bool] = set()

    def run(self) -> None:
        self.runs += 1

    def timed(self) -> float:
        self.timed_calls += 1
        self.gc_during_timing.add(gc.isenabled())
        return 0.002


def test_stats_are_ms_per_image() -> None:
    stats = Stats.from_seconds([0.004, 0.008, 0.006, 0.010, 0.002], batch_size=2, warmup=10)
    assert stats.median_ms == pytest.approx(3.0)
    assert stats.iqr_ms == pytest.approx(4.0 - 2.0)  # ms per image: 1, 2, 3, 4, 5
    assert stats.p90_ms == pytest.approx(np.percentile([2, 4, 3, 5, 1], 90))
    assert stats.min_ms == pytest.approx(1.0) and stats.mean_ms == pytest.approx(3.0)
    assert stats.samples == 5 and stats.warmup == 10
    assert set(stats.public()) == {"median_ms", "iqr_ms", "p90_ms", "samples", "warmup"}
    with pytest.raises(ValueError):
        Stats.from_seconds([])


def test_time_runner_warms_up_respects_floor_and_disables_gc() -> None:
    runner = CountingRunner()
    samples = time_runner(runner, Method(warmup=12, min_repeats=30, budget_s=0.0))
    assert runner.runs == 12 and len(samples) == 30 == runner.timed_calls
    assert runner.gc_during_timing == {False} and gc.isenabled()


def test_time_runner_fills_the_budget_up_to_the_ceiling() -> None:
    runner = CountingRunner()
    samples = time_runner(runner, Method(warmup=10, min_repeats=3, max_repeats=5000, budget_s=0.05))
    assert 3 < len(samples) <= 5000  # wall-clock budget: many more runs than the floor
    capped = time_runner(CountingRunner(), Method(warmup=10, min_repeats=3, max_repeats=7, budget_s=10.0))
    assert len(capped) == 7


def test_method_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Method(min_repeats=10, max_repeats=5)
    with pytest.raises(ValueError):
        Method(budget_s=-1)


@pytest.mark.parametrize("backend_name", ["onnxruntime", "torch-cpu"])
def test_measure_block_on_cpu_backends(backend_name: str) -> None:
    stats = measure_block(make_backend(backend_name), KEY, FAST)
    assert 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms and stats.samples == 5 and stats.warmup == 10


def test_batch_size_divides() -> None:
    backend = make_backend("onnxruntime")
    stats = measure_block(backend, KEY, FAST, batch_size=4)
    assert stats.median_ms > 0 and stats.samples == 5


def test_onnx_export_in_memory_is_equivalent(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    module = build_block(KEY).eval()
    x = block_input(KEY)
    for exporter in ("torchscript", "dynamo"):
        model = onnx.load_from_string(export_onnx(module, x, exporter))
        assert model.graph.input and not list(tmp_path.iterdir()), "export must not write files"
        backend = OnnxRuntimeBackend(1, exporter=exporter)
        runner = backend.prepare(module, x)
        out = runner.session.run(None, runner.feed)[0]  # type: ignore[attr-defined]
        with torch.no_grad():
            np.testing.assert_allclose(out, module(x).numpy(), rtol=1e-4, atol=1e-4)


def test_ort_session_uses_explicit_threads() -> None:
    options = OnnxRuntimeBackend(3).session_options()
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    import onnxruntime as ort

    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    backend = make_backend("torch-cpu", 2)
    backend.prepare(build_block(KEY), block_input(KEY))
    assert torch.get_num_threads() == 2
    assert OnnxRuntimeBackend(1).describe()["threads"] == 1


def test_measure_interleaved_and_module() -> None:
    backend = make_backend("onnxruntime")
    keys = HARDCORENAS.searchable_keys(32)[:3]
    items = [(build_block(k), block_input(k)) for k in keys]
    stats = measure_interleaved(backend, items, Method(warmup=10, min_repeats=6, budget_s=0.0), rounds=3)
    assert len(stats) == 3 and all(s.samples == 6 for s in stats)
    single = measure_module(backend, *items[0], FAST)
    assert single.samples == 5


def test_measure_network_rounds() -> None:
    backend = make_backend("onnxruntime")
    figure = measure_network(backend, PUBLISHED["A"].arch, 32, FAST, rounds=3)
    assert len(figure.rounds) == 3 and figure.stats.samples == 15
    assert figure.stats.median_ms == pytest.approx(sorted(r.median_ms for r in figure.rounds)[1])
    assert figure.spread_ms >= 0


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        make_backend("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_torch_cuda_unavailable_without_gpu() -> None:
    assert "torch-cuda" not in available_backends()
    with pytest.raises(BackendUnavailable):
        make_backend("torch-cuda")
    with pytest.raises(BackendUnavailable):
        TorchCudaBackend(1).prepare(build_block(KEY), block_input(KEY))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_cuda_measures_with_events() -> None:
    backend = make_backend("torch-cuda")
    stats = measure_block(backend, KEY, FAST, batch_size=8)
    assert stats.median_ms > 0 and stats.samples == 5
    figure = measure_network(backend, PUBLISHED["A"].arch, 64, FAST)
    assert figure.stats.median_ms > 0
    assert backend.describe()["timer"] == "cuda-events"
