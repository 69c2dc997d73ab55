"""What a web page the user opens could do to a server on loopback, tried against a real one: foreign Host names
(DNS rebinding), cross-site Origins, ``<img>`` loads and non-JSON bodies are refused before anything is measured;
hostile bodies are refused without stalling the server; read-only queries write nothing; no CORS header is sent."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from latency_server.api.exposure import UnsafeExposure
from latency_server.app import create_app
from nas.latency.local_server import LocalServer
from tests.live import fast_settings, start_server

BLOCK = {"type": "cn", "in_chs": 8, "out_chs": 8, "stride": 1, "resolution": 8, "kernel": 1}
BLOCKS, NETWORK, LUT = "/v1/latency/blocks", "/v1/latency/network", "/v1/lut"
BUILD = {"resolution": "32", "threads": "7"}  # a table nobody built: a GET would start its build
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A tokenless server on loopback (the default) that also answers to the name ``lab.example``."""
    tmp = tmp_path_factory.mktemp("browser")
    srv = start_server(f"sqlite:///{tmp / 'latency.db'}", tmp / "server.log",
                       LATENCY_SERVER_DEVICE_LOCK=str(tmp / "device.lock"), LATENCY_SERVER_ALLOWED_HOSTS="lab.example")
    yield srv
    srv.stop()


def _counters(server: LocalServer) -> dict:
    stats = httpx.get(f"{server.url}/v1/stats", timeout=30).json()
    return {k: stats[k] for k in ("measurements", "calibration_measurements", "queued", "active_jobs")}


def _probes(port: int) -> list[tuple[str, str, dict, dict, bytes | None, int, str]]:
    """(method, path, query, headers, body, status, what the message names)."""
    body = json.dumps({"blocks": [BLOCK]}).encode()
    net = json.dumps({"arch": "[['ds_r1_k3_s1_e1_c16']]", "resolution": 32}).encode()
    foreign = {"Origin": "http://attacker.example"}
    return [
        # DNS rebinding: the page's own name resolves to 127.0.0.1
        ("POST", BLOCKS, {}, {**JSON, "Host": "attacker.example", **foreign}, body, 400, "Host"),
        ("POST", NETWORK, {}, {**JSON, "Host": f"attacker.example:{port}"}, net, 400, "Host"),
        ("GET", LUT, BUILD, {"Host": f"attacker.example:{port}"}, None, 400, "Host"),
        ("GET", "/v1/device", {}, {"Host": "127.0.0.1.attacker.example"}, None, 400, "Host"),
        # a cross-site page posting or loading from the real address
        ("POST", BLOCKS, {}, {**JSON, **foreign}, body, 403, "Origin"),
        ("POST", BLOCKS, {}, {**JSON, "Origin": "null"}, body, 403, "Origin"),
        ("POST", NETWORK, {}, {**JSON, "Origin": f"http://localhost:{port + 1}"}, net, 403, "Origin"),
        ("GET", LUT, BUILD, foreign, None, 403, "Origin"),
        ("GET", LUT, BUILD, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, None, 403,
         "Sec-Fetch-Site"),  # <img src=...>: no Origin header
        # bodies a page may send without a CORS preflight, and none at all
        ("POST", BLOCKS, {}, {"Content-Type": "text/plain"}, body, 415, "Content-Type"),
        ("POST", NETWORK, {}, {"Content-Type": "application/x-www-form-urlencoded"}, net, 415, "Content-Type"),
        ("POST", BLOCKS, {}, {"Content-Type": "multipart/form-data; boundary=x"}, body, 415, "Content-Type"),
        ("POST", BLOCKS, {}, {}, body, 415, "Content-Type"),
    ]


@pytest.mark.slow
def test_browser_requests_are_refused_before_anything_is_measured(server: LocalServer) -> None:
    before = _counters(server)
    failures = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path, params, headers, body, status, needle in _probes(server.port):
            resp = client.request(method, path, params=params, headers=headers, content=body)
            detail = resp.json().get("detail") if resp.headers.get("content-type") == "application/json" else None
            named = isinstance(detail, list) and any(item["msg"].startswith(needle) for item in detail)
            if resp.status_code != status or not named or "access-control-allow-origin" in resp.headers:
                failures.append(f"{method} {path} {headers} -> {resp.status_code} {resp.text[:200]}")
        preflight = client.options(BLOCKS, headers={"Origin": "http://attacker.example",
                                                    "Access-Control-Request-Method": "POST"})
        assert not any(name.startswith("access-control-") for name in preflight.headers), preflight.headers
    assert not failures, "\n".join(failures)
    assert _counters(server) == before, "a refused request must not measure or start a build"
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for host in (f"localhost:{server.port}", f"[::1]:{server.port}", "lab.example", f"LAB.example:{server.port}"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        # the server's own pages (same origin) and plain clients still measure
        own = client.post(BLOCKS, json={"blocks": [BLOCK]}, headers={"Origin": server.url,
                                                                    "Sec-Fetch-Site": "same-origin"})
        assert own.status_code == 200 and "access-control-allow-origin" not in own.headers, own.text


@pytest.mark.slow
def test_megabyte_lists_are_refused_by_length_while_health_keeps_answering(server: LocalServer) -> None:
    items = (1 << 20) // 4 - 16  # "{}, " per item: a body just under the 1 MiB limit
    body = json.dumps({"blocks": [{}] * items}).encode()
    assert len(body) <= 1 << 20
    health: list[int] = []
    with ThreadPoolExecutor(4) as pool, httpx.Client(base_url=server.url, timeout=10) as probe:
        posts = [pool.submit(httpx.post, f"{server.url}{BLOCKS}", content=body, headers=JSON, timeout=60)
                 for _ in range(4)]
        while not all(p.done() for p in posts) or not health:
            health.append(probe.get("/healthz").status_code)
        answers = [p.result() for p in posts]
    for resp in answers:
        detail = resp.json()["detail"]
        assert resp.status_code == 422 and len(detail) == 1, resp.text[:300]
        assert detail[0]["msg"].startswith("blocks") and "256" in detail[0]["msg"]
    assert health and all(code == 200 for code in health), health


@pytest.mark.slow
def test_a_deep_stride_2_stack_at_1024_px_is_refused_by_cost_at_once(server: LocalServer) -> None:
    # timm dilates every stride past 32: forty of these blocks run at 32 x 32 px, not at 1 px
    arch = "[[" + ", ".join(["'ir_r1_k11_s2_e8_c256'"] * 44) + "]]"
    before = _counters(server)
    resp = httpx.post(f"{server.url}{NETWORK}", json={"arch": arch, "resolution": 1024}, timeout=60)
    assert resp.status_code == 422 and resp.json()["detail"][0]["type"] == "over_budget", resp.text[:300]
    assert "LATENCY_SERVER_" in resp.text and _counters(server) == before


@pytest.mark.slow
def test_device_queries_over_many_settings_write_no_rows(server: LocalServer, tmp_path: Path) -> None:
    db = Path(server.db_url.removeprefix("sqlite:///"))

    def rows() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from fingerprints").fetchone()[0]

    before = rows()
    ids = set()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for threads in range(1, 9):
            for batch_size in range(1, 9):
                resp = client.get("/v1/device", params={"threads": threads, "batch_size": batch_size})
                assert resp.status_code == 200, resp.text
                ids.add(resp.json()["fingerprint"])
    assert len(ids) == 64
    assert rows() == before


def test_a_non_loopback_bind_without_a_token_is_refused_by_the_app_itself(tmp_path: Path) -> None:
    with pytest.raises(UnsafeExposure, match="LATENCY_SERVER_TOKEN"):
        create_app(fast_settings(tmp_path, host="0.0.0.0"))
    create_app(fast_settings(tmp_path, host="0.0.0.0", token="t"))
    create_app(fast_settings(tmp_path, host="0.0.0.0", allow_unauthenticated=True))


def test_a_tokenless_app_refuses_connections_on_a_public_address(tmp_path: Path) -> None:
    """``uvicorn --factory --host 0.0.0.0`` gives the app no bind address: the connection's own address decides."""

    async def get(app: object, address: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{address}:8000") as client:
            return await client.get("/healthz")

    refused = asyncio.run(get(create_app(fast_settings(tmp_path)), "192.0.2.7"))
    assert refused.status_code == 403 and "LATENCY_SERVER_TOKEN" in refused.text
    # with a token the request goes on (to the Host check: this address was not named)
    named = asyncio.run(get(create_app(fast_settings(tmp_path, token="t")), "192.0.2.7"))
    assert named.status_code == 400 and "Host" in named.text


def test_the_host_names_a_server_answers_to(tmp_path: Path) -> None:
    from latency_server.api.exposure import allowed_host_names, ip_literals_allowed

    loopback = fast_settings(tmp_path, allowed_hosts="Lab.example, gpu-box")
    assert allowed_host_names(loopback) >= {"127.0.0.1", "localhost", "[::1]", "lab.example", "gpu-box"}
    assert not ip_literals_allowed(loopback, "192.0.2.7")  # a loopback server is reached on loopback only
    public = fast_settings(tmp_path, host="::", token="t")
    assert "::" not in allowed_host_names(public) and ip_literals_allowed(public, "[2001:db8::1]")
    assert not ip_literals_allowed(public, "attacker.example")  # rebinding always sends a name
    assert "[fe80::1]" in allowed_host_names(fast_settings(tmp_path, host="fe80::1", token="t"))
    assert allowed_host_names(fast_settings(tmp_path, allowed_hosts="*")) is None
