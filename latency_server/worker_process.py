"""One spawned measurement worker process, as the server holds it: its pipes, its hello, its end.

:class:`WorkerProcess` starts :func:`latency_server.engine.serve` in a ``spawn`` context (a fresh interpreter:
no state, threads or CUDA context inherited from the server) in a session of its own (signals to the server's
process group are the server's to handle), reads its hello, pings it on a pipe of its own and ends it, gently
or with SIGKILL. :func:`rss_bytes` reads a process's resident memory from ``/proc``. Nothing here imports torch.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from latency_server.tasks import WorkerHello

__all__ = ["EngineConfig", "WorkerProcess", "rss_bytes"]

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (Linux ``/proc``; ``None`` where unavailable)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def _entry(tasks: Connection, control: Connection, config: EngineConfig) -> None:
    """The process's target; the engine is imported here, in the child, so the server never imports torch."""
    os.setsid()  # signals to the server's process group (a terminal's Ctrl-C, SIGTERM) are the server's to handle
    from latency_server.engine import serve

    serve(tasks, control, config)


@dataclass(frozen=True)
class EngineConfig:
    """What the worker needs to know besides its tasks."""

    onnx_exporter: str = "torchscript"
    default_threads: int = 1
    #: backends (with their export caches) kept at once; the least recently used one goes first
    max_backends: int = 4
    log_level: str = "warning"


class WorkerProcess:
    """One spawned worker process and the server's ends of its two pipes (tasks, pings)."""

    def __init__(self, ctx: Any, config: EngineConfig) -> None:
        tasks, tasks_child = ctx.Pipe()
        control, control_child = ctx.Pipe()
        self.process = ctx.Process(target=_entry, args=(tasks_child, control_child, config), name="latency-worker",
                                   daemon=True)
        self.process.start()
        tasks_child.close()
        control_child.close()
        self.tasks: Connection = tasks
        self.control: Connection = control
        self.started = time.monotonic()
        self.tasks_done = 0
        self._control_lock = threading.Lock()  # one ping at a time; never closed while a ping uses it

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def wait_hello(self, timeout_s: float) -> WorkerHello | None:
        """The worker's hello, or ``None`` if it died or stayed silent for ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.tasks.poll(0.1):
                try:
                    hello = self.tasks.recv()
                except (EOFError, OSError):
                    return None
                return hello if isinstance(hello, WorkerHello) else None
            if not self.alive:
                return None
        return None

    def exit_text(self) -> str:
        code = self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exit code {code}"

    def ping(self, ping_id: int, timeout_s: float) -> dict[str, Any] | None:
        """The worker's answer to ping ``ping_id`` (pid, resident bytes, tasks), or ``None`` without one."""
        deadline = time.monotonic() + timeout_s
        with self._control_lock:
            try:
                self.control.send(ping_id)
                while self.control.poll(max(0.0, deadline - time.monotonic())):
                    answer = self.control.recv()
                    if answer.get("id") == ping_id:
                        return answer
            except (EOFError, OSError, ValueError):
                return None
        return None

    def end(self, *, graceful: bool) -> None:
        """Ask the process to exit (``graceful``), kill it if it does not, close the pipes."""
        if graceful and self.alive:
            try:
                self.tasks.send(None)
            except (OSError, ValueError):
                pass
            self.process.join(5.0)
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)  # type: ignore[arg-type]
            self.process.join(10.0)
        with self._control_lock:
            self.control.close()
        self.tasks.close()
