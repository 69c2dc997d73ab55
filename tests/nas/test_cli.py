"""Console scripts exist and answer --help; `nas show` prints the published networks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.parametrize("script", ["nas", "latency-server"])
def test_help(script: str) -> None:
    out = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage:" in out


def test_show_prints_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli import main

    assert main(["show"]) == 0
    out = capsys.readouterr().out
    assert out.count("M parameters") == 6 and "HardCoRe-NAS F" in out


def test_show_bad_arch_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli import main

    assert main(["show", "--arch", "[['ir_r1_k5']]"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad --arch") and "Traceback" not in err
