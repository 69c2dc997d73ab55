"""Fixtures of the latency-server tests: fast measurement settings, in-process apps, real uvicorn processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from latency_server.app import create_app
from latency_server.config import Settings

BIN = Path(sys.executable).parent

#: Measurement settings that keep tiny-resolution tables to a few seconds.
FAST_ENV = {
    "LATENCY_SERVER_WARMUP": "10",
    "LATENCY_SERVER_MIN_REPEATS": "3",
    "LATENCY_SERVER_BUDGET_S": "0.001",
    "LATENCY_SERVER_LOG_LEVEL": "warning",
    "LATENCY_SERVER_CALIBRATION_NETWORKS": "4",  # a small whole-network fit keeps builds to seconds
}
TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fast_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for an in-process app on a SQLite file in ``tmp_path``."""
    values = {"db": f"sqlite:///{tmp_path / 'latency.db'}", "warmup": 10, "min_repeats": 3, "budget_s": 0.001,
              "log_level": "warning", "calibration_networks": 4}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """In-process app + TestClient (the real service, store and worker thread)."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        client = TestClient(create_app(fast_settings(tmp_path, **overrides)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


class LiveServer:
    """A ``latency-server serve`` process on 127.0.0.1 and a free port."""

    def __init__(self, db_url: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **FAST_ENV, **(env or {})}
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(BIN / "latency-server"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--db", db_url],
            env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become ready: {self.log_path.read_text()[-2000:]}")

    def client(self, token: str | None = None, timeout: float = 120.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def measurements(self) -> int:
        return httpx.get(f"{self.url}/v1/stats").json()["measurements"]

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run (an interrupted build)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start real server processes (stopped at the end): ``live_server(db_url=None, **env)``."""
    servers: list[LiveServer] = []
    default_db = f"sqlite:///{tmp_path / 'live.db'}"

    def start(db_url: str | None = None, **env: str) -> LiveServer:
        server = LiveServer(db_url or default_db, tmp_path / f"server{len(servers)}.log", env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server with a token, shared by a module's tests."""
    tmp = tmp_path_factory.mktemp("guarded")
    server = LiveServer(f"sqlite:///{tmp / 'guarded.db'}", tmp / "server.log", {"LATENCY_SERVER_TOKEN": TOKEN})
    yield server
    server.stop()
