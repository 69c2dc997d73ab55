"""Migrations, the store and device fingerprints (real SQLite files)."""

from __future__ import annotations

import math
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect

from latency_server.cli import main
from latency_server.store.crud import Store
from latency_server.store.database import make_engine, migrations_dir, upgrade_database
from latency_server.verdicts.bound import ratio_drift
from latency_server.worker.fingerprint import fingerprint_for
from latency_server.worker.timing import Method, Stats
from shared.search_space import HARDCORENAS
from tests.latency_server.conftest import BIN

STATS = Stats(median_ms=1.0, iqr_ms=0.1, p90_ms=1.2, mean_ms=1.05, min_ms=0.9, samples=30, warmup=10)
METHOD = Method().to_dict()


def test_migrations_create_the_schema_idempotently(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'a.db'}"
    upgrade_database(url)
    upgrade_database(url)
    tables = set(inspect(make_engine(url)).get_table_names())
    assert {"fingerprints", "block_measurements", "lut_tables", "network_measurements", "alembic_version"} <= tables
    with sqlite3.connect(tmp_path / "sub" / "a.db") as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert conn.execute("select version_num from alembic_version").fetchone()[0] == "0003_measurement_role"
    assert (migrations_dir() / "env.py").exists() and (migrations_dir() / "versions" / "0001_initial.py").exists()


def test_store_round_trip_and_first_writer_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade_database(url)
    store, other = Store(url, method=METHOD), Store(url, method=METHOD)
    fp = fingerprint_for("onnxruntime", 1, 1)
    fp_id = store.ensure_fingerprint(fp)
    assert other.ensure_fingerprint(fp) == fp_id
    key = HARDCORENAS.searchable_keys(32)[0]
    store.save_block(fp_id, key, STATS, {**METHOD, "who": "first"})
    kept = other.save_block(fp_id, key, STATS, {**METHOD, "who": "second"})
    assert kept.method["who"] == "first"
    row = other.get_block(fp_id, str(key))
    assert row.median_ms == 1.0 and row.block == key.to_dict() and row.measured_at is not None
    assert store.count_blocks(fp_id, [str(key), "missing"]) == 1
    # another fingerprint sees nothing
    fp2 = store.ensure_fingerprint(fingerprint_for("onnxruntime", 2, 1))
    assert store.get_blocks(fp2, [str(key)]) == {}
    table = store.ensure_table(fp_id, "hardcorenas", 32, 124)
    assert other.ensure_table(fp_id, "hardcorenas", 32, 124).id == table.id
    store.update_table_meta(table.id, {"reference_ms": 1.5})
    store.mark_table_complete(table.id)
    again = other.get_table(fp_id, "hardcorenas", 32)
    assert again.meta == {"reference_ms": 1.5} and again.completed_at is not None
    net = store.save_network(fp_id, "[['cn_r1_k1_s1_c16']]", 32, STATS, METHOD, None)
    assert net.id is not None


def test_fingerprint_is_stable_and_covers_settings() -> None:
    a = fingerprint_for("onnxruntime", 1, 1, onnx_exporter="torchscript")
    assert a.id == fingerprint_for("onnxruntime", 1, 1, onnx_exporter="torchscript").id
    ids = {
        a.id,
        fingerprint_for("onnxruntime", 2, 1, onnx_exporter="torchscript").id,
        fingerprint_for("onnxruntime", 1, 8, onnx_exporter="torchscript").id,
        fingerprint_for("torch-cpu", 1, 1).id,
        fingerprint_for("onnxruntime", 1, 1, onnx_exporter="dynamo").id,
    }
    assert len(ids) == 5
    hashed = a.hashed_fields()
    assert {"cpu_model", "cpu_count", "gpu_model", "gpu_driver"} == set(hashed["hardware"])
    assert {"torch", "onnxruntime"} <= set(hashed["software"])


def test_cli_db_upgrade(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db = tmp_path / "cli.db"
    assert main(["db", "upgrade", "--db", f"sqlite:///{db}"]) == 0
    assert "latest revision" in capsys.readouterr().out and db.exists()
    assert main(["db", "upgrade", "--db", "nope://x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bad database URL") and "\n" not in err


def test_cli_serve_bad_setting_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([str(BIN / "latency-server"), "serve", "--port", "99999"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: bad setting port")
    assert "Traceback" not in proc.stderr


def test_migrations_render_for_postgresql(capsys) -> None:  # noqa: ANN001
    """No SQLite-only SQL: the same revisions emit PostgreSQL DDL (offline mode, no server needed)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", "postgresql://user@localhost/latency")
    command.upgrade(cfg, "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE block_measurements" in sql and "JSON" in sql and "TIMESTAMP WITH TIME ZONE" in sql


def test_network_ratios_feed_the_ratio_drift_from_repeated_networks(tmp_path: Path) -> None:
    """Each verdict kept with a network measurement gives its log ratio and estimation variance; the reference's
    own figures, measurements without a verdict and those with other settings are left out, and a network measured
    twice shows its drift."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade_database(url)
    store = Store(url, method=METHOD)
    fp_id = store.ensure_fingerprint(fingerprint_for("onnxruntime", 1, 1))
    reference, big, small = "[['ref']]", "[['big']]", "[['small']]"
    for arch, ratio in [(big, 3.0), (big, 3.6), (small, 1.2), (small, 1.2), (big, 3.3)]:
        verdict = {"ratio": ratio, "sd_ratio": 0.02, "rounds": 4}
        store.save_network(fp_id, arch, 32, STATS, {**METHOD, "verdict": verdict}, None)
    store.save_network(fp_id, small, 32, STATS, {**METHOD, "verdict": None}, None)
    store.save_network(fp_id, small, 224, STATS, {**METHOD, "verdict": {"ratio": 9.0, "sd_ratio": 0.1, "rounds": 4}},
                       None)
    # a figure taken with other measurement settings (the test time scale) is not this configuration's
    store.save_network(fp_id, small, 32, STATS, {**METHOD, "time_scale": 0.01,
                                                 "verdict": {"ratio": 9.0, "sd_ratio": 0.1, "rounds": 4}}, None)
    store.save_reference_figures(fp_id, reference, 32, [STATS, STATS], METHOD)
    found = store.network_ratios(fp_id, reference, 32)
    assert sorted((arch, round(math.exp(r), 6)) for arch, r, _ in found) == [
        (big, 3.0), (big, 3.3), (big, 3.6), (small, 1.2), (small, 1.2)]
    assert all(noise == 0.02**2 / 4 for *_, noise in found)
    drift = ratio_drift(found)
    assert drift.df == 3 and drift.usable
    # the big network's ratios moved by about 9 % (log sd), the small one's not at all: pooled over 3 df
    big_between = float(np.var(np.log([3.0, 3.3, 3.6]), ddof=1))
    assert drift.var == pytest.approx((2 * (big_between - 0.0001) + 1 * (0.0 - 0.0001)) / 3)
