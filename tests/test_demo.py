"""`nas demo` end to end in a smoke configuration: every stage runs, the report and plots are written, each
network's measured latency is at most its limit (plus the measurement's spread), and the server it started is
gone afterwards."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nas.cli import main


def test_demo_smoke_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main([
        "demo", "--out", str(out), "--heaviest-epochs", "1", "--supernet-epochs", "1", "--finetune-epochs", "1",
        "--steps-per-epoch", "2", "--bcfw-steps", "3", "--no-progress",
        "--server-env", "LATENCY_SERVER_BUDGET_S=0.002", "--server-env", "LATENCY_SERVER_MIN_REPEATS=5",
        "--server-env", "LATENCY_SERVER_CALIBRATION_NETWORKS=4",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    for stage in range(1, 8):
        assert f"[{stage}/7]" in printed
    for name in ("results.md", "results.csv", "accuracy_vs_latency.png", "predicted_vs_measured.png",
                 "search_trajectories.png", "lut.json"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 3
    limits = [float(r["limit_ms"]) for r in rows]
    assert limits == sorted(limits) and len(set(limits)) == 3
    for row in rows:  # the search's measured guarantee: median <= T + the measurement's spread
        assert float(row["measured_ms"]) <= float(row["limit_ms"]) + float(row["measured_spread_ms"])
        assert 0.0 <= float(row["top1"]) <= 100.0
        assert row["arch"].startswith("[['ds_r1_k3_s1_e1_c16_nre']")
    assert "stopping the latency server" in printed


def test_demo_rejects_bad_server_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--server-env", "BUDGET=1"]) == 2
    assert "LATENCY_SERVER_NAME=VALUE" in capsys.readouterr().err
