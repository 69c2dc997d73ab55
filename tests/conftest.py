"""Shared test fixtures."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _device_lock_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Latency servers started by the tests lock a device file of this test session, not the machine's own
    (which a server in real use, or another test session, may hold); fixtures that run two servers at once
    give each its own."""
    os.environ.setdefault("LATENCY_SERVER_DEVICE_LOCK", str(tmp_path_factory.mktemp("device") / "device.lock"))


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
