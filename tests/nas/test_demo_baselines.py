"""The demo's baselines step: its estimate and time budget (skipped before it starts, stopped before a model that no
longer fits), its results.md table, JSON and plot marks from made-up figures, and one live run of two small timm
models at 32 px."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nas.demo.baselines import baselines_estimate_s, baselines_json, baselines_lines, measure_baselines
from nas.demo.plots import _accuracy_vs_latency, short_name
from nas.demo.state import DemoConfig, DemoRun
from nas.latency.compare import PUBLISHED_BASELINES, Measured
from tests.live import start_server


def _measured(name: str, central: float, seconds: float = 1.0) -> Measured:
    return Measured(name=name, kind="timm", source=name, searched=False, central_ms=central,
                    upper_ms=central * 1.1, confidence=0.95, raw_median_ms=central, parameters=5_400_000,
                    macs=12_300_000, fingerprint="f", seconds=seconds)


def _run(tmp_path: Path, **cfg: Any) -> DemoRun:
    run = DemoRun(DemoConfig(out_dir=tmp_path, **cfg), server=SimpleNamespace(url="http://127.0.0.1:9"))  # type: ignore[arg-type]
    run.rows = [{}, {}, {}]  # three searched networks measured in the measure stage
    run.stage_seconds = {"measure": 30.0}
    return run


def test_the_demo_measures_every_published_network() -> None:
    assert sorted(DemoConfig().baselines) == sorted(PUBLISHED_BASELINES)


def test_the_estimate_scales_the_measure_stage() -> None:
    assert baselines_estimate_s({"measure": 30.0}, 3, 8) == pytest.approx(8 * 10.0 * 1.5)
    assert baselines_estimate_s({}, 3, 2) == pytest.approx(2 * 10.0 * 1.5)  # no measure stage: 10 s a verdict


def test_the_step_is_skipped_when_not_even_one_model_fits(tmp_path: Path) -> None:
    run = _run(tmp_path, time_budget_s=600.0)
    run.started = time.monotonic() - 590.0  # 10 s left, one model estimated at 15 s
    note = measure_baselines(run)  # returns before touching the server (there is none)
    assert note.startswith("skipped: the demo had used 9.8 of its 10.00 minutes") and "--time-budget 0" in note
    summary = baselines_json(run)
    assert summary["models"] == [] and summary["not_measured"] == list(DemoConfig().baselines)
    assert baselines_lines(run)[-1] == f"The published networks were {note}."


def test_the_step_stops_before_a_model_that_no_longer_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path, time_budget_s=600.0, baselines=("hardcorenas_a", "hardcorenas_b", "hardcorenas_c"))
    run.started = time.monotonic() - 450.0  # 150 s left; the estimate (3 x 15 s) fits

    def fake_measure(client: Any, entry: Any, settings: Any) -> Measured:
        run.started -= 100.0  # as if the verdict took 100 s
        return _measured(entry.source, 1.0, seconds=100.0)

    monkeypatch.setattr("nas.latency.compare.measure_entry", fake_measure)
    summary = measure_baselines(run)
    # the first fits (15 s estimated, 150 left); after it the slowest so far (100 s) does not fit in the 50 s left
    assert [m.name for m in run.baselines["models"]] == ["hardcorenas_a"]
    assert run.baselines["not_measured"] == ["hardcorenas_b", "hardcorenas_c"]
    assert "stopped before hardcorenas_b, hardcorenas_c" in summary
    lines = baselines_lines(run)
    assert "| hardcorenas_a | 1.000 | 1.100 | 5.40 | 12.3 |" in lines
    assert lines[-1].startswith("The published networks were stopped before hardcorenas_b")


def test_a_refused_model_ends_the_step_not_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.latency.client import LatencyServerError

    run = _run(tmp_path, time_budget_s=None, baselines=("hardcorenas_a", "no_such_model", "hardcorenas_c"))

    def fake_measure(client: Any, entry: Any, settings: Any) -> Measured:
        if entry.source == "no_such_model":
            raise LatencyServerError("answered 422:\ntimm: 'no_such_model' is not a timm model", status_code=422)
        return _measured(entry.source, 1.0)

    monkeypatch.setattr("nas.latency.compare.measure_entry", fake_measure)
    summary = measure_baselines(run)
    assert [m.name for m in run.baselines["models"]] == ["hardcorenas_a"]
    assert run.baselines["not_measured"] == ["no_such_model", "hardcorenas_c"]
    assert "stopped at no_such_model: answered 422: timm: 'no_such_model' is not a timm model" in summary


def test_the_table_json_and_plot_marks(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run.baselines = {"skipped": None, "not_measured": [],
                     "models": [_measured("mobilenetv3_large_100", 2.5), _measured("hardcorenas_a", 1.4)]}
    summary = baselines_json(run)
    assert [m["name"] for m in summary["models"]] == ["hardcorenas_a", "mobilenetv3_large_100"]  # fastest first
    assert summary["resolution"] == 32 and summary["note"] is None
    json.dumps(summary)  # results.json takes it as it is
    lines = baselines_lines(run)
    assert lines[1] == "## Published networks on this device"
    assert lines.index("| hardcorenas_a | 1.400 | 1.540 | 5.40 | 12.3 |") < lines.index(
        "| mobilenetv3_large_100 | 2.500 | 2.750 | 5.40 | 12.3 |")
    assert [short_name(n) for n in ("hardcorenas_f", "mobilenetv3_small_100", "mobilenetv3_large_100", "x")] == \
        ["HC-F", "MNv3-S", "MNv3-L", "x"]
    import matplotlib

    matplotlib.use("Agg")
    table = [{"table_ms": 1.0, "top1": 90.0, "limit_ms": 1.2}, {"table_ms": 1.5, "top1": 93.0, "limit_ms": 1.8}]
    _accuracy_vs_latency(run, table)
    assert (tmp_path / "accuracy_vs_latency.png").read_bytes()[:4] == b"\x89PNG"


def test_the_published_networks_on_a_live_server(tmp_path: Path) -> None:
    server = start_server(f"sqlite:///{tmp_path / 'latency.db'}", tmp_path / "server.log",
                          LATENCY_SERVER_DEVICE_LOCK=str(tmp_path / "device.lock"))
    try:
        run = DemoRun(DemoConfig(out_dir=tmp_path, baselines=("mobilenetv3_small_050", "hardcorenas_a"),
                                 time_budget_s=None), server)
        summary = measure_baselines(run)
    finally:
        server.stop()
    models = baselines_json(run)["models"]
    assert sorted(m["name"] for m in models) == ["hardcorenas_a", "mobilenetv3_small_050"]
    assert [m["central_ms"] for m in models] == sorted(m["central_ms"] for m in models)
    for m in models:
        assert 0 < m["central_ms"] <= m["upper_ms"] and m["parameters"] > 0 and m["macs"] > 0
        assert m["name"] in summary
    rows = [line for line in baselines_lines(run) if line.startswith("| hardcorenas_a") or
            line.startswith("| mobilenetv3_small_050")]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == [m["name"] for m in models]
