"""Measurement backends, one module per runtime behind :class:`~latency_server.worker.backends.base.Backend`."""

from __future__ import annotations

from latency_server.worker.backends.base import Backend, BackendUnavailable, Runner
from latency_server.worker.backends.onnxruntime import OnnxRuntimeBackend
from latency_server.worker.backends.torch_cpu import TorchCpuBackend
from latency_server.worker.backends.torch_cuda import TorchCudaBackend

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "Runner", "available_backends", "make_backend"]

BACKENDS: dict[str, type[Backend]] = {
    OnnxRuntimeBackend.name: OnnxRuntimeBackend,
    TorchCpuBackend.name: TorchCpuBackend,
    TorchCudaBackend.name: TorchCudaBackend,
}


def available_backends() -> list[str]:
    """Names of the backends that can run on this device."""
    return [name for name, cls in BACKENDS.items() if cls.available()]


def make_backend(name: str, threads: int = 1, *, onnx_exporter: str = "torchscript") -> Backend:
    """A backend instance by name (``onnxruntime``, ``torch-cpu``, ``torch-cuda``)."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"backend: unknown backend {name!r}, expected one of {sorted(BACKENDS)}") from None
    if not cls.available():
        raise BackendUnavailable(f"backend: {name} is not available on this device")
    if cls is OnnxRuntimeBackend:
        return OnnxRuntimeBackend(threads, exporter=onnx_exporter)
    return cls(threads)
