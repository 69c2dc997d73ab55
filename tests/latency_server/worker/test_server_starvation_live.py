"""Bounded work on a live server: a limit on concurrent table builds (a running one is joined), cancelling a
build with ``DELETE /v1/jobs/{id}``, and verdict requests that differ only in confidence measured once.

The worker is held down (the restart hold file) while requests queue, so that what is pending is known when
the assertions run, whatever the machine's speed; counts come from ``/v1/stats``, never from timing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nas.latency.local_server import LocalServer
from shared.published import PUBLISHED
from tests.live import server_stats, start_server, until


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, Path]]:
    """A server allowing one build at a time, whose worker is not restarted while its hold file exists."""
    tmp = tmp_path_factory.mktemp("starvation")
    hold = tmp / "hold"
    server = start_server(f"sqlite:///{tmp / 'db.sqlite'}", tmp / "server.log",
                          LATENCY_SERVER_WORKER_RESTART_HOLD_FILE=str(hold), LATENCY_SERVER_MAX_CONCURRENT_BUILDS="1",
                          LATENCY_SERVER_WORKER_START_TIMEOUT_S="600")
    yield server, hold
    hold.unlink(missing_ok=True)
    server.stop()


@pytest.fixture(autouse=True)
def _released(held: tuple[LocalServer, Path]) -> Iterator[None]:
    """Each test ends with the worker free to restart, whatever it asserted."""
    yield
    held[1].unlink(missing_ok=True)


def _hold_worker(server: LocalServer, hold: Path) -> None:
    """Kill the worker and keep it down until the hold file goes: queued work waits for it."""
    until(lambda: httpx.get(f"{server.url}/healthz", timeout=60).status_code == 200, "the worker to be up")
    hold.touch()
    os.kill(httpx.get(f"{server.url}/healthz", timeout=60).json()["worker"]["pid"], signal.SIGKILL)
    until(lambda: httpx.get(f"{server.url}/healthz", timeout=60).status_code == 503, "the worker to be down")


def _release_worker(server: LocalServer, hold: Path) -> None:
    hold.unlink(missing_ok=True)
    until(lambda: httpx.get(f"{server.url}/healthz", timeout=60).status_code == 200, "the worker to restart")


@pytest.mark.slow  # a live server process
def test_builds_are_limited_joined_and_cancelled(held: tuple[LocalServer, Path]) -> None:
    server, hold = held
    _hold_worker(server, hold)
    with server.client() as client:
        first = client.get("/v1/lut", params={"resolution": 32})
        assert first.status_code == 202, first.text
        job = first.json()["job_id"]
        until(lambda: server_stats(server)["current_task"], "the build's first step to wait for the worker")
        queued = server_stats(server)["queued"]
        assert queued > 1
        # the same table: joined, not refused
        again = client.get("/v1/lut", params={"resolution": 32})
        assert again.status_code == 202 and again.json()["job_id"] == job
        # another table: over the limit of concurrent builds
        other = client.get("/v1/lut", params={"resolution": 32, "threads": 2})
        assert other.status_code == 429, other.text
        assert "LATENCY_SERVER_MAX_CONCURRENT_BUILDS" in other.text and int(other.headers["retry-after"]) >= 1
        # cancelled: the steps not started leave the queue at once, the job says so
        cancel = client.delete(f"/v1/jobs/{job}")
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["state"] == "cancelled"
        assert server_stats(server)["queued"] == 1  # only the step waiting for the worker is left
        assert client.get(f"/v1/jobs/{job}").json()["state"] == "cancelled"
        assert client.delete(f"/v1/jobs/{job}").status_code == 200  # idempotent
        assert client.delete("/v1/jobs/no-such-job").status_code == 404
        # the limit counts running builds only: the other table may start now
        other = client.get("/v1/lut", params={"resolution": 32, "threads": 2})
        assert other.status_code == 202, other.text
        assert client.delete(f"/v1/jobs/{other.json()['job_id']}").json()["state"] == "cancelled"
    _release_worker(server, hold)
    until(lambda: server_stats(server)["queued"] == 0, "the running step to end")
    with server.client() as client:
        assert client.get(f"/v1/jobs/{job}").json()["state"] == "cancelled"
        assert server_stats(server)["active_jobs"] == 0


@pytest.mark.slow
def test_verdicts_differing_only_in_confidence_are_measured_once(held: tuple[LocalServer, Path]) -> None:
    server, hold = held
    before = server_stats(server)["network_measurements"]
    _hold_worker(server, hold)
    answers: list[httpx.Response] = []

    def post(confidence: float) -> None:
        with server.client(timeout_s=600) as client:
            answers.append(client.post("/v1/latency/network", json={
                "arch": PUBLISHED["B"].arch, "resolution": 32, "confidence": confidence}))

    threads = [threading.Thread(target=post, args=(0.9 + i * 1e-9,), daemon=True) for i in range(10)]
    for thread in threads:
        thread.start()
    # all ten have arrived: as ten tasks, or as ten waiters of one
    until(lambda: (s := server_stats(server))["queued"] == 10 or (s["current_task"] or {}).get("waiters") == 10,
           "the ten requests to be queued")
    assert server_stats(server)["queued"] == 1
    _release_worker(server, hold)
    for thread in threads:
        thread.join(600)
    assert len(answers) == 10 and all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert server_stats(server)["network_measurements"] == before + 1
    verdicts = {round(a.json()["verdict"]["confidence"], 12) for a in answers}
    assert len(verdicts) == 10  # each answer bounds at the confidence it asked for
