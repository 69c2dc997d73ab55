"""Fixtures of the latency-server tests: in-process apps (the real service, store and worker thread)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from latency_server.app import create_app
from tests.live import FAST_SERVER_ENV, TOKEN, fast_settings

__all__ = ["BIN", "FAST_SERVER_ENV", "TOKEN", "fast_settings"]

BIN = Path(sys.executable).parent


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

