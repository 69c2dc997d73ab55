"""Figures no client can skew: the drift reference's history holds only the server's own reference rounds, and
stored rows with non-positive or non-finite figures never reach the statistics (refused on write, skipped on
read, even when written straight into the SQLite file)."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from latency_server.store.crud import Store
from latency_server.store.database import make_engine, migrations_dir, upgrade_database
from latency_server.store.measurement_settings import settings_hash
from latency_server.worker.fingerprint import DeviceFingerprint
from latency_server.worker.stats import Stats
from latency_server.worker.timing import Method
from shared.block_key import BlockKey

METHOD = {**Method().to_dict(), "backend": "onnxruntime", "unit": "ms/image"}
REFERENCE = "[[ds_r1_k3_s1_e1_c16]]"
KEY = BlockKey.parse("ds:in16:out16:s1:res8:e1:k3:se0:relu")
FP = DeviceFingerprint("onnxruntime", 1, 1, hardware={"cpu_model": "test"}, software={"torch": "x"})


def _stats(median_ms: float) -> Stats:
    return Stats(median_ms=median_ms, iqr_ms=0.01, p90_ms=median_ms, mean_ms=median_ms, min_ms=median_ms,
                 samples=10, warmup=2)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'figures.db'}"
    upgrade_database(url)
    store = Store(url, method=METHOD)
    store.ensure_fingerprint(FP)
    yield store
    store.close()


def test_a_client_measuring_the_reference_network_adds_nothing_to_its_history(store: Store) -> None:
    store.save_reference_figures(FP.id, REFERENCE, 32, [_stats(1.0), _stats(1.1)], METHOD)
    # a client asks for a verdict on the reference network itself: its row is a network measurement, not a round
    store.save_network(FP.id, REFERENCE, 32, _stats(50.0), METHOD, None)
    assert [value for value, _ in store.reference_history(FP.id, REFERENCE, 32)] == [1.0, 1.1]


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_the_store_refuses_non_positive_or_non_finite_figures(store: Store, bad: float) -> None:
    with pytest.raises(ValueError, match="figure"):
        store.save_block(FP.id, KEY, _stats(bad), METHOD)
    with pytest.raises(ValueError, match="figure"):
        store.save_network(FP.id, "[[ir_r1_k3_s1_e3_c16]]", 32, _stats(bad), METHOD, None)
    with pytest.raises(ValueError, match="figure"):
        store.save_reference_figures(FP.id, REFERENCE, 32, [_stats(1.0), _stats(bad)], METHOD)
    assert store.get_block(FP.id, str(KEY)) is None and store.reference_history(FP.id, REFERENCE, 32) == []


def _insert_rows(path: Path, fp_id: str, medians: list[float]) -> None:
    """Rows written straight into the database file, past the store's checks (``9e999`` is SQLite's infinity)."""
    now = datetime.now(timezone.utc).isoformat()
    digest = settings_hash(METHOD)
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("pragma table_info(network_measurements)")}
        for i, median in enumerate(medians):
            value = "9e999" if median == math.inf else repr(median)
            conn.execute(
                "insert into block_measurements (fingerprint_id, key, block, median_ms, iqr_ms, p90_ms, mean_ms, "
                f"min_ms, samples, warmup, method, settings_hash, measured_at) values (?, ?, '{{}}', {value}, 0.1, "
                f"{value}, {value}, {value}, 10, 2, ?, ?, ?)",
                (fp_id, f"ds:in16:out16:s1:res8:e1:k{3 + 2 * i}:se0:relu", json.dumps(METHOD), digest, now))
            role = ", role" if "role" in columns else ""
            conn.execute(
                "insert into network_measurements (fingerprint_id, arch, resolution, predicted_ms, median_ms, iqr_ms, "
                f"p90_ms, mean_ms, min_ms, samples, warmup, method, settings_hash, measured_at{role}) values "
                f"(?, ?, 32, NULL, {value}, 0.1, {value}, {value}, {value}, 10, 2, ?, ?, ?{', ?' if role else ''})",
                (fp_id, REFERENCE, json.dumps({**METHOD, "role": "reference", "series": f"s{i}"}), digest, now,
                 *(("reference",) if role else ())))
            conn.execute(
                "insert into network_measurements (fingerprint_id, arch, resolution, predicted_ms, median_ms, iqr_ms, "
                f"p90_ms, mean_ms, min_ms, samples, warmup, method, settings_hash, measured_at) values "
                f"(?, ?, 32, NULL, {value}, 0.1, {value}, {value}, {value}, 10, 2, ?, ?, ?)",
                (fp_id, f"[[ir_r1_k3_s1_e{3 + i}_c16]]",
                 json.dumps({**METHOD, "reference_ms": 1.0,
                             "verdict": {"ratio": median / 1.0 if median else 0.0, "sd_ratio": 0.01, "rounds": 3}}),
                 digest, now))


def test_bad_rows_written_into_the_file_never_reach_the_statistics(store: Store, tmp_path: Path) -> None:
    _insert_rows(tmp_path / "figures.db", FP.id, [2.0, 0.0, -3.0, math.inf])
    keys = [f"ds:in16:out16:s1:res8:e1:k{3 + 2 * i}:se0:relu" for i in range(4)]
    assert set(store.get_blocks(FP.id, keys)) == {keys[0]} and store.count_blocks(FP.id, keys) == 1
    assert [value for value, _ in store.reference_history(FP.id, REFERENCE, 32)] == [2.0]
    assert [pairs for pairs in store.network_reference_pairs(FP.id, REFERENCE, 32)] == [[(2.0, 1.0)]]
    assert [(arch, round(log_ratio, 6)) for arch, log_ratio, _ in store.network_ratios(FP.id, REFERENCE, 32)] == [
        ("[[ir_r1_k3_s1_e3_c16]]", round(math.log(2.0), 6))]
    # a bad stored block figure is replaced by the next good measurement of that key
    store.save_block(FP.id, BlockKey.parse(keys[1]), _stats(0.5), METHOD)
    assert store.get_block(FP.id, keys[1]).median_ms == 0.5


def test_upgrade_marks_the_servers_own_reference_rounds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_database(url, "0002_measurement_settings")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("insert into fingerprints values (:fp, '{}', '{}', 'onnxruntime', 1, 1, :now)"),
                     {"fp": FP.id, "now": datetime.now(timezone.utc)})
    engine.dispose()
    _insert_rows(tmp_path / "old.db", FP.id, [2.0])  # one reference round and one client's network row
    with sqlite3.connect(tmp_path / "old.db") as conn:  # and a client's measurement of the reference network
        conn.execute("insert into network_measurements (fingerprint_id, arch, resolution, median_ms, iqr_ms, p90_ms, "
                     "mean_ms, min_ms, samples, warmup, method, settings_hash, measured_at) values (?, ?, 32, 40.0, "
                     "0.1, 40.0, 40.0, 40.0, 10, 2, ?, ?, ?)",
                     (FP.id, REFERENCE, json.dumps(METHOD), settings_hash(METHOD),
                      datetime.now(timezone.utc).isoformat()))
    upgrade_database(url)
    store = Store(url, method=METHOD)
    assert [value for value, _ in store.reference_history(FP.id, REFERENCE, 32)] == [2.0]
    store.close()
    cfg = Config()  # down to 0002 and up again: the marks come back from the rows' recorded methods
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url)
    command.downgrade(cfg, "0002_measurement_settings")
    upgrade_database(url)
    store = Store(url, method=METHOD)
    assert [value for value, _ in store.reference_history(FP.id, REFERENCE, 32)] == [2.0]
    store.close()


def test_the_tables_level_reads_only_checks_of_the_same_table(store: Store) -> None:
    """A check of the table built at reference level 2.0 counts for that table only: one of a rebuilt table (another
    level), a check without figures and a reference round count for nothing."""
    for arch, residual, built in (("[[ir_r1_k3_s1_e3_c16]]", 0.05, 2.0), ("[[ir_r1_k5_s1_e3_c16]]", -0.02, 2.0),
                                  ("[[ir_r1_k3_s1_e6_c16]]", 0.3, 2.5), ("[[ir_r1_k5_s1_e6_c16]]", math.nan, 2.0)):
        store.save_network(FP.id, arch, 32, _stats(1.0), {**METHOD, "table_check": {
            "log_residual": residual, "table_reference_ms": built}}, None)
    store.save_network(FP.id, "[[ds_r1_k5_s1_e1_c16]]", 32, _stats(1.0), {**METHOD, "table_check": None}, None)
    store.save_reference_figures(FP.id, REFERENCE, 32, [_stats(1.0)], METHOD)
    assert store.table_residuals(FP.id, 32, 2.0) == [("[[ir_r1_k5_s1_e3_c16]]", -0.02),
                                                     ("[[ir_r1_k3_s1_e3_c16]]", 0.05)]
    assert store.table_residuals(FP.id, 64, 2.0) == []
