"""What the HTTP process asks the measurement worker to do, and what comes back: plain, picklable values.

A task describes a measurement completely (what to build, the measuring settings, the method), so the worker
needs no state from the HTTP process; the HTTP process keeps the store, the queue, the tables and the fits.
:mod:`~latency_server.worker.measuring_loop` runs each task type in the worker;
:mod:`~latency_server.worker.supervisor` carries them over the pipe. Each task has a short ``label`` naming
what it measures (logs, failures, ``/v1/stats``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from latency_server.worker.stats import Method, NetworkFigure, Stats
from shared.api_schemas import NETWORK_NUM_FEATURES, NETWORK_STEM_SIZE, MeasureSettings
from shared.arch_string import ArchDef

__all__ = ["BlockResult", "BlockTask", "NetworkTask", "NetworksResult", "TaskFailure", "WorkerHello"]


@dataclass(frozen=True)
class BlockTask:
    """Build the block of ``key`` (``str(BlockKey)``) and measure it once."""

    measuring: MeasureSettings
    key: str
    method: Method

    @property
    def label(self) -> str:
        return f"block {self.key}"


@dataclass(frozen=True)
class BlockResult:
    stats: Stats
    backend: dict[str, Any]  # how the backend measured (``Backend.describe()``)


@dataclass(frozen=True)
class NetworkTask:
    """Build whole networks and time them over ``rounds`` independent rounds, interleaved in time.

    Each network is exported once (and kept in the worker's export cache for later tasks); each round opens a
    fresh session of every network in turn, the order alternating with the round's index (``first_round``
    continues the alternation of earlier tasks of the same set, as a table build's calibration rounds do).
    ``widths`` gives networks a stem and head of their own (a timm model written as an arch string); the drift
    reference and the space's networks keep the defaults.
    """

    measuring: MeasureSettings
    archs: tuple[ArchDef, ...]  # parsed once at the edge; a frozen, picklable value
    resolution: int
    method: Method
    rounds: int = 1
    num_classes: int = 1000
    first_round: int = 0
    seed: int = 0
    #: per network (input order), its (stem_size, num_features); networks past the end get the defaults
    widths: tuple[tuple[int, int], ...] = ()

    def width(self, index: int) -> tuple[int, int]:
        """The (stem_size, num_features) the ``index``-th network is built with."""
        return self.widths[index] if index < len(self.widths) else (NETWORK_STEM_SIZE, NETWORK_NUM_FEATURES)

    @property
    def label(self) -> str:
        text = str(self.archs[0])
        arch = text if len(text) <= 60 else f"{text[:57]}..."
        more = f" and {len(self.archs) - 1} more" if len(self.archs) > 1 else ""
        return f"network {arch}{more} at {self.resolution} px, {self.rounds} round(s)"


@dataclass(frozen=True)
class NetworksResult:
    figures: list[NetworkFigure]  # input order; each with its rounds
    backend: dict[str, Any]
    samples_s: list[list[float]] = field(default_factory=list)  # per network, every timed run (seconds per batch)


@dataclass(frozen=True)
class WorkerHello:
    """The worker's first message: what this device runs, for fingerprints and request checks."""

    pid: int
    backends: list[str]
    hardware: dict[str, Any]
    software: dict[str, Any]
    rss_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised in the worker: the exception's type, message and traceback (logged by the server)."""

    type: str
    message: str
    traceback: str
