"""The measurement worker's limits and life cycle as configured, and its state as health and stats report it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkerLimits", "WorkerStatus"]


@dataclass(frozen=True)
class WorkerLimits:
    """Per-task limits and the worker's life cycle."""

    task_timeout_s: float = 900.0
    task_memory_bytes: int = 6 << 30
    recycle_tasks: int = 0  # 0 = never
    recycle_s: float = 0.0  # 0 = never
    start_timeout_s: float = 180.0
    #: test hook: while this file exists, a worker that died or was recycled is not started again
    restart_hold_file: Path | None = None
    #: test hook: while this file exists, starting a worker process raises
    spawn_fail_file: Path | None = None
    poll_s: float = 0.1


@dataclass(frozen=True)
class WorkerStatus:
    """The worker as ``/healthz`` and ``/v1/stats`` report it."""

    state: str  # ready, busy, starting, down, stopped
    alive: bool
    answered_ping: bool
    pid: int | None
    rss_bytes: int | None
    tasks: int
    restarts: int
    recycles: int
    uptime_s: float | None
    current_task: str | None
    current_task_s: float | None
    last_error: str | None
    monitor_alive: bool = True
    #: worker starts that failed in a row (0 once one starts)
    spawn_failures: int = 0
