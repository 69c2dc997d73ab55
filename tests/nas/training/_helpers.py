"""Helpers shared by the training tests."""

from __future__ import annotations

import csv
from pathlib import Path

FAST = [
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "-b",
    "16",
    "-vb",
    "180",
    "--no-progress",
    "--warmup-epochs",
    "0",
    "--threads",
    "1",
]


def run_dir(base: Path) -> Path:
    (only,) = [p for p in base.iterdir() if p.is_dir()]
    return only


def summary(d: Path) -> list[dict[str, str]]:
    with open(d / "summary.csv") as f:
        return list(csv.DictReader(f))
