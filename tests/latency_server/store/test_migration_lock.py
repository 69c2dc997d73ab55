"""Servers starting together on one new database: their Alembic upgrades run one after the other, and all come up."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from sqlalchemy import inspect

from latency_server.store.database import make_engine, upgrade_database

STARTERS = 3
TRIES = 4


def _upgrade(url: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    barrier.wait(timeout=60)
    try:
        upgrade_database(url)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_concurrent_upgrades_on_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(TRIES):
        url = f"sqlite:///{tmp_path / f'race{attempt}.db'}"
        barrier, results = ctx.Barrier(STARTERS), ctx.Queue()
        procs = [ctx.Process(target=_upgrade, args=(url, barrier, results)) for _ in range(STARTERS)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert outcomes == ["ok"] * STARTERS, f"attempt {attempt}: {outcomes}"
        engine = make_engine(url)
        assert "settings_hash" in {c["name"] for c in inspect(engine).get_columns("block_measurements")}
        engine.dispose()
