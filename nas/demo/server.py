"""The demo's latency server: ``latency-server serve`` started through its command line as a child process.

The search side never imports the server's code; it starts the server as a user would, in its own session so
that stopping it ends everything it started, waits until it answers ``/healthz`` (through :mod:`nas.client`),
and stops it with its process group (SIGTERM, then SIGKILL) on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from nas.client import LatencyClient, LatencyServerError

__all__ = ["LocalServer", "ServerStartError"]


class ServerStartError(RuntimeError):
    """The server could not be started, exited at start, or did not answer in time; says why, with its log."""


def _server_command() -> str:
    """The ``latency-server`` console script: beside this Python (a virtual environment) or on PATH."""
    beside = Path(sys.executable).parent / "latency-server"
    found = str(beside) if beside.is_file() else shutil.which("latency-server")
    if found is None:
        raise ServerStartError("the latency-server command is not installed (install the server side: "
                               "pip install '.[server]')")
    return found


class LocalServer:
    """``latency-server serve`` on 127.0.0.1 and a free port with a database URL and extra settings; its output
    goes to ``log_path``."""

    def __init__(self, db_url: str, *, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.db_url = db_url
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the process and wait until ``/healthz`` answers; raise :class:`ServerStartError` otherwise."""
        cmd = [_server_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--db", self.db_url]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        with LatencyClient(self.url, retries=0, timeout_s=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    code = self._proc.returncode
                    self.stop()
                    raise ServerStartError(f"latency-server exited at start (code {code}): {self._log_tail()}")
                try:
                    client.health()
                    return
                except LatencyServerError:
                    time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"latency-server did not answer /healthz within {timeout_s:.0f} s: {self._log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to the process group (graceful shutdown), then SIGKILL if it has not ended in ``timeout_s``."""
        if self.running:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)  # type: ignore[union-attr]
        except ProcessLookupError:
            pass

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
