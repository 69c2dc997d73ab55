"""Fixtures of the latency-trust tests: real ``latency-server serve`` processes on one SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from latency_server.launcher import ServerProcess

#: Fast measurement settings; a small whole-network fit (4 random + lightest + heaviest networks).
FAST_ENV = {
    "LATENCY_SERVER_WARMUP": "10",
    "LATENCY_SERVER_MIN_REPEATS": "5",
    "LATENCY_SERVER_BUDGET_S": "0.002",
    "LATENCY_SERVER_LOG_LEVEL": "warning",
    "LATENCY_SERVER_CALIBRATION_NETWORKS": "4",
    "LATENCY_SERVER_NETWORK_ROUNDS": "5",
}


class Server(ServerProcess):
    """One server process on 127.0.0.1 and a free port, with the fast settings."""

    def __init__(self, db_url: str, log_path: Path, env: dict[str, str]) -> None:
        super().__init__(db_url, log_path=log_path, env={**FAST_ENV, **env})
        self.start(timeout_s=90.0)


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
