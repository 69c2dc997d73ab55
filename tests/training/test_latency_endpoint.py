"""``nas validate --latency-endpoint`` against a real latency server process (skipped if the server is absent)."""

from __future__ import annotations

import json

import pytest

from nas.cli import main

pytest.importorskip("latency_server.app")

FAST_ENV = {
    "LATENCY_SERVER_WARMUP": "10",
    "LATENCY_SERVER_MIN_REPEATS": "3",
    "LATENCY_SERVER_BUDGET_S": "0.001",
    "LATENCY_SERVER_NETWORK_ROUNDS": "1",
    "LATENCY_SERVER_LOG_LEVEL": "warning",
    "LATENCY_SERVER_CALIBRATION_NETWORKS": "0",
}


def test_validate_measures_latency_on_a_real_server(tmp_path, capsys, heaviest_dir):
    from latency_server.launcher import ServerProcess

    server = ServerProcess(f"sqlite:///{tmp_path / 'lat.db'}", log_path=tmp_path / "server.log", env=FAST_ENV)
    server.start(timeout_s=90.0)
    url = server.url
    try:
        ckpt = str(heaviest_dir / "last.pth.tar")
        argv = [
            "validate",
            "digits",
            "--checkpoint",
            ckpt,
            "--latency-endpoint",
            url,
            "--latency-resolution",
            "32",
            "--json",
        ]
        assert main(argv) == 0
    finally:
        server.stop()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["latency_ms"] > 0 and out["latency_resolution"] == 32
