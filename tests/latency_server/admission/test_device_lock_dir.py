"""The device lock lives in a configurable directory (default: beside the SQLite database), owner-only, and a lock
file another user planted there (or a link) is refused rather than trusted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fastapi import FastAPI

from latency_server.admission.device_lock import DeviceGuard, install_device_lock
from latency_server.config import Settings


def _guard(**settings: object) -> DeviceGuard:
    return install_device_lock(FastAPI(), Settings(device_lock="", **settings))


def test_the_lock_goes_into_the_configured_directory_owner_only(tmp_path: Path) -> None:
    guard = _guard(lock_dir=str(tmp_path / "locks"), data_dir=tmp_path / "data")
    assert guard.path.parent == tmp_path / "locks"
    assert guard.acquire()
    try:
        assert stat.S_IMODE((tmp_path / "locks").stat().st_mode) == 0o700
        assert stat.S_IMODE(guard.path.stat().st_mode) == 0o600
    finally:
        guard.release()


def test_by_default_the_lock_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    assert _guard(data_dir=tmp_path / "data").path.parent == tmp_path / "data"
    assert _guard(db=f"sqlite:///{tmp_path / 'elsewhere' / 'x.db'}").path.parent == tmp_path / "elsewhere"


def test_the_explicit_lock_file_still_wins(tmp_path: Path) -> None:
    guard = install_device_lock(FastAPI(), Settings(device_lock=str(tmp_path / "my.lock"), lock_dir=str(tmp_path)))
    assert guard.path == tmp_path / "my.lock"


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a file owned by another user needs root")
def test_a_lock_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "device.lock"
    planted.write_text("pid 1 squatting")
    os.chown(planted, 65534, 65534)
    with pytest.raises(PermissionError, match="owned by another user"):
        DeviceGuard(planted).acquire()


def test_a_lock_path_that_is_a_link_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    (tmp_path / "device.lock").symlink_to(victim)
    with pytest.raises(OSError):
        DeviceGuard(tmp_path / "device.lock").acquire()
    assert victim.read_text() == "keep me"
