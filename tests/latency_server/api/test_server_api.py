"""The REST API in-process (real service, store, worker thread and ORT sessions; no sockets)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from latency_server.admission.measurer import BlockFigure
from latency_server.api.deps import get_service
from latency_server.app import create_app
from latency_server.config import Settings
from latency_server.errors import TaskError
from latency_server.service import LatencyService
from latency_server.store.crud import Store
from latency_server.store.database import upgrade_database
from shared.api_schemas import BlocksResponse, DeviceResponse, JobStatus, LutResponse, MeasureSettings, NetworkResponse
from shared.block_key import BlockKey
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS
from tests.latency_server.conftest import fast_settings

SPEC = {"type": "ir", "in_chs": 16, "out_chs": 24, "stride": 2, "resolution": 16, "exp_ratio": 3, "kernel": 5,
        "se_ratio": 0.25, "act": "relu"}


def test_health_and_device(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["read_only"] is False and health.json()["read_only_reason"] is None
    device = DeviceResponse.model_validate(client.get("/v1/device").json())
    assert {"onnxruntime", "torch-cpu"} <= set(device.backends)
    assert device.hardware["cpu_count"] >= 1 and device.hardware["cpu_model"]
    assert device.software["torch"] and device.software["onnxruntime"]
    other = client.get("/v1/device", params={"threads": 2}).json()["fingerprint"]
    torch_cpu = client.get("/v1/device", params={"backend": "torch-cpu"}).json()["fingerprint"]
    batch = client.get("/v1/device", params={"batch_size": 4}).json()["fingerprint"]
    assert len({device.fingerprint, other, torch_cpu, batch}) == 4
    assert client.get("/v1/device").json()["fingerprint"] == device.fingerprint  # stable


def _stat(client: TestClient, name: str) -> int:
    return client.get("/v1/stats").json()[name]


def test_blocks_measured_once_then_cached_in_request_order(client: TestClient) -> None:
    second = {**SPEC, "kernel": 3, "se_ratio": 0}
    before = _stat(client, "block_measurements")  # the module's app is shared: counts are deltas
    resp = client.post("/v1/latency/blocks", json={"blocks": [SPEC, second, SPEC]})
    assert resp.status_code == 200, resp.text
    body = BlocksResponse.model_validate(resp.json())
    assert [r.key for r in body.results] == [str(BlockKey.from_dict(s)) for s in (SPEC, second, SPEC)]
    assert [r.cached for r in body.results] == [False, False, False]
    assert body.results[0].stats == body.results[2].stats
    assert body.results[0].block.model_dump() == BlockKey.from_dict(SPEC).to_dict()
    assert _stat(client, "block_measurements") == before + 2
    again = client.post("/v1/latency/blocks", json={"blocks": [second, SPEC]}).json()
    assert [r["cached"] for r in again["results"]] == [True, True]
    assert again["results"][1]["stats"] == resp.json()["results"][0]["stats"]
    assert _stat(client, "block_measurements") == before + 2


def test_backends_and_batch_sizes_are_separate_figures(client: TestClient) -> None:
    spec = {"type": "cn", "in_chs": 8, "out_chs": 16, "stride": 1, "resolution": 8, "kernel": 1}
    before = _stat(client, "block_measurements")
    ort = client.post("/v1/latency/blocks", json={"blocks": [spec]}).json()
    eager = client.post("/v1/latency/blocks", json={"blocks": [spec], "backend": "torch-cpu"}).json()
    batch = client.post("/v1/latency/blocks", json={"blocks": [spec], "batch_size": 4}).json()
    assert len({ort["fingerprint"], eager["fingerprint"], batch["fingerprint"]}) == 3
    assert not any(r["results"][0]["cached"] for r in (ort, eager, batch))
    assert _stat(client, "block_measurements") == before + 3


def test_fixed_part_specs_measure(client: TestClient) -> None:
    specs = [key.to_dict() for key in HARDCORENAS.fixed_keys(32).values()]
    resp = client.post("/v1/latency/blocks", json={"blocks": specs})
    assert resp.status_code == 200, resp.text
    assert [r["key"] for r in resp.json()["results"]] == [str(k) for k in HARDCORENAS.fixed_keys(32).values()]


def test_network_without_table_has_no_prediction(client: TestClient) -> None:
    before = _stat(client, "network_measurements")
    resp = client.post("/v1/latency/network", json={"arch": PUBLISHED["A"].arch, "resolution": 32})
    assert resp.status_code == 200, resp.text
    body = NetworkResponse.model_validate(resp.json())
    assert body.predicted_ms is None and body.measured.median_ms > 0
    settings = client.app.state.settings
    assert settings.network_rounds <= len(body.rounds) <= settings.verdict_max_rounds  # the sequential rule's stop
    assert body.verdict is not None and body.verdict.rounds == len(body.rounds)
    assert body.drift_ratio is None  # no table, no reference
    # a network outside the search space is measured too (and never predicted)
    outside = "[['ds_r1_k3_s1_e1_c16_nre'], ['ir_r1_k3_s2_e2_c24'], ['cn_r1_k1_s1_c64']]"
    resp = client.post("/v1/latency/network", json={"arch": outside, "resolution": 32, "backend": "torch-cpu"})
    assert resp.status_code == 200 and resp.json()["predicted_ms"] is None
    assert _stat(client, "network_measurements") == before + 2


def test_network_rounds_setting(make_client: Callable[..., TestClient]) -> None:
    client = make_client(network_rounds=3, verdict_max_rounds=3)
    body = client.post("/v1/latency/network", json={"arch": PUBLISHED["A"].arch, "resolution": 32}).json()
    assert len(body["rounds"]) == 3
    medians = sorted(r["median_ms"] for r in body["rounds"])
    assert body["measured"]["median_ms"] == pytest.approx(medians[1])
    assert body["verdict"]["network_rounds_ms"] == [r["median_ms"] for r in body["rounds"]]


def _wait(client: TestClient, location: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(location).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(job)


_FAIL_KEY = str(HARDCORENAS.searchable_keys(32)[5])
_FAILING = {_FAIL_KEY}  # cleared to let the key be measured again


def _failing_service(settings: Settings) -> LatencyService:
    """A service whose measurer fails one key as the worker reports a measurement that raised (an injected fault)."""
    service = LatencyService(settings, Store(settings.database_url()))
    measure_block = service.measurer.measure_block

    def failing(measuring: MeasureSettings, fp_id: str, key: BlockKey) -> BlockFigure:
        if str(key) in _FAILING:
            raise TaskError(f"block {key}", "RuntimeError", "injected fault", "Traceback: injected")
        return measure_block(measuring, fp_id, key)

    service.measurer.measure_block = failing  # type: ignore[method-assign]
    return service


@pytest.mark.slow
def test_failed_measurement_fails_the_job_and_the_server_keeps_serving(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path)
    upgrade_database(settings.database_url())
    service = _failing_service(settings)
    with TestClient(create_app(settings, service=service)) as client:
        resp = client.get("/v1/lut", params={"resolution": 32})
        assert resp.status_code == 202
        job = JobStatus.model_validate(_wait(client, resp.headers["location"]))
        assert job.state == "failed" and _FAIL_KEY in job.error and job.reason == "error"
        assert job.request_id in job.error and "RuntimeError" not in job.error  # the details are in the log only
        assert job.done == job.total - 1
        assert client.get("/healthz").status_code == 200
        bad = client.post("/v1/latency/blocks", json={"blocks": [BlockKey.parse(_FAIL_KEY).to_dict()]})
        # a server-side fault: 5xx (clients may retry), naming the block, without the exception's text
        assert bad.status_code == 500 and _FAIL_KEY in bad.text and "injected" not in bad.text
        assert bad.json()["detail"][0]["type"] == "measurement_error"
        # a new request starts a new job that only retries the missing entry
        _FAILING.clear()
        resp = client.get("/v1/lut", params={"resolution": 32})
        # (the job also counts the reference and calibration steps of the build)
        assert resp.status_code == 202 and resp.json()["done"] == len(HARDCORENAS.all_keys(32)) - 1
        assert _wait(client, resp.headers["location"])["state"] == "done"
        table = LutResponse.model_validate(client.get("/v1/lut", params={"resolution": 32}).json())
        assert len(table.entries) == 120


def test_unexpected_errors_become_json(client: TestClient) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    client.app.dependency_overrides[get_service] = broken
    resp = client.get("/v1/stats")
    body = resp.json()
    assert resp.status_code == 500 and "boom" not in resp.text and "RuntimeError" not in resp.text
    assert body["request_id"] in body["detail"] and resp.headers["x-request-id"] == body["request_id"]
    client.app.dependency_overrides.clear()
    assert client.get("/v1/stats").status_code == 200


def test_token_from_settings(make_client: Callable[..., TestClient]) -> None:
    client = make_client(token="t0k")
    assert client.post("/v1/latency/blocks", json={"blocks": [SPEC]}).status_code == 401
    assert client.post("/v1/latency/blocks", json={"blocks": [SPEC]},
                       headers={"Authorization": "Basic t0k"}).status_code == 401
    ok = client.post("/v1/latency/blocks", json={"blocks": [SPEC]}, headers={"Authorization": "Bearer t0k"})
    assert ok.status_code == 200
    assert client.get("/v1/device").status_code == 200


def test_openapi_lists_the_contract(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/v1/device", "/v1/latency/blocks", "/v1/lut", "/v1/jobs/{job_id}",
            "/v1/latency/network"} <= set(paths)


@pytest.mark.slow
def test_complete_table_fast_path_matches_the_route_and_keeps_the_guards(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(token="t0k")
    auth = {"Authorization": "Bearer t0k"}
    resp = client.get("/v1/lut", params={"resolution": 32}, headers=auth)
    assert resp.status_code == 202
    assert _wait(client, resp.headers["location"])["state"] == "done"
    first = client.get("/v1/lut", params={"resolution": 32}, headers=auth)  # route, fills the cache
    cached = client.get("/v1/lut?resolution=32&backend=onnxruntime&threads=1&batch_size=1", headers=auth)
    assert first.status_code == cached.status_code == 200
    assert first.json() == cached.json() and cached.headers["content-type"] == "application/json"
    LutResponse.model_validate(cached.json())
    assert client.get("/v1/lut", params={"resolution": 32}).status_code == 401
    assert client.get("/v1/lut", params={"resolution": 32}, headers={"Authorization": "Bearer x"}).status_code == 401
    assert client.get("/v1/lut", params={"resolution": 32, "threads": "x"}, headers=auth).status_code == 422
    other = client.get("/v1/lut", params={"resolution": 32, "threads": 2}, headers=auth)
    assert other.status_code == 202  # another fingerprint: its own build
