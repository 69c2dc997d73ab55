"""The ``latency-server`` command line (sub-commands: ``serve``, ``db upgrade``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]

log = logging.getLogger("latency_server")


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (env LATENCY_SERVER_DB; default sqlite:///<data-dir>/latency.db; "
                        "PostgreSQL: postgresql+psycopg://user:password@host:5432/database, or "
                        "postgresql+psycopg://user@/database?host=/run/postgresql over a Unix socket)")
    parser.add_argument("--data-dir", help="directory of the default SQLite file (env LATENCY_SERVER_DATA_DIR)")
    parser.add_argument("--log-level", help="debug, info, warning (env LATENCY_SERVER_LOG_LEVEL; default info)")


def build_parser() -> argparse.ArgumentParser:
    """The ``latency-server`` parser."""
    parser = argparse.ArgumentParser(
        prog="latency-server",
        description="Measure, cache and serve block, table and whole-network latencies of this device over REST. "
        "Every option can also be set as a LATENCY_SERVER_* environment variable.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="apply migrations and serve the REST API (OpenAPI at /docs)")
    serve.add_argument("--host", help="bind address (env LATENCY_SERVER_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env LATENCY_SERVER_PORT; default 8000)")
    serve.add_argument("--allow-unauthenticated", action="store_true", default=None,
                       help="serve a non-loopback address without a token, so that anyone who reaches it may "
                       "measure (env LATENCY_SERVER_ALLOW_UNAUTHENTICATED); without it, such a server needs "
                       "LATENCY_SERVER_TOKEN")
    _add_db(serve)
    serve.set_defaults(func=_serve)

    db = commands.add_parser("db", help="database commands")
    db_commands = db.add_subparsers(dest="db_command", metavar="DB_COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply the Alembic migrations")
    _add_db(upgrade)
    upgrade.set_defaults(func=_db_upgrade)
    db.set_defaults(func=lambda args: (db.print_help(), 0)[1])
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from latency_server.config import Settings

    overrides = {
        name: getattr(args, name)
        for name in ("host", "port", "db", "data_dir", "log_level", "allow_unauthenticated")
        if getattr(args, name, None) is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SystemExit(f"error: bad setting {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _upgrade(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from latency_server.store.database import redact, redacted_url, upgrade_database

    try:
        make_url(url)
        upgrade_database(url)
    except ArgumentError as exc:
        raise SystemExit(redact(f"error: bad database URL {redacted_url(url)!r}: {exc}", url)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise SystemExit(redact(f"error: cannot migrate database {redacted_url(url)!r}: {str(exc).splitlines()[0]}",
                                url)) from None


def _db_upgrade(args: argparse.Namespace) -> int:
    from latency_server.store.database import redacted_url

    settings = _settings(args)
    _logging(settings.log_level)
    _upgrade(settings.database_url())
    print(f"database {redacted_url(settings.database_url())} is at the latest revision")
    return 0


def _check_exposure(settings: Any) -> None:
    """Refuse to serve a non-loopback address without a token unless that is explicitly allowed."""
    from latency_server.api.exposure import exposure_problem

    problem = exposure_problem(settings)
    if problem is not None:
        raise SystemExit(f"error: {problem}")


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _check_exposure(settings)
    # thread count for OpenMP/MKL before torch is imported (torch and ORT get it explicitly as well)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(settings.default_threads))
    _logging(settings.log_level)
    _upgrade(settings.database_url())

    from latency_server.app import create_app
    from latency_server.serving import serve
    from latency_server.store.database import redacted_url

    app = create_app(settings, migrate=False)
    log.info("serving on http://%s:%d (database %s)", settings.host, settings.port,
             redacted_url(settings.database_url()))
    serve(app, settings)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latency-server`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
