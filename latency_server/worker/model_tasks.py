"""Tasks for models outside the search space (a timm name or an uploaded ONNX graph): plain, picklable values.

A model is first inspected (:class:`ModelInspectTask`: the timm name is known, the ONNX graph is valid and
allowed, and what it costs, all without allocating weights), then measured (:class:`ModelTask`) the way a
network is: rounds of a fresh session, interleaved with the drift reference. The worker's child runs both
(:mod:`~latency_server.worker.model_runner`); nothing here imports torch, so the server process may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from latency_server.worker.stats import Method
from latency_server.worker.tasks import NetworksResult
from shared.api_schemas import MeasureSettings
from shared.arch_string import ArchDef

__all__ = ["ModelInspectTask", "ModelInspection", "ModelResult", "ModelSource", "ModelTask"]


@dataclass(frozen=True)
class ModelSource:
    """What to build: a timm model by name (random weights), or an ONNX graph's bytes (with their sha256)."""

    timm: str | None = None
    onnx: bytes | None = field(default=None, repr=False)
    sha256: str | None = None

    @property
    def key(self) -> str:
        """The model's key in the store: ``timm:<name>`` or ``onnx:<sha256>``."""
        return f"timm:{self.timm}" if self.timm is not None else f"onnx:{self.sha256}"


@dataclass(frozen=True)
class ModelInspectTask:
    """Check a model and cost it without running it; refuses past ``max_parameters`` before anything else."""

    source: ModelSource
    resolution: int
    batch_size: int
    max_parameters: int

    @property
    def label(self) -> str:
        return f"inspect {self.source.key}"


@dataclass(frozen=True)
class ModelInspection:
    """The model's figures per forward pass of its input (``error`` set, and the rest zero, when refused)."""

    parameters: int = 0
    macs: int = 0
    activation_elements: int = 0
    layers: int = 0
    batch_size: int = 1
    resolution: int | None = None  # an ONNX graph's input height (square image inputs), else the request's
    error: str | None = None
    where: str = "model"  # the request field the error names
    close_matches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelTask:
    """Time the model, then the drift reference network (if any), over ``rounds`` fresh sessions each."""

    measuring: MeasureSettings
    source: ModelSource
    inspection: ModelInspection
    reference: ArchDef | None
    resolution: int
    method: Method
    rounds: int = 1
    num_classes: int = 1000  # the reference network's
    first_round: int = 0
    seed: int = 0
    profile: bool = False

    @property
    def archs(self) -> tuple[ArchDef, ...]:
        return () if self.reference is None else (self.reference,)

    @property
    def label(self) -> str:
        return f"model {self.source.key} at {self.resolution} px, {self.rounds} round(s)"


@dataclass(frozen=True)
class ModelResult(NetworksResult):
    """The rounds (the model first, then the reference), with the model's own counts, memory and profile."""

    parameters: int = 0
    macs: int = 0
    peak_memory_bytes: int | None = None
    memory_source: str = ""
    profile: list[dict[str, Any]] | None = None
