"""The generated references in docs/ (CLI from the parsers, REST from the OpenAPI schema) are current."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_generated_docs_are_current() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_references_cover_every_command_and_endpoint() -> None:
    cli = (ROOT / "docs" / "cli.md").read_text()
    for command in ("nas search", "nas lut", "nas train-heaviest", "nas train-supernet", "nas finetune",
                    "nas validate", "nas export", "nas demo", "latency-server serve", "latency-server db upgrade"):
        assert f"`{command}`" in cli, command
    rest = (ROOT / "docs" / "rest.md").read_text()
    for endpoint in ("GET /healthz", "GET /v1/device", "POST /v1/latency/blocks", "GET /v1/lut",
                     "GET /v1/jobs/{job_id}", "POST /v1/latency/network"):
        assert endpoint in rest, endpoint


def test_benchmarks_page_follows_the_result_files(tmp_path: Path) -> None:
    """docs/benchmarks.md is rendered from bench/results/: a new result file changes it (so --check sees it stale)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_docs
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    before = gen_docs.benchmarks_reference()
    assert before == (ROOT / "docs" / "benchmarks.md").read_text()
    results = tmp_path / "results"
    (results / "guarantee_holds").mkdir(parents=True)
    doc = {"bench": "guarantee_holds", "command": "python bench/guarantee_holds.py", "commit": "abc1234",
           "date": "2030-01-01T00:00:00Z", "machine": {"cpu_model": "x", "cores": 2}, "state": {"label": "quiet"},
           "figures": {"resolution": 224, "median_budget_used": 0.9}}
    (results / "guarantee_holds" / "2030-01-01T000000Z_abc1234.json").write_text(json.dumps(doc))
    page = gen_docs.benchmarks_reference(results)
    assert page != before
    assert '<a id="guarantee_holds"></a>' in page and "abc1234" in page and "2030-01-01 00:00 UTC" in page
