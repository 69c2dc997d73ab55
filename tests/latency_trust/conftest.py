"""Fixtures of the latency-trust tests: real ``latency-server serve`` processes on one SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

#: Fast measurement settings; a small whole-network fit (4 random + lightest + heaviest networks).
FAST_ENV = {
    "LATENCY_SERVER_WARMUP": "10",
    "LATENCY_SERVER_MIN_REPEATS": "5",
    "LATENCY_SERVER_BUDGET_S": "0.002",
    "LATENCY_SERVER_LOG_LEVEL": "warning",
    "LATENCY_SERVER_CALIBRATION_NETWORKS": "4",
    "LATENCY_SERVER_NETWORK_ROUNDS": "5",
}


class Server:
    """One server process on 127.0.0.1 and a free port."""

    def __init__(self, db_url: str, log_path: Path, env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "latency-server"), "serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--db", db_url],
            env={**os.environ, **FAST_ENV, **env}, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=300)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``start_server(**env)``: a real server on ``tmp_path/trust.db`` (all stopped at the end)."""
    servers: list[Server] = []

    def start(**env: str) -> Server:
        server = Server(f"sqlite:///{tmp_path / 'trust.db'}", tmp_path / f"server{len(servers)}.log", env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def wait_table(client: httpx.Client, resolution: int, timeout_s: float = 120) -> dict:
    """``GET /v1/lut`` through the 202/job flow until the table is complete."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = client.get("/v1/lut", params={"resolution": resolution})
        if resp.status_code == 200:
            return resp.json()
        assert resp.status_code == 202, resp.text
        job = client.get(resp.headers["location"]).json()
        assert job["state"] != "failed", job
        time.sleep(0.1)
    raise AssertionError("table did not complete")
