"""The FastAPI application factory: routes, error handlers, and the service's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from latency_server.api.fast_lut import FastLutMiddleware
from latency_server.api.routes import device, health, jobs, latency, lut
from latency_server.api.service_errors import install_service_error_handlers
from latency_server.config import Settings
from latency_server.db import upgrade_database
from latency_server.service import LatencyService
from latency_server.store import Store
from latency_server.validate import InputError

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _loc_text(loc: Any) -> str:
    return ".".join(str(part) for part in loc)


def _error(status: int, items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": items}, status_code=status)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    items = []
    for err in exc.errors():
        loc = [part if isinstance(part, int) else str(part) for part in err.get("loc", ())]
        where = _loc_text([p for p in loc if p not in ("body", "query", "path")]) or _loc_text(loc) or "request"
        items.append({"loc": loc, "msg": f"{where}: {err.get('msg', 'invalid')}", "type": str(err.get("type"))})
    return _error(422, items)


async def _input_error(_: Request, exc: InputError) -> JSONResponse:
    return _error(422, [{"loc": list(exc.loc), "msg": exc.msg, "type": "value_error"}])


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def create_app(settings: Settings | None = None, *, service: LatencyService | None = None, migrate: bool = True):
    """The latency server app. ``settings`` default to the environment; migrations run at start-up."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = service
        if svc is None:
            url = settings.database_url()
            if migrate:
                upgrade_database(url)
            svc = LatencyService(settings, Store(url))
        await run_in_threadpool(svc.start)  # the measurement worker's process says hello
        app.state.service = svc
        log.info("latency server ready: backends %s, database %s", svc.available, settings.database_url())
        try:
            yield
        finally:
            await run_in_threadpool(svc.stop)

    app = FastAPI(
        title="HardCoRe-NAS latency server",
        summary="Measures, caches and serves block, table and whole-network latencies of this device.",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InputError, _input_error)
    install_service_error_handlers(app)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(FastLutMiddleware)
    for module in (health, device, latency, lut, jobs):
        app.include_router(module.router)
    return app
