"""``/healthz`` on a live server whose worker cannot be started again: 503 with the reason, a table build that
fails at once with that reason instead of waiting for a worker, and recovery once starting works again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.live import start_server, until


@pytest.mark.slow  # a live server process
def test_a_worker_that_cannot_start_fails_health_and_builds_at_once(tmp_path: Path) -> None:
    fail = tmp_path / "spawn-fails"
    server = start_server(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "server.log",
                          LATENCY_SERVER_WORKER_SPAWN_FAIL_FILE=str(fail),
                          LATENCY_SERVER_WORKER_START_TIMEOUT_S="600")  # a build waiting for a worker would hang
    try:
        health = lambda: httpx.get(f"{server.url}/healthz", timeout=60)  # noqa: E731
        assert health().status_code == 200 and health().json()["reasons"] == []
        fail.touch()
        os.kill(health().json()["worker"]["pid"], signal.SIGKILL)
        down = until(lambda: (r := health()).status_code == 503 and "could not be started" in r.text and r,
                      "/healthz to answer 503 naming the failed start")
        assert any("could not be started" in reason for reason in down.json()["reasons"]), down.text
        with server.client() as client:
            start = client.get("/v1/lut", params={"resolution": 32})
            assert start.status_code == 202, start.text
            job = start.json()["job_id"]
            ended = until(lambda: (s := client.get(f"/v1/jobs/{job}").json())["state"] in ("done", "failed") and s,
                           "the build to end", timeout_s=120.0)
            assert ended["state"] == "failed" and "could not be started" in ended["error"], ended
        fail.unlink()
        until(lambda: health().status_code == 200, "the worker to start again")
    finally:
        fail.unlink(missing_ok=True)
        server.stop()
