"""Start and stop a ``latency-server serve`` process from Python: used by ``nas demo``, the benchmarks and tests.

The process runs in its own session, so :meth:`ServerProcess.stop` ends it with everything it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = ["ServerProcess", "ServerStartError", "free_port"]


class ServerStartError(RuntimeError):
    """The server exited at start or did not answer ``/healthz`` in time; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``latency-server serve`` on ``host`` and a free port, with a database URL and extra settings."""

    def __init__(
        self,
        db_url: str,
        *,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.db_url = db_url
        self.log_path = Path(log_path) if log_path else None
        self.env = dict(env or {})
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _log_tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        """Start the process and wait until ``/healthz`` answers."""
        cmd = [sys.executable, "-m", "latency_server.cli", "serve", "--host", self.host, "--port", str(self.port),
               "--db", self.db_url]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        out = self._log if self._log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                                     start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_log()
                raise ServerStartError(f"latency-server exited at start (code {self.proc.returncode}): "
                                       f"{self._log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"latency-server did not answer /healthz within {timeout_s:.0f} s: {self._log_tail()}")

    def client(self, token: str | None = None, timeout: float = 300.0) -> httpx.Client:
        """An HTTP client on this server (with the bearer token if given)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def measurements(self) -> int:
        """Measurements this process has taken (``GET /v1/stats``)."""
        return int(httpx.get(f"{self.url}/v1/stats", timeout=30).json()["measurements"])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs (as when a machine dies mid-build)."""
        if self.running:
            self._signal(signal.SIGKILL)
            self.proc.wait(10)  # type: ignore[union-attr]
        self._close_log()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL if it has not ended within ``timeout_s``."""
        if self.running:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(10)  # type: ignore[union-attr]
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
