"""What the server and the worker's child process both know: the child's configuration and its resident memory.

Both :mod:`.process` (the server's side) and :mod:`.measuring_loop` (the child's side) import this module,
so neither has to import the other to share them; nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["WorkerConfig", "rss_bytes"]

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs to know besides its tasks."""

    onnx_exporter: str = "torchscript"
    default_threads: int = 1
    #: backends (with their export caches) kept at once; the least recently used one goes first
    max_backends: int = 4
    log_level: str = "warning"
    #: CPUs the worker is pinned to (empty: not pinned) and its ``nice`` (0: unchanged); see :mod:`.discipline`
    cpus: tuple[int, ...] = ()
    nice: int = 0


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (Linux ``/proc``; ``None`` where unavailable)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None
