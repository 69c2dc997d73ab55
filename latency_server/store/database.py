"""Database engine and sessions (SQLite in WAL mode, any SQLAlchemy URL) and Alembic upgrades."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["make_engine", "make_sessionmaker", "migrations_dir", "redact", "redacted_url", "session_scope",
           "upgrade_database"]

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their directory created, WAL mode and a busy timeout."""
    parsed = make_url(url)
    kwargs: dict = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrations_dir() -> Path:
    """The Alembic script location: the ``migrations`` folder that belongs to the ``latency_server`` imported.

    An installed wheel has it as the package ``latency_server.migrations`` inside ``latency_server``. A source
    checkout has the top-level ``migrations/`` folder beside ``latency_server/``: run without installing
    (``PYTHONPATH`` at the repository root) there is no such package, and with an editable install of another
    checkout the package points at that checkout's folder; both use the folder beside the package imported.
    """
    package_dir = Path(__file__).resolve().parent
    try:
        import latency_server.migrations as package
    except ModuleNotFoundError:
        return package_dir.parent / "migrations"
    installed = Path(package.__file__).resolve().parent
    if installed.parent == package_dir or not (package_dir.parent / "migrations" / "env.py").is_file():
        return installed
    return package_dir.parent / "migrations"


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations to ``url`` (no alembic.ini needed in the working directory), one upgrader at a
    time (:func:`~latency_server.store.migration_lock.migration_lock`)."""
    from alembic import command
    from alembic.config import Config

    from latency_server.store.migration_lock import migration_lock

    make_engine(url).dispose()  # creates the SQLite directory
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with migration_lock(url):
        command.upgrade(cfg, revision)
    log.info("database %s is at revision %s", make_url(url).render_as_string(hide_password=True), revision)


def redacted_url(url: str) -> str:
    """``url`` with its password masked, for logs and errors (a URL that does not parse loses its credentials)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unparsable URL is shown without what may be credentials
        return re.sub(r"//[^/]*@", "//***@", url)


def redact(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with ``url``'s password masked."""
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - an unparsable URL: mask what may be its credentials wherever they appear
        match = re.search(r"//([^/]*)@", url)
        password = match.group(1) if match else None
    return text.replace(str(password), "***") if password else text
