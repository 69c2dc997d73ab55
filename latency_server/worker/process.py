"""One spawned measurement worker process, as the server holds it: its pipes, its hello, its end.

:class:`WorkerProcess` starts :func:`~latency_server.worker.measuring_loop.serve` in a ``spawn`` context (a
fresh interpreter: no state, threads or CUDA context inherited from the server) in a session of its own
(signals to the server's process group are the server's to handle), reads its hello, pings it on a pipe of its
own and ends it, gently or with SIGKILL. Nothing here imports torch.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from latency_server.worker.child import WorkerConfig
from latency_server.worker.discipline import apply_discipline
from latency_server.worker.tasks import WorkerHello

__all__ = ["WorkerProcess"]

def _entry(tasks: Connection, control: Connection, config: WorkerConfig) -> None:
    """The process's target; the measuring loop is imported here, in the child, so the server never imports torch."""
    os.setsid()  # signals to the server's process group (a terminal's Ctrl-C, SIGTERM) are the server's to handle
    # before torch is imported: the threads it starts later inherit the CPU set and the priority
    discipline = apply_discipline(config.cpus, config.nice)
    from latency_server.worker.measuring_loop import serve

    serve(tasks, control, config, discipline)


class WorkerProcess:
    """One spawned worker process and the server's ends of its two pipes (tasks, pings)."""

    def __init__(self, ctx: Any, config: WorkerConfig) -> None:
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
