"""``nas fleet status`` against two live servers and a dead URL: a row each, the dead one unreachable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.cli import main
from nas.latency.local_server import free_port
from shared.published import PUBLISHED

pytestmark = pytest.mark.slow  # two real server processes


def test_fleet_status_rows_for_live_and_dead_servers(live_server, tmp_path: Path, capsys) -> None:
    # two devices: each server its own database and device lock (one lock would make the second read-only)
    first = live_server(f"sqlite:///{tmp_path / 'a.db'}", LATENCY_SERVER_DEVICE_LOCK=str(tmp_path / "a.lock"))
    second = live_server(f"sqlite:///{tmp_path / 'b.db'}", LATENCY_SERVER_DEVICE_LOCK=str(tmp_path / "b.lock"))
    dead = f"http://127.0.0.1:{free_port()}"
    with first.client() as client:
        net = client.post("/v1/latency/network", json={"arch": PUBLISHED["A"].arch, "resolution": 32})
        assert net.status_code == 200, net.text
    capsys.readouterr()

    assert main(["fleet", "status", first.url, second.url, dead, "--json", "--timeout", "10"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["url"] for r in rows] == [first.url, second.url, dead]
    live, other, down = rows
    for row in (live, other):
        assert row["reachable"] and row["healthy"] and row["health"] == "ok" and not row["read_only"]
        assert row["device"]["cpu_count"] >= 1 and row["software"]["onnxruntime"]
        assert row["queue"]["capacity"] > 0 and row["tables"] == []
    assert live["last_verdict"]["upper_ms"] == pytest.approx(net.json()["verdict"]["upper_ms"])
    assert PUBLISHED["A"].arch not in json.dumps(live)  # the fleet view carries no client's network
    assert other["last_verdict"] is None
    assert not down["reachable"] and not down["healthy"] and "unreachable" in down["error"]

    # the terminal table: a row per server, the dead one says so; all healthy exits 0
    assert main(["fleet", "status", first.url, dead]) == 1
    out = capsys.readouterr().out
    assert first.url in out and dead in out and "unreachable" in out
    assert main(["fleet", "status", first.url, second.url]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "unreachable" not in out
