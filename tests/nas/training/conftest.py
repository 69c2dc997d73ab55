"""Fixtures of the training tests: a heaviest network and a supernet trained briefly on the digits data."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.cli import main

from ._helpers import FAST, run_dir


@pytest.fixture(scope="session")
def heaviest_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("heaviest")
    assert main(["train-heaviest", "digits", *FAST, "--output", str(out)]) == 0
    return run_dir(out)


@pytest.fixture(scope="session")
def supernet_dir(tmp_path_factory, heaviest_dir) -> Path:
    out = tmp_path_factory.mktemp("supernet")
    teacher = str(heaviest_dir / "last.pth.tar")
    assert main(["train-supernet", "digits", *FAST, "--teacher", teacher, "--output", str(out)]) == 0
    return run_dir(out)
