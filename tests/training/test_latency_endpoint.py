"""``nas validate --latency-endpoint`` against a real latency server process (skipped if the server is absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_validate_measures_latency_on_a_real_server(tmp_path, capsys, heaviest_dir):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    cmd = [
        str(Path(sys.executable).parent / "latency-server"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        f"sqlite:///{tmp_path / 'lat.db'}",
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, **FAST_ENV}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "latency server did not start"
            time.sleep(0.2)
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
        proc.terminate()
        proc.wait(15)
        log.close()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["latency_ms"] > 0 and out["latency_resolution"] == 32
