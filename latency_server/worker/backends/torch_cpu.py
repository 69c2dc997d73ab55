"""Eager PyTorch on the CPU (inference mode, explicit thread count)."""

from __future__ import annotations

import time

import torch
from torch import nn

from latency_server.worker.backends.base import Backend, Runner

__all__ = ["TorchCpuBackend"]


class _TorchCpuRunner(Runner):
    def __init__(self, module: nn.Module, example: torch.Tensor) -> None:
        self.module = module
        self.example = example

    def run(self) -> None:
        with torch.inference_mode():
            self.module(self.example)

    def timed(self) -> float:
        with torch.inference_mode():
            start = time.perf_counter()
            self.module(self.example)
            return time.perf_counter() - start


class TorchCpuBackend(Backend):
    """``torch`` eager on the CPU."""

    name = "torch-cpu"

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        self.apply_threads()
        return _TorchCpuRunner(module.eval().cpu(), example.cpu())
