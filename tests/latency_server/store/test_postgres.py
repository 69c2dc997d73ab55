"""The latency store on a real PostgreSQL server: migrations, a table build, a restart, two servers on one database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from latency_server.store.database import make_engine, upgrade_database
from shared.search_space import HARDCORENAS
from tests.live import wait_table

from .test_migrations import check_upgraded, insert_0001_rows

RES = 32


def test_migrations_on_postgresql_keep_0001_rows(postgres_url: str) -> None:
    upgrade_database(postgres_url, "0001")
    engine = make_engine(postgres_url)
    insert_0001_rows(engine)
    upgrade_database(postgres_url)
    upgrade_database(postgres_url)  # idempotent
    assert {"fingerprints", "block_measurements", "lut_tables", "network_measurements"} <= set(
        inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0003_measurement_role"
    engine.dispose()
    check_upgraded(postgres_url)


def test_concurrent_upgrades_on_postgresql_take_turns(postgres_url: str) -> None:
    """Upgraders starting together on a new database wait on the advisory lock; all succeed."""
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: upgrade_database(postgres_url), range(3)))
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0003_measurement_role"
    engine.dispose()


@pytest.mark.slow
def test_table_build_restart_and_two_servers_on_postgresql(live_server, postgres_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    total = len(HARDCORENAS.all_keys(RES))
    # a full table build, then a restart that serves it with zero new measurements
    first = live_server(postgres_url)
    with first.client() as client:
        table = wait_table(client, RES)
    assert first.measurements() == total and len(table["entries"]) == 120
    first.stop()
    restarted = live_server(postgres_url)
    with restarted.client() as client:
        assert client.get("/v1/lut", params={"resolution": RES}).json() == table
    assert restarted.measurements() == 0
    restarted.stop()

    # two servers (two devices of one kind: their own locks) build another table on one database at once
    # (other settings: a table of its own on the same database; no calibration, which the first build had)
    other_db = {"LATENCY_SERVER_BUDGET_S": "0.003", "LATENCY_SERVER_CALIBRATION_NETWORKS": "0",
                "LATENCY_SERVER_DRIFT_REFERENCE": "false"}
    servers = [live_server(postgres_url, LATENCY_SERVER_DEVICE_LOCK=str(tmp_path / f"device{i}.lock"), **other_db)
               for i in range(2)]

    def build(server) -> dict:  # noqa: ANN001
        with server.client() as client:
            return wait_table(client, RES)

    with ThreadPoolExecutor(2) as pool:
        tables = list(pool.map(build, servers))
    assert tables[0]["entries"] == tables[1]["entries"] and tables[0]["fixed"] == tables[1]["fixed"]
    assert sum(server.measurements() for server in servers) >= total  # each entry measured, some twice at most
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        per_settings = conn.execute(text("select settings_hash, count(*), count(distinct key) from "
                                         "block_measurements group by settings_hash")).all()
    engine.dispose()
    assert sorted((count, distinct) for _, count, distinct in per_settings) == [(total, total), (total, total)]
    # and a second server on the same device reads the database but does not measure
    reader = live_server(postgres_url, LATENCY_SERVER_DEVICE_LOCK=str(tmp_path / "device0.lock"), **other_db)
    with reader.client() as client:
        assert client.get("/healthz").json()["read_only"] is True
        assert client.get("/v1/lut", params={"resolution": RES}).json()["entries"] == tables[0]["entries"]
