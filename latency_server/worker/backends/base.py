"""The one interface every measurement backend implements: prepare a module, then run or time it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["Backend", "BackendUnavailable", "Runner"]


class BackendUnavailable(RuntimeError):
    """The backend cannot run on this device (e.g. torch-cuda without a GPU)."""


class Runner(ABC):
    """A prepared module with a fixed input: ``run`` executes one forward, ``timed`` also returns seconds."""

    @abstractmethod
    def run(self) -> None:
        """One forward pass, complete when it returns."""

    @abstractmethod
    def timed(self) -> float:
        """One forward pass; its duration in seconds."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the session/device memory."""


class Backend(ABC):
    """A way of executing a torch module on this device (one module per runtime)."""

    name: ClassVar[str]

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads: expected a positive integer, got {threads}")
        self.threads = threads

    @classmethod
    def available(cls) -> bool:
        """Whether this backend can run here."""
        return True

    def apply_threads(self) -> None:
        """Apply the thread count to torch (and OpenMP through it)."""
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    @abstractmethod
    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        """A runner for ``module`` (put in eval mode by the caller) on ``example``."""

    def factory(
        self, module: nn.Module, example: torch.Tensor, *, cache_key: Hashable | None = None
    ) -> Callable[[], Runner]:
        """A callable that prepares a fresh runner of ``module`` each call (one independent round each).

        Backends whose preparation has an expensive, deterministic part (ONNX export) do it once here, and may
        reuse it across calls given the same ``cache_key`` (which must then identify module and input shape).
        """
        return lambda: self.prepare(module, example)

    def describe(self) -> dict[str, Any]:
        """How this backend measures (recorded with every figure)."""
        return {"backend": self.name, "threads": self.threads, "torch": torch.__version__}
