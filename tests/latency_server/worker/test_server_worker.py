"""The measurement worker process directly: results, recycling between tasks; a server that never imports torch,
and one whose database is unreachable (real spawned processes and ORT sessions)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from latency_server.app import create_app
from latency_server.config import Settings
from latency_server.service import LatencyService
from latency_server.store.crud import Store
from latency_server.worker.child import WorkerConfig
from latency_server.worker.stats import Method
from latency_server.worker.supervisor import MeasurementWorker, WorkerLimits
from latency_server.worker.tasks import BlockResult, BlockTask, NetworksResult, NetworkTask
from shared.api_schemas import MeasureSettings
from shared.arch_string import parse_arch
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS

FAST = Method(warmup=10, min_repeats=3, budget_s=0.0)
ONE = MeasureSettings()


@pytest.mark.slow
def test_worker_measures_and_is_recycled_between_tasks() -> None:
    worker = MeasurementWorker(WorkerConfig(), WorkerLimits(recycle_tasks=1))
    hello = worker.start()
    try:
        assert "onnxruntime" in hello.backends and hello.software["torch"] and hello.hardware["cpu_count"] >= 1
        assert type(hello.software["torch"]) is str  # a plain str: unpickling torch's version would import torch
        key = str(HARDCORENAS.searchable_keys(32)[0])
        block: BlockResult = worker.call(BlockTask(ONE, key, FAST))
        assert block.stats.median_ms > 0 and block.stats.samples == 3 and block.backend["backend"] == "onnxruntime"
        # the next task, sent at once, waits for the recycling that is due (a steady stream cannot postpone it)
        nets: NetworksResult = worker.call(NetworkTask(ONE, (parse_arch(PUBLISHED["A"].arch),), 32, FAST, rounds=2))
        assert len(nets.figures) == 1 and len(nets.figures[0].rounds) == 2
        status = worker.status()
        assert worker.recycles >= 1 and worker.restarts == 0 and status.pid != hello.pid and status.answered_ping
    finally:
        worker.stop()
    assert worker.status().state == "stopped"


@pytest.mark.slow
def test_the_server_process_never_imports_torch(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from fastapi.testclient import TestClient
        from latency_server.app import create_app
        from latency_server.config import Settings

        settings = Settings(db="sqlite:///{tmp_path / 'db.sqlite'}", warmup=10, min_repeats=3, budget_s=0.001,
                            log_level="warning", allowed_hosts="testserver")
        with TestClient(create_app(settings)) as client:
            spec = {{"type": "cn", "in_chs": 8, "out_chs": 16, "stride": 1, "resolution": 8, "kernel": 1}}
            assert client.post("/v1/latency/blocks", json={{"blocks": [spec]}}).status_code == 200
            assert client.get("/v1/device").status_code == 200
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm", "onnxruntime", "onnx")))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_an_unreachable_database_makes_health_and_requests_answer_503(tmp_path: Path) -> None:
    # a folder: no database opens there (and Starlette's TestClient sends Host: testserver)
    settings = Settings(db=f"sqlite:///{tmp_path}", log_level="warning", allowed_hosts="testserver")
    service = LatencyService(settings, Store(settings.database_url()))
    with TestClient(create_app(settings, service=service, migrate=False)) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and health.headers["retry-after"]
        body = health.json()
        assert body["database"] == {"reachable": False, "error": "unreachable (OperationalError)"}
        assert body["worker"]["alive"] and body["worker"]["answered_ping"]  # only the database is down
        assert client.get("/v1/device").status_code == 200  # a query that stores nothing needs no database
        lut = client.get("/v1/lut", params={"resolution": 32})
        assert lut.status_code == 503 and int(lut.headers["retry-after"]) >= 1
        assert lut.json()["detail"][0]["type"] == "database_unavailable"
