"""Eager PyTorch on a CUDA GPU, timed with CUDA events and synchronisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from latency_server.worker.backends.base import Backend, BackendUnavailable, Runner

__all__ = ["TorchCudaBackend"]


class _TorchCudaRunner(Runner):
    def __init__(self, module: nn.Module, example: torch.Tensor) -> None:
        self.module = module
        self.example = example
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def run(self) -> None:
        with torch.inference_mode():
            self.module(self.example)
        torch.cuda.synchronize()

    def timed(self) -> float:
        with torch.inference_mode():
            torch.cuda.synchronize()
            self.start.record()
            self.module(self.example)
            self.end.record()
            self.end.synchronize()
        return self.start.elapsed_time(self.end) / 1000.0

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
        self.example = None  # type: ignore[assignment]
        torch.cuda.empty_cache()


class TorchCudaBackend(Backend):
    """``torch`` eager on ``cuda:0``; CPU threads still explicit for the launching side."""

    name = "torch-cuda"

    @classmethod
    def available(cls) -> bool:
        return torch.cuda.is_available()

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        if not self.available():
            raise BackendUnavailable("backend: torch-cuda needs a CUDA GPU and none is available here")
        self.apply_threads()
        return _TorchCudaRunner(module.eval().cuda(), example.cuda())

    def describe(self) -> dict[str, Any]:
        info = {**super().describe(), "cuda": torch.version.cuda, "timer": "cuda-events"}
        if self.available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        return info
