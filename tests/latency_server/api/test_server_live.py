"""Acceptance tests against real ``latency-server serve`` processes (uvicorn, SQLite file, ORT sessions)."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from nas.latency.local_server import LocalServer
from shared.block_key import BlockKey
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS
from tests.live import TOKEN

pytestmark = pytest.mark.slow  # real server processes building tables

RES = 32


def _wait_job(client: httpx.Client, location: str, until_done: int | None = None, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(location).json()
        if job["state"] in ("done", "failed") or (until_done is not None and job["done"] >= until_done):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {location} did not finish: {job}")


def _stored_blocks(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("select count(*) from block_measurements").fetchone()[0]


def test_lut_builds_through_jobs_resumes_after_kill_and_is_reused(live_server, tmp_path: Path) -> None:
    db_path = tmp_path / "lut.db"
    db_url = f"sqlite:///{db_path}"
    total = len(HARDCORENAS.all_keys(RES))

    # 1. a server starts the build (slowed down so that it can be interrupted) and is killed half-way; every server
    #    here measures with the same settings, or it would neither reuse nor resume the others' figures
    slow = {"LATENCY_SERVER_BUDGET_S": "0.01"}
    first = live_server(db_url, **slow)
    with first.client() as client:
        resp = client.get("/v1/lut", params={"resolution": RES})
        assert resp.status_code == 202, resp.text
        accepted = resp.json()
        # the job's steps: every entry, the drift reference (start, middle, end), the fit rounds and the fit
        assert set(accepted) == {"job_id", "done", "total"} and accepted["total"] == total + 3 + 3 + 1
        assert resp.headers["location"] == f"/v1/jobs/{accepted['job_id']}"
        again = client.get("/v1/lut", params={"resolution": RES})
        assert again.status_code == 202 and again.json()["job_id"] == accepted["job_id"]  # joined, not restarted
        job = _wait_job(client, resp.headers["location"], until_done=11)  # the reference, then 10 entries
        assert job["state"] in ("running", "done") and set(job) == {"id", "state", "done", "total", "error", "reason",
                                                                      "request_id"}
    first.kill()
    stored = _stored_blocks(db_path)
    assert 10 <= stored < total, "the kill should interrupt the build"

    # 2. a new server on the same file resumes: it measures only what is missing
    second = live_server(db_url, **slow)
    with second.client() as client:
        resp = client.get("/v1/lut", params={"resolution": RES})
        assert resp.status_code == 202
        assert resp.json()["done"] == stored
        job = _wait_job(client, resp.headers["location"])
        assert job["state"] == "done" and job["done"] == job["total"] and job["error"] is None
        assert second.measurements() == total - stored
        lut = client.get("/v1/lut", params={"resolution": RES})
        assert lut.status_code == 200
        table = lut.json()
    second.stop()

    fixed_keys = HARDCORENAS.fixed_keys(RES)
    assert table["unit"] == "ms" and table["space"] == "hardcorenas" and table["resolution"] == RES
    assert (table["backend"], table["batch_size"], table["threads"]) == ("onnxruntime", 1, 1)
    assert list(table["entries"]) == [str(k) for k in HARDCORENAS.searchable_keys(RES)]
    assert len(table["entries"]) == 120
    assert list(table["fixed"]) == [str(k) for k in fixed_keys.values()]
    assert table["fixed_names"] == {name: str(k) for name, k in fixed_keys.items()}
    assert table["fixed_ms"] == pytest.approx(sum(table["fixed"].values()))
    assert set(table["stats"]) == set(table["entries"]) | set(table["fixed"])
    for key, stats in table["stats"].items():
        BlockKey.parse(key)
        assert set(stats) == {"median_ms", "iqr_ms", "p90_ms", "samples", "warmup"}
        assert stats["median_ms"] > 0 and stats["samples"] >= 3 and stats["warmup"] >= 10
        assert stats["median_ms"] == (table["entries"] | table["fixed"])[key]

    # 3. a third server on the same file answers the complete table at once, with zero measurements
    third = live_server(db_url, **slow)
    with third.client() as client:
        resp = client.get("/v1/lut", params={"resolution": RES})
        assert resp.status_code == 200
        assert resp.json() == table
        assert third.measurements() == 0
        assert client.get("/v1/device").json()["fingerprint"] == table["fingerprint"]

        # the network endpoint measures once and predicts from the complete table
        arch = PUBLISHED["B"].arch
        net = client.post("/v1/latency/network", json={"arch": arch, "resolution": RES})
        assert net.status_code == 200, net.text
        body = net.json()
        choice = HARDCORENAS.choice_from_arch(arch)
        expected = table["fixed_ms"] + sum(
            table["entries"][str(HARDCORENAS.block_key(s, j, o, RES))]
            for s, stage in enumerate(choice.options)
            for j, o in enumerate(stage)
        )
        assert body["predicted_naive_ms"] == pytest.approx(expected)
        # the table's whole-network correction, then the drift reference measured alongside
        corrected = table["corrected_fixed_ms"] + sum(
            table["corrected_entries"][str(HARDCORENAS.block_key(s, j, o, RES))]
            for s, stage in enumerate(choice.options)
            for j, o in enumerate(stage)
        )
        assert body["predicted_table_ms"] == pytest.approx(corrected)
        assert body["drift_ratio"] == pytest.approx(body["reference"]["measured_ms"] / table["reference"]["median_ms"])
        # the drift counts in full, on this request's own reference
        assert body["drift_elasticity_source"] == "request" and body["drift_elasticity"] == 1.0
        assert 0.8 < body["table_level_factor"] < 1.25  # other tests' networks may have checked the table already
        assert body["predicted_ms"] == pytest.approx(corrected * body["table_level_factor"] * body["drift_ratio"])
        assert body["measured"]["median_ms"] > 0 and body["fingerprint"] == table["fingerprint"]
        assert third.measurements() == 1
        # another resolution has no complete table: no prediction
        other = client.post("/v1/latency/network", json={"arch": arch, "resolution": 64}).json()
        assert other["predicted_ms"] is None


def test_concurrent_identical_block_requests_measure_once(module_server: LocalServer) -> None:
    spec = {"type": "ir", "in_chs": 40, "out_chs": 80, "stride": 2, "resolution": 28, "exp_ratio": 6, "kernel": 5,
            "se_ratio": 0.25, "act": "hard_swish"}
    before = module_server.measurements()

    def post(_: int) -> httpx.Response:
        with module_server.client(TOKEN) as client:
            return client.post("/v1/latency/blocks", json={"blocks": [spec]})

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(post, range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    results = [r.json()["results"][0] for r in responses]
    assert len({r["stats"]["median_ms"] for r in results}) == 1
    assert {r["key"] for r in results} == {str(BlockKey.from_dict(spec))}
    assert module_server.measurements() - before == 1
    again = post(0).json()["results"][0]
    assert again["cached"] is True and module_server.measurements() - before == 1


def test_token_guards_measuring_endpoints(module_server: LocalServer) -> None:
    spec = {"type": "cn", "in_chs": 8, "out_chs": 16, "stride": 1, "resolution": 8, "kernel": 1}
    with module_server.client() as anon, module_server.client("wrong") as wrong:
        for client in (anon, wrong):
            assert client.post("/v1/latency/blocks", json={"blocks": [spec]}).status_code == 401
            assert client.post("/v1/latency/network", json={"arch": PUBLISHED["A"].arch}).status_code == 401
            resp = client.get("/v1/lut", params={"resolution": RES})
            assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
            assert "Bearer" in resp.json()["detail"]
        # read-only endpoints stay open
        assert anon.get("/healthz").json()["status"] == "ok"
        assert anon.get("/v1/device").status_code == 200
        assert anon.get("/v1/stats").status_code == 200
        assert anon.get("/v1/jobs/nope").status_code == 404
        assert anon.get("/openapi.json").status_code == 200
    before = module_server.measurements()
    with module_server.client(TOKEN) as authed:
        resp = authed.post("/v1/latency/blocks", json={"blocks": [spec]})
        assert resp.status_code == 200 and resp.json()["results"][0]["cached"] is False
    assert module_server.measurements() == before + 1


BLOCK = {"type": "ir", "in_chs": 16, "out_chs": 24, "stride": 2, "resolution": 16, "exp_ratio": 3, "kernel": 3,
         "se_ratio": 0, "act": "relu"}
NET = PUBLISHED["A"].arch


def _block(**changes: object) -> dict:
    return {"blocks": [{**BLOCK, **changes}]}


def _drop(field: str) -> dict:
    return {"blocks": [{k: v for k, v in BLOCK.items() if k != field}]}


# (method, path, json or params, text the error must contain)
BAD_REQUESTS: list[tuple[str, str, object, str]] = [
    ("POST", "/v1/latency/blocks", {}, "blocks"),
    ("POST", "/v1/latency/blocks", {"blocks": []}, "blocks"),
    ("POST", "/v1/latency/blocks", {"blocks": "ir"}, "blocks"),
    ("POST", "/v1/latency/blocks", [1, 2], "body"),
    ("POST", "/v1/latency/blocks", _block(type="zz"), "type"),
    ("POST", "/v1/latency/blocks", _drop("in_chs"), "in_chs"),
    ("POST", "/v1/latency/blocks", _block(in_chs=0), "in_chs"),
    ("POST", "/v1/latency/blocks", _block(in_chs=-3), "in_chs"),
    ("POST", "/v1/latency/blocks", _block(in_chs="many"), "in_chs"),
    ("POST", "/v1/latency/blocks", _block(in_chs=True), "in_chs"),
    ("POST", "/v1/latency/blocks", _block(in_chs=16.5), "in_chs"),
    ("POST", "/v1/latency/blocks", _block(in_chs=10**9), "in_chs"),
    ("POST", "/v1/latency/blocks", _block(out_chs=10**6), "out_chs"),
    ("POST", "/v1/latency/blocks", _block(stride=3), "stride"),
    ("POST", "/v1/latency/blocks", _block(kernel=4), "kernel"),
    ("POST", "/v1/latency/blocks", _block(kernel=99), "kernel"),
    ("POST", "/v1/latency/blocks", _block(exp_ratio=0), "exp_ratio"),
    ("POST", "/v1/latency/blocks", _block(exp_ratio=10**6), "exp_ratio"),
    ("POST", "/v1/latency/blocks", _block(se_ratio=2), "se_ratio"),
    ("POST", "/v1/latency/blocks", _block(act="gelu"), "act"),
    ("POST", "/v1/latency/blocks", _block(resolution=10**6), "resolution"),
    ("POST", "/v1/latency/blocks", _block(resolution=0), "resolution"),
    ("POST", "/v1/latency/blocks", _block(foo=1), "foo"),
    ("POST", "/v1/latency/blocks", _block(type="head", num_classes=0), "num_classes"),
    ("POST", "/v1/latency/blocks", _block(in_chs=4000, out_chs=4000, resolution=1000), "LATENCY_SERVER_MAX"),
    ("POST", "/v1/latency/blocks", {**_block(type="cn", in_chs=1024, out_chs=1024, resolution=1024, kernel=1),
                                    "batch_size": 256}, "MAX_ACTIVATION_ELEMENTS"),
    ("POST", "/v1/latency/blocks", {**_block(), "backend": "tpu"}, "backend"),
    ("POST", "/v1/latency/blocks", {**_block(), "batch_size": 0}, "batch_size"),
    ("POST", "/v1/latency/blocks", {**_block(), "batch_size": 10**6}, "batch_size"),
    ("POST", "/v1/latency/blocks", {**_block(), "threads": 0}, "threads"),
    ("POST", "/v1/latency/blocks", {**_block(), "threads": 10**4}, "threads"),
    ("POST", "/v1/latency/blocks", {"blocks": [BLOCK] * 300}, "blocks"),
    ("POST", "/v1/latency/network", {}, "arch"),
    ("POST", "/v1/latency/network", {"arch": ""}, "arch"),
    ("POST", "/v1/latency/network", {"arch": "garbage"}, "arch"),
    ("POST", "/v1/latency/network", {"arch": "[['ir_r1_k5']]"}, "arch"),
    ("POST", "/v1/latency/network", {"arch": "[['ir_r1_k3_s1_e3_c16_zz9']]"}, "zz9"),
    ("POST", "/v1/latency/network", {"arch": NET * 100}, "arch"),
    ("POST", "/v1/latency/network", {"arch": "[['cn_r1_k1_s1_c999999']]"}, "channels"),
    ("POST", "/v1/latency/network", {"arch": "[['cn_r1_k99_s1_c16']]"}, "kernel"),
    ("POST", "/v1/latency/network", {"arch": "[['cn_r100_k1_s1_c16']]"}, "block count"),
    ("POST", "/v1/latency/network", {"arch": NET, "resolution": 0}, "resolution"),
    ("POST", "/v1/latency/network", {"arch": NET, "resolution": 16}, "resolution"),
    ("POST", "/v1/latency/network", {"arch": NET, "resolution": 10**6}, "resolution"),
    ("POST", "/v1/latency/network", {"arch": NET, "space": "nope"}, "space"),
    ("POST", "/v1/latency/network", {"arch": NET, "backend": "tpu"}, "backend"),
    ("POST", "/v1/latency/network", {"arch": NET, "extra": 1}, "extra"),
    ("POST", "/v1/latency/network", {"arch": 42}, "arch"),
    ("GET", "/v1/lut", {"resolution": 33}, "resolution"),
    ("GET", "/v1/lut", {"resolution": 0}, "resolution"),
    ("GET", "/v1/lut", {"resolution": -32}, "resolution"),
    ("GET", "/v1/lut", {"resolution": "abc"}, "resolution"),
    ("GET", "/v1/lut", {"resolution": 10**6}, "resolution"),
    ("GET", "/v1/lut", {"resolution": 32, "space": "nope"}, "space"),
    ("GET", "/v1/lut", {"resolution": 32, "backend": "tpu"}, "backend"),
    ("GET", "/v1/lut", {"resolution": 32, "batch_size": 0}, "batch_size"),
    ("GET", "/v1/lut", {"resolution": 32, "threads": "x"}, "threads"),
    ("GET", "/v1/device", {"backend": "tpu"}, "backend"),
    ("GET", "/v1/jobs/unknown", {}, "job_id"),
]
if not torch.cuda.is_available():
    BAD_REQUESTS += [
        ("POST", "/v1/latency/blocks", {**_block(), "backend": "torch-cuda"}, "not available"),
        ("GET", "/v1/lut", {"resolution": 32, "backend": "torch-cuda"}, "not available"),
    ]


def test_bad_requests_get_4xx_naming_the_field_and_never_500(module_server: LocalServer) -> None:
    before = module_server.measurements()
    failures = []
    with module_server.client(TOKEN) as client:
        for method, path, payload, needle in BAD_REQUESTS:
            if method == "POST":
                resp = client.post(path, json=payload)
            else:
                resp = client.get(path, params=payload)  # type: ignore[arg-type]
            text = resp.text
            if not (400 <= resp.status_code < 500) or needle not in text:
                failures.append((method, path, str(payload)[:80], resp.status_code, text[:200]))
        for raw in (b"{", b"not json", b'{"blocks": [{"in_chs": NaN}]}', b"\xff\xfe"):
            resp = client.post("/v1/latency/blocks", content=raw, headers={"content-type": "application/json"})
            if resp.status_code != 422:
                failures.append(("POST", "raw", raw, resp.status_code, resp.text[:200]))
    assert not failures, "\n".join(map(str, failures))
    assert module_server.measurements() == before, "bad input must be rejected before any measurement"
    with module_server.client() as client:
        assert client.get("/healthz").status_code == 200
