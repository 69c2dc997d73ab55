"""``nas compare``: its arguments without a server (each mistake one line, exit 2, before any measurement), the
table's order and JSON from made-up figures, and one live run on a real server at 32 px (a small arch string of the
search space beside a small timm model): the table sorted by latency, the JSON's fields and the plot written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.cli import main
from nas.latency.compare import (
    PUBLISHED_BASELINES,
    Measured,
    Settings,
    comparison_json,
    format_table,
    search_entries,
    sort_by_latency,
)
from nas.latency.local_server import LocalServer
from shared.arch_string import format_arch
from shared.search_space import HARDCORENAS
from tests.live import start_server

LIGHTEST = format_arch(HARDCORENAS.arch_from_choice(HARDCORENAS.lightest()))
NOWHERE = "http://127.0.0.1:9"  # nothing listens on the discard port


def _row(name: str, central: float, upper: float, *, searched: bool = False) -> Measured:
    return Measured(name=name, kind="arch" if searched else "timm", source=name, searched=searched,
                    central_ms=central, upper_ms=upper, confidence=0.95, raw_median_ms=central,
                    parameters=2_500_000, macs=60_000_000, fingerprint="f")


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(["compare", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_argument_mistakes_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "nothing to compare" in _error(capsys, ["--latency-endpoint", NOWHERE])
    assert "expected an http(s) URL" in _error(capsys, ["--latency-endpoint", "localhost:8000", "--timm", "x"])
    assert "--onnx nope.onnx: no such file" in _error(capsys, ["--latency-endpoint", NOWHERE, "--onnx", "nope.onnx"])
    missing = tmp_path / "search-0"
    assert f"--search-result {missing}: cannot read" in _error(
        capsys, ["--latency-endpoint", NOWHERE, "--search-result", str(missing)])
    (tmp_path / "other.json").write_text('{"limit": 1}')
    assert "has no 'arch'" in _error(capsys, ["--latency-endpoint", NOWHERE, "--search-result",
                                               str(tmp_path / "other.json")])
    assert "--resolution must be at least 32" in _error(capsys, ["--latency-endpoint", NOWHERE, "--timm", "x",
                                                                 "--resolution", "16"])
    assert ".png" in _error(capsys, ["--latency-endpoint", NOWHERE, "--timm", "x", "--plot", "out.svg"])
    assert "two networks named x" in _error(capsys, ["--latency-endpoint", NOWHERE, "--arch", f"x={LIGHTEST}",
                                                     "--arch", f"x={LIGHTEST}"])
    # a server that is not there: said before anything is measured
    assert "cannot reach the latency server" in _error(capsys, ["--latency-endpoint", NOWHERE, "--timm", "x"])


def test_search_results_are_read_from_a_folder_or_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "search-1"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps({"arch": LIGHTEST, "space": "hardcorenas",
                                                    "latency_limit_ms": 1.5}))
    by_folder, by_file = search_entries([folder, folder / "result.json"])
    assert by_folder == by_file
    assert (by_folder.name, by_folder.kind, by_folder.searched, by_folder.latency_limit_ms) == \
        ("search-1", "arch", True, 1.5)


def test_published_shorthand_and_repeated_names_are_measured_once() -> None:
    from nas.cli import build_parser
    from nas.commands.compare import entries_of

    args = build_parser().parse_args(["compare", "--latency-endpoint", NOWHERE, "--timm", "hardcorenas_a",
                                      "--baselines", "published", "--arch", LIGHTEST])
    entries = entries_of(args)
    assert [e.name for e in entries] == [*PUBLISHED_BASELINES, "arch-1"]
    assert [e.searched for e in entries] == [False] * len(PUBLISHED_BASELINES) + [True]
    assert len(PUBLISHED_BASELINES) == 8 and PUBLISHED_BASELINES[0] == "hardcorenas_a"


def test_table_and_json_are_sorted_by_latency() -> None:
    rows = [_row("mobilenetv3_large_100", 3.0, 3.4), _row("search-0", 1.2, 1.5, searched=True),
            _row("hardcorenas_a", 2.0, 2.2)]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["name", "central", "(ms)", "bound", "(ms)", "params", "MACs"]
    assert [line.split()[0] for line in lines[2:]] == ["*", "hardcorenas_a", "mobilenetv3_large_100"]
    assert "search-0" in lines[2] and "1.200" in lines[2] and "1.500" in lines[2] and "2.50 M" in lines[2]
    out = comparison_json(rows, Settings(resolution=32), "http://x")
    assert [n["name"] for n in out["networks"]] == ["search-0", "hardcorenas_a", "mobilenetv3_large_100"]
    assert out["resolution"] == 32 and out["backend"] == "onnxruntime" and out["threads"] == 1
    assert sort_by_latency(rows)[0].searched


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    tmp = tmp_path_factory.mktemp("compare-server")
    live = start_server(f"sqlite:///{tmp / 'latency.db'}", tmp / "server.log",
                        LATENCY_SERVER_DEVICE_LOCK=str(tmp / "device.lock"))
    yield live
    live.stop()


def test_compare_on_a_live_server(server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "search-0"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps({"arch": LIGHTEST, "space": "hardcorenas",
                                                    "latency_limit_ms": 9.0}))
    out_json, plot = tmp_path / "compare.json", tmp_path / "compare.png"
    code = main(["compare", "--latency-endpoint", server.url, "--resolution", "32", "--search-result", str(folder),
                 "--timm", "mobilenetv3_small_050", "--json", str(out_json), "--plot", str(plot)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = json.loads(out_json.read_text())
    assert summary["resolution"] == 32 and summary["backend"] == "onnxruntime" and summary["threads"] == 1
    networks = summary["networks"]
    assert sorted(n["name"] for n in networks) == ["mobilenetv3_small_050", "search-0"]
    centrals = [n["central_ms"] for n in networks]
    assert centrals == sorted(centrals)  # fastest first
    for n in networks:
        assert 0 < n["central_ms"] <= n["upper_ms"] and n["parameters"] > 0 and n["macs"] > 0
        assert n["confidence"] == 0.95 and n["fingerprint"]
    (searched,) = [n for n in networks if n["searched"]]
    assert searched["kind"] == "arch" and searched["source"] == LIGHTEST and searched["latency_limit_ms"] == 9.0
    # the printed table lists them in the JSON's order
    table = [line for line in printed.splitlines() if "search-0" in line or "mobilenetv3_small_050" in line]
    assert [("search-0" if "search-0" in line else "mobilenetv3_small_050") for line in table] == \
        [n["name"] for n in networks]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_timm_name_gets_the_servers_close_matches(server: LocalServer,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, ["--latency-endpoint", server.url, "--resolution", "32", "--timm", "mobilenetv3_smal_050"])
    assert "422" in err and "close matches: " in err and "mobilenetv3_small_050" in err
