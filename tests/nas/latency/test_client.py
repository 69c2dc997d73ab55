"""The latency server's client against small real HTTP servers on loopback that answer from a script: the 202 job
flow, retries of server faults (5xx, 429 with ``Retry-After``), no retry of other 4xx, contract checks.

Each fake server records the requests it received; tests assert on that record, never on timing."""

from __future__ import annotations

import email.utils
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pytest

from nas.latency.client import LatencyClient, LatencyServerError, retry_delay_s
from nas.latency.table import LatencyTableError
from shared.api_schemas import JobStatus, NetworkResponse
from shared.search_space import HARDCORENAS

uvicorn = pytest.importorskip("uvicorn")
starlette_apps = pytest.importorskip("starlette.applications")
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

Handler = Callable[[Request, int], JSONResponse]

NETWORK_ANSWER = {
    "fingerprint": "fp",
    "measured": {"median_ms": 4.25, "iqr_ms": 0.1, "p90_ms": 4.5, "samples": 50, "warmup": 10},
    "predicted_ms": 4.0,
    "spread_ms": 0.2,
}


def _lut_answer(resolution: int = 32) -> dict:
    rng = np.random.default_rng(0)
    keys = HARDCORENAS.searchable_keys(resolution)
    return {
        "space": "hardcorenas", "fingerprint": "fp", "backend": "onnxruntime", "batch_size": 1, "threads": 1,
        "resolution": resolution, "fixed_ms": 0.5, "fixed": {"stem": 0.5}, "stats": {},
        "entries": {str(k): float(v) for k, v in zip(keys, rng.uniform(0.01, 0.1, len(keys)), strict=True)},
    }


class FakeServer:
    """A uvicorn server on 127.0.0.1 whose routes answer from ``handlers[(method, path)](request, n)``, ``n`` being
    how many requests that route has had before; ``requests`` records every one."""

    def __init__(self, handlers: dict[tuple[str, str], Handler]) -> None:
        self.requests: list[Request] = []
        self.bodies: list[bytes] = []
        self.handlers = handlers

        async def endpoint(request: Request) -> JSONResponse:
            n = sum(r.method == request.method and r.url.path == request.url.path for r in self.requests)
            self.requests.append(request)
            self.bodies.append(await request.body())
            return self.handlers[(request.method, request.url.path)](request, n)

        paths = sorted({path for _, path in handlers})
        methods = sorted({method for method, _ in handlers})
        self.app = starlette_apps.Starlette(routes=[Route(p, endpoint, methods=methods) for p in paths])

    def count(self, method: str, path: str) -> int:
        return sum(r.method == method and r.url.path == path for r in self.requests)


@contextmanager
def serve(handlers: dict[tuple[str, str], Handler]) -> Iterator[tuple[FakeServer, str]]:
    fake = FakeServer(handlers)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(fake.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    try:
        yield fake, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _client(url: str, **kwargs) -> LatencyClient:
    return LatencyClient(url, backoff_s=0.0, **kwargs)


def test_server_faults_are_retried_until_the_answer() -> None:
    def network(request: Request, n: int) -> JSONResponse:
        if n < 2:  # the first two requests meet an overloaded server
            return JSONResponse({"detail": "busy"}, status_code=503, headers={"Retry-After": "0"})
        return JSONResponse(NETWORK_ANSWER)

    with serve({("POST", "/v1/latency/network"): network}) as (fake, url), _client(url, retries=3) as client:
        answer = client.measure_network("arch-string", resolution=32)
    assert isinstance(answer, NetworkResponse) and answer.measured.median_ms == 4.25 and answer.spread_ms == 0.2
    assert fake.count("POST", "/v1/latency/network") == 3
    body = httpx.Response(200, content=fake.bodies[-1]).json()
    assert body == {"arch": "arch-string", "resolution": 32, "space": "hardcorenas", "confidence": 0.95,
                    "backend": "onnxruntime", "batch_size": 1, "threads": 1}


def test_another_stem_and_head_are_sent_and_the_defaults_left_out() -> None:
    def network(request: Request, n: int) -> JSONResponse:
        return JSONResponse(NETWORK_ANSWER)

    with serve({("POST", "/v1/latency/network"): network}) as (fake, url), _client(url) as client:
        client.measure_network("arch", resolution=64, stem_size=16, num_features=1024)
        client.measure_network("arch", resolution=64, stem_size=16)
    bodies = [httpx.Response(200, content=b).json() for b in fake.bodies]
    assert (bodies[0]["stem_size"], bodies[0]["num_features"]) == (16, 1024)
    assert bodies[1]["stem_size"] == 16 and "num_features" not in bodies[1]


def test_rate_limits_are_retried_and_other_client_errors_are_not() -> None:
    def stats(request: Request, n: int) -> JSONResponse:
        if n == 0:
            return JSONResponse({"detail": "slow down"}, status_code=429, headers={"Retry-After": "0"})
        return JSONResponse({"measurements": 3, "block_measurements": 2, "network_measurements": 1, "queued": 0,
                             "active_jobs": 0})

    def network(request: Request, n: int) -> JSONResponse:
        detail = [{"loc": ["body", "arch"], "msg": "not an architecture of the space", "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    handlers = {("GET", "/v1/stats"): stats, ("POST", "/v1/latency/network"): network}
    with serve(handlers) as (fake, url), _client(url, retries=3) as client:
        assert client.stats().measurements == 3
        with pytest.raises(LatencyServerError, match=r"answered 422 .*body\.arch: not an architecture") as err:
            client.measure_network("nonsense")
        with pytest.raises(LatencyTableError, match="backend"):  # checked here, never sent
            client.measure_network("arch", backend="tpu")
    assert err.value.status_code == 422
    assert fake.count("GET", "/v1/stats") == 2
    assert fake.count("POST", "/v1/latency/network") == 1


def test_retries_are_bounded() -> None:
    def broken(request: Request, n: int) -> JSONResponse:
        return JSONResponse({"detail": "internal error: KeyError: 'x'"}, status_code=500)

    with serve({("GET", "/healthz"): broken}) as (fake, url), _client(url, retries=2) as client:
        with pytest.raises(LatencyServerError, match="answered 500 to GET /healthz: internal error") as err:
            client.health()
    assert err.value.status_code == 500 and fake.count("GET", "/healthz") == 3


def test_wait_for_table_follows_the_job_flow() -> None:
    """202 + Location -> poll the job (a fault in between is retried) -> done -> 200."""
    polls = [("running", 40), None, ("running", 80), ("done", 124)]

    def lut(request: Request, n: int) -> JSONResponse:
        assert request.query_params["resolution"] == "32" and request.query_params["threads"] == "1"
        if n == 0:
            return JSONResponse({"job_id": "j1", "done": 0, "total": 124}, status_code=202,
                                headers={"Location": "/v1/jobs/j1"})
        return JSONResponse(_lut_answer(32))

    def job(request: Request, n: int) -> JSONResponse:
        if polls[n] is None:
            return JSONResponse({"detail": "restarting"}, status_code=502)
        state, done = polls[n]
        return JSONResponse({"id": "j1", "state": state, "done": done, "total": 124, "error": None})

    seen: list[JobStatus] = []
    handlers = {("GET", "/v1/lut"): lut, ("GET", "/v1/jobs/j1"): job}
    with serve(handlers) as (fake, url), _client(url, token="tok") as client:
        table = client.fetch_table(resolution=32, poll_interval_s=0.0, on_progress=seen.append)
    assert [(s.state, s.done) for s in seen] == [("running", 40), ("running", 80), ("done", 124)]
    assert fake.count("GET", "/v1/lut") == 2 and fake.count("GET", "/v1/jobs/j1") == 4
    assert all(r.headers["authorization"] == "Bearer tok" for r in fake.requests)
    assert table.resolution == 32 and len(table.entries) == 120 and table.source == f"{url}/v1/lut"
    assert table.model().min_latency_ms() > table.fixed_ms


def test_failed_builds_and_answers_outside_the_contract_are_errors() -> None:
    def lut(request: Request, n: int) -> JSONResponse:
        return JSONResponse({"job_id": "j2", "done": 0, "total": 5}, status_code=202,
                            headers={"Location": "/v1/jobs/j2"})

    def job(request: Request, n: int) -> JSONResponse:
        return JSONResponse({"id": "j2", "state": "failed", "done": 1, "total": 5, "error": "boom"})

    def network(request: Request, n: int) -> JSONResponse:
        return JSONResponse({"measured": {"median_ms": 4.25}})  # no fingerprint, no statistics

    handlers = {("GET", "/v1/lut"): lut, ("GET", "/v1/jobs/j2"): job, ("POST", "/v1/latency/network"): network}
    with serve(handlers) as (fake, url), _client(url) as client:
        with pytest.raises(LatencyServerError, match="build failed: boom"):
            client.wait_for_table(resolution=32, poll_interval_s=0.0)
        with pytest.raises(LatencyServerError, match=r"outside the contract \(NetworkResponse\): fingerprint"):
            client.measure_network("arch")
    assert fake.count("POST", "/v1/latency/network") == 1  # a 200 answer is not retried


def test_unreachable_server_is_one_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with _client(f"http://127.0.0.1:{port}", retries=1, timeout_s=2) as client:
        with pytest.raises(LatencyServerError, match="cannot reach the latency server") as err:
            client.health()
    assert err.value.status_code is None


def test_retry_delay_honours_retry_after_and_is_bounded() -> None:
    def delay(headers: dict[str, str], attempt: int = 0) -> float:
        return retry_delay_s(httpx.Response(503, headers=headers), attempt, backoff_s=0.5, max_backoff_s=30.0)

    assert delay({}, 0) == 0.5 and delay({}, 3) == 4.0 and delay({}, 10) == 30.0  # doubling, capped
    assert delay({"Retry-After": "7"}) == 7.0 and delay({"Retry-After": "3600"}) == 30.0
    assert delay({"Retry-After": "soon"}, 1) == 1.0  # unreadable: the backoff
    later = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    assert 10.0 < delay({"Retry-After": later}) <= 20.0
    past = email.utils.format_datetime(datetime.now(timezone.utc) - timedelta(seconds=20), usegmt=True)
    assert delay({"Retry-After": past}) == 0.0


def test_client_and_search_import_without_the_training_stack() -> None:
    """The client works where only the server's dependencies are installed, and the search package imports
    nothing heavy until a search runs."""
    code = ("import sys, nas.latency.client, nas.search, nas.latency.table; "
            "print(sorted(m for m in ('torch', 'timm', 'sklearn', 'matplotlib', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
