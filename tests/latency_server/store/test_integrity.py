"""Integrity: one measuring server per device, figures keyed by their measurement settings, corrections that know
what they were fitted on, and no open server without a token (real servers, real SQLite files)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from latency_server.admission.device_lock import DeviceGuard
from latency_server.cli import _check_exposure
from latency_server.config import Settings
from latency_server.store.measurement_settings import calibration_settings
from shared.api_schemas import MeasureSettings
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS
from tests.latency_server.conftest import BIN
from tests.live import wait_table

BLOCK = {"type": "ir", "in_chs": 16, "out_chs": 24, "stride": 2, "resolution": 16, "exp_ratio": 3, "kernel": 3,
         "se_ratio": 0.25, "act": "relu"}
OTHER = {**BLOCK, "kernel": 5}


def test_the_device_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    first, second = DeviceGuard(tmp_path / "dev.lock", "serving on a:1"), DeviceGuard(tmp_path / "dev.lock")
    assert first.acquire() and not first.read_only
    assert not second.acquire() and second.read_only
    assert f"pid {os.getpid()} serving on a:1" in second.reason and str(tmp_path / "dev.lock") in second.reason
    first.release()
    fresh = DeviceGuard(tmp_path / "dev.lock")
    assert fresh.acquire() and not fresh.read_only
    fresh.release()


@pytest.mark.slow  # real servers building calibrated tables
def test_a_second_server_on_the_device_serves_read_only(live_server) -> None:  # noqa: ANN001
    first = live_server()
    with first.client() as client:
        assert client.post("/v1/latency/blocks", json={"blocks": [BLOCK]}).json()["results"][0]["cached"] is False
    second = live_server()  # same device lock file: the first server holds it
    with second.client() as client:
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["read_only"] is True and "read-only" in health["read_only_reason"]
        assert client.get("/v1/stats").json()["read_only"] is True
        stored = client.post("/v1/latency/blocks", json={"blocks": [BLOCK]})
        assert stored.status_code == 200 and stored.json()["results"][0]["cached"] is True
        for resp in (client.post("/v1/latency/blocks", json={"blocks": [BLOCK, OTHER]}),
                     client.post("/v1/latency/network", json={"arch": PUBLISHED["A"].arch, "resolution": 32}),
                     client.get("/v1/lut", params={"resolution": 32})):
            assert resp.status_code == 503, resp.text
            assert resp.json()["detail"][0]["msg"].startswith("read-only: another latency server measures")
        bad = client.post("/v1/latency/blocks", json={"blocks": [{**BLOCK, "kernel": 4}]})
        assert bad.status_code == 422  # bad input is still answered as such
    assert second.measurements() == 0
    with first.client() as client:
        assert client.get("/healthz").json()["read_only"] is False
        assert client.post("/v1/latency/blocks", json={"blocks": [OTHER]}).json()["results"][0]["cached"] is False


@pytest.mark.slow  # real servers building calibrated tables
def test_figures_measured_with_other_settings_are_never_served(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    db = tmp_path / "shared.db"
    test_settings = {"LATENCY_SERVER_TIME_SCALE": "3", "LATENCY_SERVER_MIN_REPEATS": "4"}

    def post(server) -> dict:  # noqa: ANN001
        with server.client() as client:
            return client.post("/v1/latency/blocks", json={"blocks": [BLOCK]}).json()["results"][0]

    hooked = live_server(f"sqlite:///{db}", **test_settings)
    measured_with_hook = post(hooked)
    hooked.stop()
    production = live_server(f"sqlite:///{db}")
    first = post(production)
    assert first["cached"] is False and first["key"] == measured_with_hook["key"]  # measured again, not served
    assert post(production)["cached"] is True
    production.stop()
    again = live_server(f"sqlite:///{db}", **test_settings)
    served = post(again)
    assert served["cached"] is True and served["stats"] == measured_with_hook["stats"]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select settings_hash, json_extract(method, '$.time_scale') from block_measurements "
                            "where key = ?", (first["key"],)).fetchall()
    assert len(rows) == 2 and len({h for h, _ in rows}) == 2 and sorted(t for _, t in rows) == [1.0, 3.0]


@pytest.mark.slow  # real servers building calibrated tables
def test_a_correction_records_its_fit_and_is_refit_when_its_entries_change(
    make_client: Callable[..., TestClient], tmp_path: Path,
) -> None:
    client = make_client(calibration_networks=2, calibration_rounds=1)
    table = wait_table(client, 32)
    fitted_on = table["correction"]["fitted_on"]
    service = client.app.state.service
    assert fitted_on["entries"] == {**table["fixed"], **table["entries"]}
    assert fitted_on["settings_hash"] == service.store.settings_hash
    assert fitted_on["calibration"] == calibration_settings(service.settings)

    # an entry re-measured (here: changed in the database) leaves the correction unused until it is refit
    key = next(iter(table["entries"]))
    with sqlite3.connect(tmp_path / "latency.db") as conn:
        conn.execute("update block_measurements set median_ms = median_ms * 1.5 where key = ?", (key,))
    view = service.tables.view(MeasureSettings(), HARDCORENAS, 32)
    assert view.correction is None and view.medians[key] == pytest.approx(1.5 * table["entries"][key])
    other = make_client(calibration_networks=2, calibration_rounds=1, device_lock=str(tmp_path / "other.lock"))
    assert other.get("/v1/lut", params={"resolution": 32}).status_code == 202  # refit, not served stale
    refit = wait_table(other, 32)
    assert refit["correction"]["fitted_on"]["entries"][key] == pytest.approx(1.5 * table["entries"][key])
    assert other.get("/v1/stats").json()["block_measurements"] == 0  # only the calibration ran again

    # so are other calibration settings
    third = make_client(calibration_networks=2, calibration_rounds=1, calibration_seed=1,
                        device_lock=str(tmp_path / "third.lock"))
    assert third.get("/v1/lut", params={"resolution": 32}).status_code == 202


def test_serve_refuses_a_non_loopback_address_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LATENCY_SERVER_TOKEN",
                                                            "LATENCY_SERVER_ALLOW_UNAUTHENTICATED")}
    proc = subprocess.run([str(BIN / "latency-server"), "serve", "--host", "0.0.0.0", "--port", "1",
                           "--db", f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode == 2 and "refusing to serve 0.0.0.0 without a token" in proc.stderr
    assert "--allow-unauthenticated" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.db").exists()  # refused before touching anything
    for host in ("127.0.0.1", "::1", "localhost"):
        _check_exposure(Settings(host=host))
    _check_exposure(Settings(host="0.0.0.0", token="t"))
    _check_exposure(Settings(host="0.0.0.0", allow_unauthenticated=True))
    for host in ("0.0.0.0", "::", "10.0.0.7", "myhost"):
        with pytest.raises(SystemExit):
            _check_exposure(Settings(host=host))
