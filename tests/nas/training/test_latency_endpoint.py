"""``nas validate --latency-endpoint`` against a real latency server process (skipped if the server is absent)."""

from __future__ import annotations

import json

import pytest

from nas.cli import main

pytestmark = pytest.mark.slow  # a real server process and a training run

pytest.importorskip("latency_server.app")


def test_validate_measures_latency_on_a_real_server(live_server, capsys, heaviest_dir):
    # one round and no whole-network fit: this test is about the validate command, not the table
    server = live_server(LATENCY_SERVER_NETWORK_ROUNDS="1", LATENCY_SERVER_CALIBRATION_NETWORKS="0")
    ckpt = str(heaviest_dir / "last.pth.tar")
    argv = ["validate", "digits", "--checkpoint", ckpt, "--latency-endpoint", server.url, "--latency-resolution", "32",
            "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["latency_ms"] > 0 and out["latency_resolution"] == 32
