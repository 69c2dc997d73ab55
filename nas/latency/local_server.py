"""A local latency server: ``latency-server serve`` started through its command line as a child process.

The demo, the benchmarks and the tests start servers this way. The search side never imports the server's code;
it starts the server as a user would, in its own session so that stopping it ends everything it started, waits
until it answers ``/healthz`` (through :mod:`nas.latency.client`), and stops it with its process group (SIGTERM, then
SIGKILL) on exit, Ctrl-C or failure. :meth:`LocalServer.kill` ends it without a shutdown (a machine dying
mid-build).
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

import httpx

from nas.latency.client import LatencyClient, LatencyServerError

__all__ = ["LocalServer", "ServerStartError", "free_port"]


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


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """``latency-server serve`` on ``host`` (loopback by default) and a free port with a database URL and extra
    ``LATENCY_SERVER_*`` settings; its output goes to ``log_path``."""

    def __init__(self, db_url: str, *, log_path: Path, env: dict[str, str] | None = None,
                 host: str = "127.0.0.1", port: int | None = None) -> None:
        self.db_url = db_url
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def start(self, timeout_s: float = 120.0) -> LocalServer:
        """Start the process and wait until ``/healthz`` answers; raise :class:`ServerStartError` otherwise."""
        cmd = [_server_command(), "serve", "--host", self.host, "--port", str(self.port), "--db", self.db_url]
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
                    return self
                except LatencyServerError:
                    time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"latency-server did not answer /healthz within {timeout_s:.0f} s: {self._log_tail()}")

    def client(self, token: str | None = None, timeout_s: float = 300.0) -> httpx.Client:
        """A raw HTTP client on this server (with the bearer token if given), for speaking the protocol itself."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def measurements(self) -> int:
        """Measurements this process has taken (``GET /v1/stats``)."""
        with LatencyClient(self.url) as client:
            return client.stats().measurements

    def kill(self) -> None:
        """SIGKILL to the process group: no shutdown handler runs (as when a machine dies mid-build)."""
        if self.running:
            self._signal(signal.SIGKILL)
            self._proc.wait(10)  # type: ignore[union-attr]
        self._close_log()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to the process group (graceful shutdown), then SIGKILL if it has not ended in ``timeout_s``."""
        if self.running:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)  # type: ignore[union-attr]
        except ProcessLookupError:
            pass

    def __enter__(self) -> LocalServer:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
