"""Shared test fixtures: deterministic torch, and real latency-server processes (stopped at the end)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from nas.latency.local_server import LocalServer
from tests.live import start_server

os.environ.setdefault("OMP_NUM_THREADS", "1")

# The same examples on every run (no example database either): a suite that passes or fails by the draw is no gate.
# HYPOTHESIS_PROFILE=explore draws afresh each run, to look for new failing cases while working.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session", autouse=True)
def _device_lock_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Latency servers started by the tests lock a device file of this test session, not the machine's own
    (which a server in real use, or another test session, may hold); fixtures that run two servers at once
    give each its own."""
    os.environ.setdefault("LATENCY_SERVER_DEVICE_LOCK", str(tmp_path_factory.mktemp("device") / "device.lock"))


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """``live_server(db_url=None, *, token=False, **env)``: a started server with the fast settings; by default
    every server of a test shares ``tmp_path/live.db`` and one device lock (a second one running at once serves
    read-only), unless ``env`` gives ``LATENCY_SERVER_DEVICE_LOCK``."""
    servers: list[LocalServer] = []

    def start(db_url: str | None = None, *, token: bool = False, **env: str) -> LocalServer:
        env = {"LATENCY_SERVER_DEVICE_LOCK": str(tmp_path / "device.lock"), **env}
        server = start_server(db_url or f"sqlite:///{tmp_path / 'live.db'}", tmp_path / f"server{len(servers)}.log",
                              token=token, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One server with the bearer token, shared by a module's tests (its tables are built once)."""
    tmp = tmp_path_factory.mktemp("server")
    server = start_server(f"sqlite:///{tmp / 'latency.db'}", tmp / "server.log", token=True,
                          LATENCY_SERVER_DEVICE_LOCK=str(tmp / "device.lock"))
    yield server
    server.stop()
