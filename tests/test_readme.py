"""Every command in the README is exercised: curl lines against a real server, CLI lines through the parsers.

What the CLI lines then do is covered by the end-to-end tests (server, search, training) and by `make demo`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.latency.local_server import LocalServer
from tests.live import start_server

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# set-up and packaging commands: run by CI (`make test`), by `make demo`, or need what this machine lacks (docker)
NOT_PARSED = ("make ", "python3 -m venv", ".venv/bin/pip", "docker ", "python bench/")


def readme_commands() -> list[str]:
    """The command lines of the README's ```bash blocks (comments stripped)."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(re.split(r"\s+#\s", line)[0].strip())
    return lines


def test_readme_has_the_two_setup_commands() -> None:
    commands = readme_commands()
    assert "make demo" in commands and "make test" in commands


@pytest.mark.parametrize(
    "line",
    [c for c in readme_commands() if c.split()[0] in ("nas", "latency-server", "torchrun")],
)
def test_cli_lines_parse(line: str) -> None:
    argv = shlex.split(line)
    if argv[0] == "torchrun":
        argv = ["nas", *argv[argv.index("nas") + 1 :]]
    if argv[0] == "nas":
        from nas.cli import build_parser
    else:
        from latency_server.cli import build_parser
    args = build_parser().parse_args(argv[1:])
    assert getattr(args, "func", None) is not None, line


def test_every_command_is_known() -> None:
    known = ("nas", "latency-server", "torchrun", "curl")
    for line in readme_commands():
        assert line.split()[0] in known or line.startswith(NOT_PARSED), f"untested README command: {line}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    tmp = tmp_path_factory.mktemp("readme")
    proc = start_server(f"sqlite:///{tmp / 'readme.db'}", tmp / "server.log")  # no token: the README's curl has none
    yield proc
    proc.stop()
    assert not proc.running


@pytest.mark.slow
@pytest.mark.parametrize("line", [c for c in readme_commands() if c.startswith("curl ")])
def test_curl_lines_answer(line: str, server: LocalServer, tmp_path: Path) -> None:
    argv = [a.replace("http://127.0.0.1:8000", server.url) for a in shlex.split(line)]
    argv.insert(1, "--write-out")
    argv.insert(2, "\n%{http_code}")
    if "file=@child.onnx" in argv:  # the upload names the file `nas export --onnx child.onnx` writes
        _export_child_onnx(tmp_path / "child.onnx")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True, cwd=tmp_path).stdout
    body, _, status = out.rpartition("\n")
    assert status in ("200", "202"), (line, status, body[-500:])
    if "-i" not in argv:
        json.loads(body)


def _export_child_onnx(path: Path, resolution: int = 32) -> None:
    """A searched-size network as ONNX: the published A at a small resolution."""
    import torch

    from shared.builders import build_network
    from shared.published import PUBLISHED

    net = build_network(PUBLISHED["A"].arch, num_classes=10).eval()
    torch.onnx.export(net, (torch.randn(1, 3, resolution, resolution),), str(path), dynamo=False, opset_version=18,
                      input_names=["input"], output_names=["logits"])


BENCH_SCRIPTS = sorted(set(re.findall(r"python (bench/\w+\.py)", README)))


def test_readme_names_the_benchmarks() -> None:
    assert {"bench/latency_accuracy.py", "bench/bench_server.py", "bench/bench_oracle.py"} <= set(BENCH_SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCH_SCRIPTS)
def test_benchmark_scripts_start(script: str) -> None:
    """The benchmarks the README quotes exist and parse their options (their figures are measured by hand)."""
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr[-1000:]


# -- the README as a user guide: short, no run diaries, its figures and links pointing at real pages --------------

LINKS = re.findall(r"\]\(([^)\s]+)\)", README)
DEMO_PLOTS = ("docs/images/accuracy_vs_latency.png", "docs/images/predicted_vs_measured.png",
              "docs/images/search_trajectories.png")


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 300


def test_readme_has_no_commit_hashes_or_times() -> None:
    hashes = [w for w in re.findall(r"\b[0-9a-f]{7,40}\b", README) if re.search(r"\d", w) and re.search(r"[a-f]", w)]
    assert not hashes, hashes
    assert not re.search(r"\d\d:\d\d UTC", README)
    assert not re.search(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d", README)


def test_readme_shows_the_demo_plots() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert set(DEMO_PLOTS) <= set(images)


def test_readme_figure_links_point_into_benchmarks() -> None:
    """Every headline figure links to an anchor that docs/benchmarks.md (generated) really has."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    anchors = [link.split("#", 1)[1] for link in LINKS if link.startswith("docs/benchmarks.md#")]
    assert len(anchors) >= 5
    for anchor in anchors:
        assert f'<a id="{anchor}"></a>' in page, anchor


def test_readme_relative_links_exist() -> None:
    """Relative link targets exist (the demo plots are produced from a real demo run and committed beside it)."""
    for link in LINKS:
        if re.match(r"[a-z]+://", link) or link.startswith("#"):
            continue
        assert (ROOT / link.split("#", 1)[0]).exists(), link
