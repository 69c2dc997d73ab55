"""How the service's own errors and database faults are answered: status, ``Retry-After``, a JSON message.

Registered on the app by :func:`install_service_error_handlers`. Every answer has the shape
``{"detail": [{"loc", "msg", "type"}]}``. The messages of :class:`~latency_server.errors.ServiceError` name what
failed and the limit or reason, never an exception's text; database faults (locked, unreachable) answer 503
with ``Retry-After`` and are logged with their traceback.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from latency_server.api.metrics import refused
from latency_server.errors import DatabaseUnavailable, RequestAbandoned, ServiceError

__all__ = ["install_service_error_handlers"]

log = logging.getLogger(__name__)

#: seconds a client should wait before retrying after a database fault
DATABASE_RETRY_AFTER_S = 5


def _answer(status: int, loc: tuple[str | int, ...], msg: str, error_type: str,
            retry_after_s: float | None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))} if retry_after_s else None
    return JSONResponse({"detail": [{"loc": list(loc), "msg": msg, "type": error_type}]}, status_code=status,
                        headers=headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    refused(request, exc.error_type, exc.status_code)  # 4xx only: over budget, queue full, a recent failure
    if exc.status_code >= 500:
        level = logging.INFO if isinstance(exc, RequestAbandoned) else logging.WARNING
        log.log(level, "%s %s -> %d: %s", request.method, request.url.path, exc.status_code, exc.msg)
    return _answer(exc.status_code, exc.loc, exc.msg, exc.error_type, exc.retry_after_s)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database fault on %s %s", request.method, request.url.path, exc_info=exc)
    return await _service_error(request, DatabaseUnavailable("the database is locked or unreachable; retry later",
                                                             retry_after_s=DATABASE_RETRY_AFTER_S))


def install_service_error_handlers(app: FastAPI) -> None:
    """Answer the service's errors and database faults as described above."""
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
