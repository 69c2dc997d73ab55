"""`nas demo` end to end in a smoke configuration: every stage runs, the report, results.json and plots are
written, each network keeps its limit in the table, is ranked among random networks of its latency band and its
measurement's verdict is reported, and the server it started is gone afterwards. (Whether a network measures
under its limit depends on the machine's load, and its percentile on training that a smoke run barely does, so
both are reported, not asserted.)"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from pathlib import Path

import pytest

from nas.cli import main
from nas.demo.fleet import _over_budget, fleet_estimate_s, fleet_json, fleet_lines, fleet_search, verdict_summary
from nas.demo.report import verdict
from nas.demo.state import DemoConfig, DemoRun
from nas.evaluation.band_sampling import BAND
from nas.latency.client import LatencyClient
from nas.latency.local_server import LocalServer, ServerStartError


@pytest.mark.slow
def test_demo_smoke_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main([
        "demo", "--out", str(out), "--heaviest-epochs", "1", "--supernet-epochs", "1", "--finetune-epochs", "1",
        "--steps-per-epoch", "2", "--bcfw-steps", "3", "--random-networks", "3", "--spread-networks", "6",
        "--fleet-bcfw-steps", "3",
        "--no-progress",
        "--server-env", "LATENCY_SERVER_BUDGET_S=0.002", "--server-env", "LATENCY_SERVER_MIN_REPEATS=5",
        "--server-env", "LATENCY_SERVER_CALIBRATION_NETWORKS=4",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    for stage in range(1, 12):
        assert f"[{stage}/11]" in printed
    for name in ("results.md", "results.csv", "results.json", "versus_random.json", "accuracy_vs_latency.png",
                 "predicted_vs_measured.png", "search_trajectories.png", "lut.json"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 3
    limits = [float(r["limit_ms"]) for r in rows]
    assert limits == sorted(limits) and len(set(limits)) == 3
    # the limits start above what the device can guarantee now: the lightest network's verified bound
    floor = float(re.search(r"the lightest network's verified bound now: ([0-9.]+) ms", printed).group(1))
    assert limits[0] > floor
    for i, row in enumerate(rows):
        assert float(row["table_ms"]) <= float(row["limit_ms"])  # the table guarantee
        assert row["arch"].startswith("[['ds_r1_k3_s1_e1_c16_nre']")
        result = json.loads((out / f"search-{i}" / "result.json").read_text())
        # the table reports the very figures the search accepted the network on, and its bound is under the limit
        assert float(row["verified_central_ms"]) == result["measured_latency_ms"]
        assert float(row["verified_upper_ms"]) == result["upper_latency_ms"]
        # met exactly when the bound is under the limit (whether it is depends on the machine's load)
        assert (result["upper_latency_ms"] <= result["latency_limit_ms"]) == result["guarantee"]["met"]
        assert float(row["raw_median_ms"]) == result["raw_median_ms"]
        assert float(row["remeasured_upper_ms"]) >= float(row["remeasured_central_ms"]) > 0
        figures = {**{k: float(row[k]) for k in ("limit_ms", "verified_upper_ms", "confidence")},
                   "guarantee_reason": row["guarantee_reason"],
                   "guarantee_confidence": float(row["guarantee_confidence"]) if row["guarantee_confidence"] else None}
        assert f"bound {figures['verified_upper_ms']:.3f} ms [{verdict(figures)}]" in printed
        assert f"| {verdict(figures)} |" in (out / "results.md").read_text()  # said in the table too
        assert row["guarantee_met"] == str(result["guarantee"]["met"])
        result = json.loads((out / f"search-{i}" / "result.json").read_text())
        assert result["arch"] == row["arch"] and "met" in result["guarantee"]
    summary = json.loads((out / "results.json").read_text())
    assert summary["data"] == "digits" and "Metropolis" in summary["random_sampling"]
    assert set(summary["stage_seconds"]) >= {"latency_table", "heaviest", "supernet", "search", "versus_random",
                                             "finetune", "measure", "baselines"}
    searches = summary["searches"]
    assert [s["latency_limit_ms"] for s in searches] == limits
    for s, row in zip(searches, rows, strict=True):
        assert s["measured_latency_ms"] == float(row["verified_central_ms"]) and s["top1"] == float(row["top1"])
        assert s["upper_latency_ms"] == float(row["verified_upper_ms"])
        assert 0.0 <= s["percentile_vs_random"] <= 100.0 and s["random_networks"] == 3
        assert s["spearman_random"] is None or -1.0 <= s["spearman_random"] <= 1.0
        assert 0.0 <= s["child_top1"] <= 100.0
        # the band under the latency the search could use: the returned attempt's internal limit (T, or lower
        # where the device's verdict tightened the search)
        search_result = json.loads((out / f"search-{searches.index(s)}" / "result.json").read_text())
        (returned,) = [a for a in search_result["attempts"] if a["returned"]]
        low, high = s["band_ms"]
        assert s["usable_limit_ms"] == pytest.approx(returned["internal_limit_ms"])
        assert s["usable_limit_ms"] <= s["latency_limit_ms"]
        # U's band, or where it holds too few networks the lowest above it that does: U raised in steps of half the
        # band's width, capped at T (where the verdict tightened the search is the machine's load)
        steps = math.log(high / s["usable_limit_ms"]) / math.log(1 + BAND / 2)
        assert high == pytest.approx(s["latency_limit_ms"]) or abs(steps - round(steps)) < 1e-6
        assert s["usable_limit_ms"] <= high * (1 + 1e-9) and high <= s["latency_limit_ms"] * (1 + 1e-9)
        assert low == pytest.approx(0.95 * high) and float(s["table_latency_ms"]) <= high
    versus = json.loads((out / "versus_random.json").read_text())
    for limit in versus["limits"]:
        assert len(limit["random"]) == 3
        assert all(limit["band_ms"][0] <= r["table_latency_ms"] <= limit["band_ms"][1] for r in limit["random"])
    assert len(versus["spread"]) == 6  # over the table's range, for the correlation
    assert {"spearman_random", "spearman_bands"} <= set(versus)
    fleet = summary["fleet"]  # one network for two targets: ONNX Runtime and torch-cpu on the demo's server
    assert [t["backend"] for t in fleet["targets"]] == ["onnxruntime", "torch-cpu"]
    fleet_result = json.loads((out / "fleet" / "result.json").read_text())
    assert fleet["arch"] == fleet_result["arch"] and fleet["guarantee_met"] == fleet_result["guarantee"]["met"]
    for t in fleet["targets"]:
        assert t["expected_latency_ms"] <= t["latency_limit_ms"]  # the table guarantee, on both targets
        assert 0 < t["measured_latency_ms"] <= t["upper_latency_ms"]  # both verdicts taken
    assert fleet["table_seconds"] > 0 and fleet["search_seconds"] > 0 and -1.0 <= fleet["mean_spearman_of_tables"] <= 1
    assert "fleet" in summary["stage_seconds"]
    # the published networks on the demo's server, measured before the fleet step (the cheaper step first)
    published = summary["published"]
    assert sorted(m["name"] for m in published["models"]) == sorted(DemoConfig().baselines)
    assert all(0 < m["central_ms"] <= m["upper_ms"] for m in published["models"]) and published["resolution"] == 32
    assert list(summary["stage_seconds"]).index("baselines") < list(summary["stage_seconds"]).index("fleet")
    md = (out / "results.md").read_text()
    assert "## Published networks on this device" in md and "| hardcorenas_a |" in md
    assert "## One network for two targets" in md
    assert md.count("percentile of the searched network among them") == 3 and "Spearman" in md and "Stage times" in md
    assert "stopping the latency server" in printed


def test_demo_rejects_bad_server_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--server-env", "BUDGET=1"]) == 2
    assert "LATENCY_SERVER_NAME=VALUE" in capsys.readouterr().err


def test_the_fleet_line_says_which_target_refused_the_network() -> None:
    targets = [{"backend": "onnxruntime", "upper_latency_ms": 1.2811, "latency_limit_ms": 2.5929, "accepted": True},
               {"backend": "torch-cpu", "upper_latency_ms": 18.7436, "latency_limit_ms": 15.9185, "accepted": False}]
    assert verdict_summary(targets) == ("onnxruntime: bound 1.281 <= 2.593 ms; "
                                        "torch-cpu: bound 18.744 over 15.918 ms (not accepted)")


def test_the_fleet_step_runs_only_where_its_estimate_fits_the_time_budget() -> None:
    # the estimate: a table as long as the first and one search (its BCFW share scaled by the step counts)
    assert fleet_estimate_s({"latency_table": 20.0, "search": 90.0}, 3, 60, 60) == pytest.approx(50.0)
    assert fleet_estimate_s({"latency_table": 20.0, "search": 90.0}, 3, 60, 30) == pytest.approx(41.0)
    run = DemoRun(DemoConfig(time_budget_s=100.0), server=None)  # type: ignore[arg-type]
    run.stage_seconds = {"latency_table": 20.0, "search": 90.0}
    run.started = time.monotonic() - 40.0  # 40 + 50 fits in 100
    assert _over_budget(run) is None
    run.started = time.monotonic() - 60.0  # 60 + 50 does not
    reason = fleet_search(run)  # returns before touching the server (there is none)
    assert reason.startswith("skipped: the demo had used 1.0 of its 1.67 minutes") and "--time-budget 0" in reason
    assert fleet_json(run) == {"skipped": reason}
    assert fleet_lines(run)[-1] == f"The fleet step was {reason}."
    run.cfg.time_budget_s = None  # no budget: it always runs
    assert _over_budget(run) is None


def test_demo_rejects_a_negative_time_budget_and_too_few_spread_networks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--time-budget", "-1"]) == 2
    assert "--time-budget" in capsys.readouterr().err
    for bad in ("-1", "5"):
        assert main(["demo", "--spread-networks", bad]) == 2
        assert "--spread-networks must be 0 or at least 6" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_server_runs_through_its_command_line_and_stops_with_its_group(tmp_path: Path) -> None:
    env = {"LATENCY_SERVER_LOG_LEVEL": "warning"}
    with LocalServer(f"sqlite:///{tmp_path / 'demo.db'}", log_path=tmp_path / "server.log", env=env) as server:
        assert server.running
        with LatencyClient(server.url) as client:
            assert client.health().status == "ok"
    assert not server.running
    broken = LocalServer("nosuchdriver://nowhere", log_path=tmp_path / "broken.log", env=env)
    with pytest.raises(ServerStartError, match="exited at start"):
        broken.start(timeout_s=120)
    assert not broken.running
