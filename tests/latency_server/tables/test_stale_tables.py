"""A table whose fingerprint no longer matches (here: a server started with another OMP setting) is stale: served
only when asked with ``allow_stale=true``, marked so, and rebuilt on the next build request."""

from __future__ import annotations

import pytest

from tests.live import wait_table

RES = 32


@pytest.mark.slow  # two real servers, one table build each
def test_a_changed_omp_setting_makes_the_table_stale_and_a_build_request_rebuilds_it(live_server) -> None:  # noqa: ANN001
    first = live_server()
    with first.client() as client:
        table = wait_table(client, RES)
    first.stop()
    changed = live_server(OMP_WAIT_POLICY="PASSIVE")
    with changed.client() as client:
        device = client.get("/v1/device").json()
        assert device["software"]["thread_env"]["OMP_WAIT_POLICY"] == "PASSIVE"
        assert device["fingerprint"] != table["fingerprint"]
        stale = client.get("/v1/lut", params={"resolution": RES, "allow_stale": "true"})
        assert stale.status_code == 200, stale.text
        body = stale.json()
        assert body["stale"] is True and body["fingerprint"] == table["fingerprint"]
        assert body["entries"] == table["entries"]
        assert changed.measurements() == 0
        rebuilt = client.get("/v1/lut", params={"resolution": RES})
        assert rebuilt.status_code == 202  # the next build request rebuilds under the new fingerprint
        fresh = wait_table(client, RES)
        assert fresh["fingerprint"] == device["fingerprint"] and fresh.get("stale") is False
    assert changed.measurements() > 0
