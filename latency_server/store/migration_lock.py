"""One Alembic upgrade at a time per database: servers starting together on a new database would otherwise race
their revisions (both add the same column; one fails).

SQLite takes an exclusive ``flock`` on a file beside the database (``<file>.migrate.lock``, released by the kernel
however the process ends); PostgreSQL a session-level advisory lock (``pg_advisory_lock``) held on a connection of
its own for the whole upgrade. Other databases and in-memory SQLite run unlocked.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

__all__ = ["ADVISORY_KEY", "migration_lock"]

log = logging.getLogger(__name__)

#: the advisory lock key of the latency store's migrations (any fixed 64-bit number; this is "LATNCYMG")
ADVISORY_KEY = 0x4C41544E43594D47


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the server migrating now
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("select pg_advisory_lock(:key)"), {"key": ADVISORY_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("select pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                conn.commit()
    finally:
        engine.dispose()


@contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """Hold the database's migration lock (waiting for another holder) for the ``with`` block."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        database = Path(parsed.database).expanduser()
        with _file_lock(database.with_name(database.name + ".migrate.lock")):
            yield
    elif backend == "postgresql":
        with _advisory_lock(url):
            yield
    else:
        yield
