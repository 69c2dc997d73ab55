"""The generated references in docs/ (CLI from the parsers, REST from the OpenAPI schema) are current."""

from __future__ import annotations

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
