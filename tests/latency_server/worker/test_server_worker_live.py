"""The measurement worker process against real servers: limits, kills, restarts, health, the bounded queue,
abandoned requests, budgets, refused retries and shutdown. No assertion depends on timing: a worker that must
stay down is held down by the restart-hold test hook, and waits poll for a state."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nas.latency.client import LatencyClient, LatencyServerError
from nas.latency.local_server import LocalServer
from shared.published import PUBLISHED
from tests.live import server_stats, start_server, until

RES = 32


def _block(i: int) -> dict:
    """A tiny block, distinct for each ``i`` (a fresh measurement each)."""
    return {"type": "cn", "in_chs": 8, "out_chs": 8 + i, "stride": 1, "resolution": 8, "kernel": 1}




def _health(server: LocalServer) -> httpx.Response:
    return httpx.get(f"{server.url}/healthz", timeout=60)




def _kill_worker(server: LocalServer) -> int:
    pid = _health(server).json()["worker"]["pid"]
    os.kill(pid, signal.SIGKILL)
    return pid


def _post_in_thread(server: LocalServer, body: dict, out: list) -> threading.Thread:
    def post() -> None:
        with server.client(timeout_s=600) as client:
            out.append(client.post("/v1/latency/blocks", json=body))

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, Path]]:
    """A server whose worker is not restarted while its hold file exists, with room for 2 queued tasks."""
    tmp = tmp_path_factory.mktemp("held")
    hold = tmp / "hold"
    server = start_server(f"sqlite:///{tmp / 'held.db'}", tmp / "server.log",
                          LATENCY_SERVER_WORKER_RESTART_HOLD_FILE=str(hold), LATENCY_SERVER_MAX_QUEUED_TASKS="2",
                          LATENCY_SERVER_WORKER_START_TIMEOUT_S="600")
    yield server, hold
    hold.unlink(missing_ok=True)
    server.stop()


@pytest.mark.slow  # a live server process
def test_budgets_refuse_the_examples_before_any_work(held: tuple[LocalServer, Path]) -> None:
    server, _ = held
    with server.client() as client:
        huge = client.post("/v1/latency/network", json={"arch": "[['ir_r64_k3_s1_e6_c4096']]", "resolution": 32})
        assert huge.status_code == 422, huge.text
        (item,) = huge.json()["detail"]
        assert item["type"] == "over_budget" and item["loc"] == ["body", "arch"]
        assert "LATENCY_SERVER_MAX_PARAMETERS" in item["msg"] and "G parameters" in item["msg"]
        table = client.get("/v1/lut", params={"resolution": 1024, "batch_size": 256})
        assert table.status_code == 422 and "LATENCY_SERVER_MAX_ACTIVATION_ELEMENTS" in table.text
        # each block within the per-model limits and the task timeout (about 9 minutes each), together over an hour
        slow = [{"type": "cn", "in_chs": 256, "out_chs": 256 + i, "stride": 1, "resolution": 96, "kernel": 11}
                for i in range(10)]
        blocks = client.post("/v1/latency/blocks", json={"blocks": slow})
        assert blocks.status_code == 422 and "LATENCY_SERVER_MAX_REQUEST_S" in blocks.text
    stats = server_stats(server)
    assert stats["measurements"] == 0 and stats["queued"] == 0 and stats["active_jobs"] == 0


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_the_queue_stays_bounded(held: tuple[LocalServer, Path]) -> None:
    server, hold = held
    healthy = _health(server)
    assert healthy.status_code == 200 and httpx.head(f"{server.url}/healthz", timeout=60).status_code == 200
    body = healthy.json()
    assert body["worker"]["alive"] and body["worker"]["answered_ping"] and body["database"]["reachable"]
    assert body["queue"] == {"depth": 0, "capacity": 2, "oldest_age_s": None}
    with server.client() as client:
        assert client.post("/v1/latency/blocks", json={"blocks": [_block(0)]}).status_code == 200

    # 1. killed while idle (and held down): /healthz answers 503, cached figures are still served
    hold.touch()
    pid = _kill_worker(server)
    down = until(lambda: (r := _health(server)).status_code == 503 and not r.json()["worker"]["alive"] and r,
                  "/healthz to answer 503 with the worker dead")
    assert down.json()["status"] == "unavailable" and down.json()["worker"]["state"] == "down"
    assert down.headers["retry-after"]
    with server.client() as client:
        cached = client.post("/v1/latency/blocks", json={"blocks": [_block(0)]})
        assert cached.status_code == 200 and cached.json()["results"][0]["cached"] is True

    # 2. requests queue up while the worker is down; one whose client gives up is never measured
    answers: list[httpx.Response] = []
    waiting = [_post_in_thread(server, {"blocks": [_block(1)]}, answers)]
    until(lambda: (s := server_stats(server))["queued"] == 1 and s["current_task"],
          "the first task to wait for a worker")
    assert "block" in server_stats(server)["current_task"]["label"]
    with server.client(timeout_s=2.0) as impatient, pytest.raises(httpx.TimeoutException):
        impatient.post("/v1/latency/blocks", json={"blocks": [_block(2)]})
    until(lambda: server_stats(server)["abandoned"] == 1, "the abandoned task to be cancelled")
    waiting.append(_post_in_thread(server, {"blocks": [_block(3)]}, answers))
    until(lambda: server_stats(server)["queued"] == 2, "two tasks queued")
    assert _health(server).json()["queue"]["oldest_age_s"] >= 0

    # 3. the queue is full: 429 with Retry-After, naming the limit
    with server.client() as client:
        full = client.post("/v1/latency/blocks", json={"blocks": [_block(4)]})
    assert full.status_code == 429 and int(full.headers["retry-after"]) >= 1
    assert "LATENCY_SERVER_MAX_QUEUED_TASKS" in full.text

    # 4. released: a new worker starts, the waiting requests are answered, the abandoned block was never measured
    hold.unlink()
    up = until(lambda: (r := _health(server)).status_code == 200 and r.json(), "the worker to restart")
    assert up["worker"]["pid"] != pid and up["worker"]["restarts"] >= 1
    for thread in waiting:
        thread.join(600)
    assert [r.status_code for r in answers] == [200, 200]
    stats = server_stats(server)
    assert stats["block_measurements"] == 3 and stats["queued"] == 0 and stats["worker_restarts"] >= 1


#: every measurement takes at least 5 s (a wall-clock floor on the timed runs); the budget lets it through
SLOW_METHOD = {"LATENCY_SERVER_BUDGET_S": "5", "LATENCY_SERVER_MAX_REPEATS": "1000000000",
               "LATENCY_SERVER_MAX_REQUEST_S": "1e9"}


class _CountingTransport(httpx.HTTPTransport):
    """httpx's transport, counting the requests the typed client sends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return super().handle_request(request)


def _typed_client(server: LocalServer) -> tuple[LatencyClient, _CountingTransport]:
    transport = _CountingTransport()
    return LatencyClient(server.url, retries=2, backoff_s=0.05, max_backoff_s=0.2, transport=transport), transport


@pytest.mark.slow
def test_a_task_over_its_time_limit_is_killed_and_not_retried_in_a_loop(live_server, tmp_path: Path) -> None:
    first = live_server(**SLOW_METHOD)  # stores a figure with the same method (figures are kept per method)
    with first.client() as client:
        assert client.post("/v1/latency/blocks", json={"blocks": [_block(0)]}).status_code == 200
    first.stop()
    hold = tmp_path / "hold"
    # admitted although estimated over the limit, so that the worker runs over it and is killed
    server = live_server(**SLOW_METHOD, LATENCY_SERVER_TASK_TIMEOUT_S="3", LATENCY_SERVER_REFUSE_OVER_TIMEOUT="false",
                         LATENCY_SERVER_WORKER_RESTART_HOLD_FILE=str(hold))
    with server.client() as client:
        hold.touch()  # keep the killed worker down, to look at the server meanwhile
        killed = client.post("/v1/latency/blocks", json={"blocks": [_block(1)]})
        assert killed.status_code == 504, killed.text
        (item,) = killed.json()["detail"]
        assert item["type"] == "measurement_timeout" and "LATENCY_SERVER_TASK_TIMEOUT_S" in item["msg"]
        assert "cn:in8:out9" in item["msg"]
        assert until(lambda: _health(server).status_code == 503, "/healthz to report the worker down")
        cached = client.post("/v1/latency/blocks", json={"blocks": [_block(0)]})  # served without the worker
        assert cached.status_code == 200 and cached.json()["results"][0]["cached"] is True
        again = client.post("/v1/latency/blocks", json={"blocks": [_block(1)]})  # refused at once: no new kill
        assert again.status_code == 504 and "not retried" in again.text and int(again.headers["retry-after"]) > 1
        assert server_stats(server)["failures"] == {"timeout": 1}

    # the typed search client against these answers: 5xx retried (honouring Retry-After, capped), 4xx never
    typed, sent = _typed_client(server)
    with typed:
        with pytest.raises(LatencyServerError) as down:
            typed.health()
        assert down.value.status_code == 503 and sent.calls == 3
        sent.calls = 0
        with pytest.raises(LatencyServerError) as refused:
            typed.measure_network("[['ir_r64_k3_s1_e6_c4096']]", resolution=RES)
    assert refused.value.status_code == 422 and sent.calls == 1
    assert "LATENCY_SERVER_MAX_PARAMETERS" in str(refused.value)
    hold.unlink()
    until(lambda: _health(server).status_code == 200, "the worker to restart")
    typed, sent = _typed_client(server)
    with typed, pytest.raises(LatencyServerError) as timed_out:
        typed.measure_network(PUBLISHED["A"].arch, resolution=RES)  # killed once; the retries are refused at once
    assert timed_out.value.status_code == 504 and sent.calls == 3 and "not retried" in str(timed_out.value)
    assert server_stats(server)["failures"] == {"timeout": 2}

    # a table build that kills the worker ends at the first kill, and is not restarted by the next request
    until(lambda: _health(server).status_code == 200, "the worker to restart")
    with server.client() as client:
        started = client.get("/v1/lut", params={"resolution": RES})
        assert started.status_code == 202
        location = started.headers["location"]
        job = until(lambda: (j := client.get(location).json())["state"] == "failed" and j, "the build to fail")
        assert job["reason"] == "timeout" and "reference:start" in job["error"]
        retried = client.get("/v1/lut", params={"resolution": RES})
        assert retried.status_code == 504 and "not retried" in retried.text and "reference:start" in retried.text
    stats = server_stats(server)
    assert stats["failures"] == {"timeout": 3} and stats["measurements"] == 0 and stats["active_jobs"] == 0


@pytest.mark.slow
def test_a_task_over_its_memory_limit_is_killed_and_the_worker_dies_with_its_server(live_server) -> None:
    server = live_server(LATENCY_SERVER_TASK_MEMORY_MB="2048")
    wide = {"type": "ir", "in_chs": 128, "out_chs": 128, "stride": 1, "resolution": 512, "exp_ratio": 6,
            "kernel": 3, "se_ratio": 0, "act": "relu"}  # tensors of 768 x 512 x 512 floats (800 MB each)
    with server.client() as client:
        assert client.post("/v1/latency/blocks", json={"blocks": [_block(0)]}).status_code == 200  # fits
        killed = client.post("/v1/latency/blocks", json={"blocks": [wide]})
        assert killed.status_code == 500, killed.text
        (item,) = killed.json()["detail"]
        assert item["type"] == "measurement_memory" and "LATENCY_SERVER_TASK_MEMORY_MB" in item["msg"]
        assert client.post("/v1/latency/blocks", json={"blocks": [_block(0)]}).json()["results"][0]["cached"]
        up = until(lambda: (r := _health(server)).status_code == 200 and r.json(), "the worker to restart")
        assert up["worker"]["restarts"] == 1 and server_stats(server)["failures"] == {"memory": 1}
    worker_pid = up["worker"]["pid"]
    server.kill()  # SIGKILL: no shutdown code runs in the server, the worker must still not live on
    until(lambda: not Path(f"/proc/{worker_pid}").exists() or "\tZ" in Path(f"/proc/{worker_pid}/status")
           .read_text(errors="replace"), "the worker to end with its server")


@pytest.mark.slow
def test_shutdown_answers_waiting_requests_and_ends_without_a_kill(live_server, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    server = live_server(LATENCY_SERVER_WORKER_RESTART_HOLD_FILE=str(hold),
                         LATENCY_SERVER_WORKER_START_TIMEOUT_S="600", LATENCY_SERVER_LOG_LEVEL="info")
    hold.touch()
    _kill_worker(server)
    until(lambda: _health(server).status_code == 503, "the worker to be down")
    answers: list[httpx.Response] = []

    def queued(n: int) -> bool:
        if answers:  # answered before the server stopped: it must have waited for the worker instead
            pytest.fail(f"answered while the worker was down: {answers[0].status_code} {answers[0].text}")
        return server_stats(server)["queued"] == n

    waiting = [_post_in_thread(server, {"blocks": [_block(1)]}, answers)]
    until(lambda: queued(1), "a task waiting for the worker")
    waiting.append(_post_in_thread(server, {"blocks": [_block(2)]}, answers))
    until(lambda: queued(2), "a second task queued")
    server.stop(timeout_s=120)  # SIGTERM, then SIGKILL only if it has not ended
    assert "Finished server process" in server.log_path.read_text(errors="replace")  # its shutdown code ran
    for thread in waiting:
        thread.join(60)
    assert sorted(r.status_code for r in answers) == [503, 503]
    assert {r.json()["detail"][0]["type"] for r in answers} == {"server_stopping"}
