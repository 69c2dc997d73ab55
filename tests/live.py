"""Real latency servers for the tests: one set of fast measurement settings and one way to start a process.

Every test that needs a server starts ``latency-server serve`` through :class:`nas.latency.local_server.LocalServer` on
127.0.0.1 and a free port, with :data:`FAST_SERVER_ENV` (tiny timing budgets and a small whole-network fit keep a
32 px table to seconds) plus its own overrides; the fixtures in ``tests/conftest.py`` stop what they start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from nas.latency.client import LatencyClient
from nas.latency.local_server import LocalServer

__all__ = ["FAST_SERVER_ENV", "TOKEN", "fast_settings", "server_stats", "start_server", "until", "wait_table"]

#: Measurement settings that keep tiny-resolution tables to a few seconds (``LATENCY_SERVER_*`` variables).
FAST_SERVER_ENV = {
    "LATENCY_SERVER_WARMUP": "10",
    "LATENCY_SERVER_MIN_REPEATS": "5",
    "LATENCY_SERVER_BUDGET_S": "0.002",
    "LATENCY_SERVER_LOG_LEVEL": "warning",
    "LATENCY_SERVER_CALIBRATION_NETWORKS": "4",
    "LATENCY_SERVER_NETWORK_ROUNDS": "5",
    "LATENCY_SERVER_VERDICT_MAX_ROUNDS": "9",
    "LATENCY_SERVER_VERDICT_ROUND_GAP_S": "0",
}
#: The bearer token of servers started with ``token=True``.
TOKEN = "s3cret-token"


def fast_settings(tmp_path: Path, **overrides: Any) -> Any:
    """Server :class:`~latency_server.config.Settings` equal to :data:`FAST_SERVER_ENV`, on a SQLite file in
    ``tmp_path`` (for in-process apps)."""
    from latency_server.config import Settings

    values: dict[str, Any] = {name.removeprefix("LATENCY_SERVER_").lower(): value
                              for name, value in FAST_SERVER_ENV.items()}
    values["db"] = f"sqlite:///{tmp_path / 'latency.db'}"
    values["device_lock"] = str(tmp_path / "app-device.lock")
    values["allowed_hosts"] = "testserver"  # the Host of Starlette's TestClient
    values.update(overrides)
    return Settings(**values)


def start_server(db_url: str, log_path: Path, *, token: bool = False, **env: str) -> LocalServer:
    """A started server with the fast settings, ``env`` overrides and (``token=True``) :data:`TOKEN`. Servers that
    share a ``LATENCY_SERVER_DEVICE_LOCK`` are one device: while one runs, the next serves read-only."""
    settings = {**FAST_SERVER_ENV, **({"LATENCY_SERVER_TOKEN": TOKEN} if token else {}), **env}
    return LocalServer(db_url, log_path=log_path, env=settings).start(timeout_s=90.0)


def wait_table(client: httpx.Client, resolution: int) -> dict:
    """The complete table through the 202 job flow of :class:`nas.latency.client.LatencyClient` (the one
    implementation), over a raw client's own connection: a live server's ``httpx.Client`` or an in-process
    app's ``TestClient``."""
    with LatencyClient(str(client.base_url), http=client) as typed:
        return typed.wait_for_table(resolution=resolution, poll_interval_s=0.1).model_dump(mode="json")


def until(probe: Callable[[], object], what: str, timeout_s: float = 180.0) -> object:
    """Poll ``probe`` until it returns something true (the machine may be slow: this only bounds a hang)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def server_stats(server: LocalServer) -> dict:
    """A live server's ``GET /v1/stats``."""
    return httpx.get(f"{server.url}/v1/stats", timeout=60).json()
