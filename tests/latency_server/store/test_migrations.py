"""Revision 0002: a database holding 0001-era figures upgrades without losing any, each keyed by its settings."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from latency_server.store.crud import Store
from latency_server.store.database import make_engine, migrations_dir, upgrade_database
from latency_server.store.measurement_settings import settings_hash
from latency_server.worker.timing import Method

PRODUCTION = {**Method().to_dict(), "backend": "onnxruntime", "exporter": "torchscript", "unit": "ms/image"}
TESTING = {**PRODUCTION, "min_repeats": 3, "budget_s": 0.001}
KEYS = ["cn:in8:out16:s1:res8:e1:k1:se0:relu", "ds:in16:out16:s1:res8:e1:k3:se0:relu"]


def _stats() -> dict:
    return {"median_ms": 1.0, "iqr_ms": 0.1, "p90_ms": 1.2, "mean_ms": 1.0, "min_ms": 0.9, "samples": 30,
            "warmup": 10, "measured_at": datetime.now(timezone.utc)}


def insert_0001_rows(engine: Engine) -> None:
    """What a 0001 database held: one fingerprint, blocks of a production and a test method, a table, a network."""
    with engine.begin() as conn:
        conn.execute(text("insert into fingerprints values ('fp1', '{}', '{}', 'onnxruntime', 1, 1, :now)"),
                     {"now": datetime.now(timezone.utc)})
        rows = [(KEYS[0], PRODUCTION), (KEYS[1], PRODUCTION), (KEYS[0], TESTING)]
        for i, (key, method) in enumerate(rows):
            if i == 2:  # 0001 allowed one row per (fingerprint, key): the test figure sat under another fingerprint
                conn.execute(text("insert into fingerprints values ('fp2', '{}', '{}', 'onnxruntime', 1, 1, :now)"),
                             {"now": datetime.now(timezone.utc)})
            conn.execute(text(
                "insert into block_measurements (fingerprint_id, key, block, median_ms, iqr_ms, p90_ms, mean_ms, "
                "min_ms, samples, warmup, method, measured_at) values (:fp, :key, '{}', :median_ms, :iqr_ms, "
                ":p90_ms, :mean_ms, :min_ms, :samples, :warmup, :method, :measured_at)"),
                {"fp": "fp1" if i < 2 else "fp2", "key": key, "method": json.dumps(method), **_stats()})
        conn.execute(text("insert into lut_tables (fingerprint_id, space, resolution, total, meta, created_at) "
                          "values ('fp1', 'hardcorenas', 32, 124, :meta, :now)"),
                     {"meta": json.dumps({"reference": {"median_ms": 0.5}}), "now": datetime.now(timezone.utc)})
        conn.execute(text(
            "insert into network_measurements (fingerprint_id, arch, resolution, predicted_ms, median_ms, iqr_ms, "
            "p90_ms, mean_ms, min_ms, samples, warmup, method, measured_at) values ('fp1', '[[]]', 32, NULL, "
            ":median_ms, :iqr_ms, :p90_ms, :mean_ms, :min_ms, :samples, :warmup, :method, :measured_at)"),
            {"method": json.dumps(PRODUCTION), **_stats()})


def check_upgraded(url: str) -> None:
    """Every 0001 row is still there, keyed by the settings it recorded, and served to a store of those settings."""
    engine = make_engine(url)
    with engine.connect() as conn:
        blocks = conn.execute(text("select fingerprint_id, key, settings_hash from block_measurements "
                                   "order by id")).all()
        tables = conn.execute(text("select settings_hash, meta from lut_tables")).all()
        networks = conn.execute(text("select settings_hash from network_measurements")).all()
    engine.dispose()
    production, testing = settings_hash(PRODUCTION), settings_hash(TESTING)
    assert production != testing
    assert [tuple(row) for row in blocks] == [("fp1", KEYS[0], production), ("fp1", KEYS[1], production),
                                             ("fp2", KEYS[0], testing)]
    assert [row[0] for row in tables] == [production] and [row[0] for row in networks] == [production]
    store = Store(url, method=Method().to_dict())
    assert set(store.get_blocks("fp1", KEYS)) == set(KEYS) and store.get_blocks("fp2", KEYS) == {}
    assert store.get_table("fp1", "hardcorenas", 32).meta == {"reference": {"median_ms": 0.5}}
    store.close()
    testing_store = Store(url, method=TESTING)
    assert set(testing_store.get_blocks("fp2", KEYS)) == {KEYS[0]} and testing_store.get_blocks("fp1", KEYS) == {}
    testing_store.close()


def test_upgrade_keeps_0001_rows_and_keys_them_by_their_settings(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_database(url, "0001")
    engine = make_engine(url)
    insert_0001_rows(engine)
    engine.dispose()
    upgrade_database(url)
    check_upgraded(url)
    # and back to 0001 (one figure per fingerprint and key holds again), then forward once more
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url)
    command.downgrade(cfg, "0001")
    upgrade_database(url)
    check_upgraded(url)
