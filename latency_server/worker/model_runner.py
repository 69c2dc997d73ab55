"""The worker's child side of models outside the search space: inspect (name or graph, cost) and measure.

A timm model is built on torch's ``meta`` device to be costed (no weights allocated), then for real, with
random weights, to be measured on the task's backend; an ONNX graph runs on ONNX Runtime as uploaded. Rounds
interleave the model with the drift reference network exactly as :class:`~latency_server.worker.timing.NetworkSet`
does. Peak memory is the resident-set high-water mark over a fresh session of the model (the kernel's mark is
reset first, ``/proc/self/clear_refs``, and freed heap handed back with ``malloc_trim``) less the resident set
before it; on CUDA, ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from latency_server.worker.backends import Backend, Runner
from latency_server.worker.model_tasks import ModelInspection, ModelInspectTask, ModelResult, ModelTask
from latency_server.worker.onnx_graph import inspect_onnx
from latency_server.worker.stats import RoundSeries
from latency_server.worker.timing import NetworkSet
from shared.builders import build_network
from shared.costs import count_macs, count_params

__all__ = ["inspect_model", "measure_model"]

#: forward passes timed by the optional profile
_PROFILE_RUNS = 10
_PROFILE_TOP = 15
_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


def _largest_activation(module: torch.nn.Module, x: torch.Tensor) -> int:
    """The most elements of any leaf module's output on ``x``."""
    largest = x.numel()

    def hook(_m: Any, _i: Any, output: Any) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            module.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return largest


def inspect_model(task: ModelInspectTask) -> ModelInspection:
    """The model's figures per forward pass, or why it is refused (nothing is allocated)."""
    if task.source.onnx is not None:
        return inspect_onnx(task.source.onnx, task.max_parameters)
    import timm

    name = task.source.timm or ""
    names = _timm_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=8, cutoff=0.6)
        return ModelInspection(error=f"timm: {name!r} is not a timm model"
                               + (f"; close matches: {', '.join(close)}" if close else ""),
                               where="timm", close_matches=close)
    try:
        with torch.device("meta"):
            module = timm.create_model(name, pretrained=False)
            x = torch.empty(1, 3, task.resolution, task.resolution)
        parameters = count_params(module)
        if parameters > task.max_parameters:
            return ModelInspection(parameters=parameters, error=f"timm: {name} has {parameters} parameters, over the "
                                   f"limit {task.max_parameters} (LATENCY_SERVER_MAX_PARAMETERS)", where="timm")
        macs = count_macs(module, x)
        activations = _largest_activation(module, x)
    except Exception as exc:  # noqa: BLE001 - a model that cannot be built at this input is the request's fault
        return ModelInspection(error=f"timm: {name} cannot be built at {task.resolution} px "
                               f"({type(exc).__name__}: {str(exc)[:200]})", where="timm")
    layers = sum(1 for m in module.modules() if not list(m.children()))
    return ModelInspection(parameters=parameters, macs=macs * task.batch_size,
                           activation_elements=activations * task.batch_size, layers=layers,
                           batch_size=task.batch_size, resolution=task.resolution)


class _OnnxRunner(Runner):
    def __init__(self, session: Any, feed: dict[str, np.ndarray]) -> None:
        self.session, self.feed = session, feed

    def run(self) -> None:
        self.session.run(None, self.feed)

    def timed(self) -> float:
        import time

        start = time.perf_counter()
        self.session.run(None, self.feed)
        return time.perf_counter() - start

    def close(self) -> None:
        self.session = None


def _onnx_factory(backend: Backend, data: bytes, profile_prefix: str | None = None) -> Callable[[], Runner]:
    import onnxruntime as ort

    def session() -> Runner:
        backend.apply_threads()
        options = backend.session_options()  # type: ignore[attr-defined]  # onnxruntime only (checked at the edge)
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        sess = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feed = {i.name: rng.standard_normal(i.shape).astype(_ONNX_TYPES.get(i.type, np.float32))
                for i in sess.get_inputs()}
        return _OnnxRunner(sess, feed)

    return session


def _profile(backend: Backend, data: bytes) -> list[dict[str, Any]]:
    """ONNX Runtime's profiler over a few runs: the operators taking the most time (their file is removed)."""
    with tempfile.TemporaryDirectory(prefix="latency-profile-") as folder:
        runner = _onnx_factory(backend, data, os.path.join(folder, "profile"))()
        for _ in range(_PROFILE_RUNS):
            runner.run()
        path = runner.session.end_profiling()  # type: ignore[attr-defined]
        with open(path, encoding="utf-8") as handle:
            events = json.load(handle)
        runner.close()
    per_node: dict[str, dict[str, Any]] = defaultdict(lambda: {"op_type": "", "total_us": 0, "calls": 0})
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        node = per_node[event["name"][: -len("_kernel_time")]]
        node["op_type"] = event.get("args", {}).get("op_name", "")
        node["total_us"] += int(event.get("dur", 0))
        node["calls"] += 1
    top = sorted(per_node.items(), key=lambda kv: -kv[1]["total_us"])[:_PROFILE_TOP]
    return [{"name": name, "op_type": v["op_type"], "mean_ms": v["total_us"] / max(1, v["calls"]) / 1000.0}
            for name, v in top]


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _trim() -> None:
    """glibc's ``malloc_trim(0)``: without it, memory freed by earlier sessions is reused unseen (no-op elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _peak_memory(backend: Backend, factory: Callable[[], Runner]) -> tuple[int | None, str]:
    """Memory a fresh session of the model takes at its peak (opened and run once), and what measured it."""
    import gc

    gc.collect()
    if backend.name == "torch-cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        runner = factory()
        runner.run()
        peak = torch.cuda.max_memory_allocated() - base
        runner.close()
        return max(0, int(peak)), "torch.cuda.max_memory_allocated"
    _trim()  # hand freed heap back to the kernel, so that the session's allocations show in the resident set
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # resets the resident-set high-water mark (VmHWM) to the current resident set
    except OSError:
        return None, ""
    base = _status_kib("VmRSS")
    runner = factory()
    runner.run()
    peak = _status_kib("VmHWM")
    runner.close()
    if base is None or peak is None:
        return None, ""
    return max(0, peak - base) * 1024, "VmHWM over the session less VmRSS before it"


class _ModelSet(NetworkSet):
    """A :class:`NetworkSet` of prepared factories (the model first, then the reference network)."""

    def __init__(self, factories: list[Callable[[], Runner]], task: ModelTask) -> None:
        self.method = task.method
        self.batch_size = task.inspection.batch_size
        self.factories = factories
        self.series = RoundSeries(len(factories), batch_size=self.batch_size, warmup=task.method.warmup)
        self.per_round, self.pooled = self.series.per_round, self.series.pooled
        self.rounds = task.first_round


def measure_model(backend: Backend, task: ModelTask, describe: Callable[[Backend], dict[str, Any]]) -> ModelResult:
    """Time the model and the reference over the task's rounds; count, weigh and (optionally) profile it."""
    batch = task.inspection.batch_size
    torch.manual_seed(task.seed)
    example = torch.randn(batch, 3, task.resolution, task.resolution)
    onnx_bytes = task.source.onnx
    if onnx_bytes is not None:
        model_factory = _onnx_factory(backend, onnx_bytes)
        parameters, macs = task.inspection.parameters, task.inspection.macs
    else:
        import timm

        torch.manual_seed(task.seed)
        module = timm.create_model(task.source.timm or "", pretrained=False).eval()
        parameters, macs = count_params(module), count_macs(module, example) * batch
        cache_key = ("timm", task.source.timm, task.resolution, batch, task.seed)
        model_factory = backend.factory(module, example, cache_key=cache_key)
        if task.profile and backend.name == "onnxruntime":
            onnx_bytes = backend._exports.get(cache_key)  # type: ignore[attr-defined]
    factories = [model_factory]
    if task.reference is not None:
        torch.manual_seed(task.seed)
        factories.append(backend.factory(
            build_network(task.reference, num_classes=task.num_classes).eval(), example,
            cache_key=("network", task.reference, task.resolution, batch, task.num_classes, task.seed)))
    nets = _ModelSet(factories, task)
    for _ in range(max(1, task.rounds)):
        nets.measure_round()
    peak, source = _peak_memory(backend, model_factory)
    profile = _profile(backend, onnx_bytes) if task.profile and onnx_bytes is not None else None
    return ModelResult(nets.figures(), describe(backend), nets.pooled, parameters=parameters, macs=macs,
                       peak_memory_bytes=peak, memory_source=source, profile=profile)

