"""The FastAPI application factory: routes, error handlers, and the service's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from latency_server.admission.device_lock import install_device_lock
from latency_server.api.body_limit import BodyLimitMiddleware
from latency_server.api.browser_safety import BROWSER_RULES, BrowserSafetyMiddleware
from latency_server.api.client_identity import ClientIdentityMiddleware
from latency_server.api.error_handlers import install_error_handlers
from latency_server.api.exposure import UnsafeExposure, exposure_problem
from latency_server.api.fast_lut import FastLutMiddleware
from latency_server.api.metrics import MetricsMiddleware, install_metrics
from latency_server.api.metrics import router as metrics_router
from latency_server.api.openapi_limits import install_limited_openapi
from latency_server.api.routes import device, health, jobs, latency, lut, models, tables
from latency_server.api.service_errors import install_service_error_handlers
from latency_server.config import Settings
from latency_server.service import LatencyService
from latency_server.store.crud import Store
from latency_server.store.database import redacted_url, upgrade_database
from latency_server.ui.routes import install_dashboard

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, service: LatencyService | None = None, migrate: bool = True):
    """The latency server app. ``settings`` default to the environment; migrations run at start-up.

    Raises :class:`UnsafeExposure` for a non-loopback ``settings.host`` without a token."""
    settings = settings or Settings()
    problem = exposure_problem(settings)
    if problem is not None:
        raise UnsafeExposure(problem)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = service
        if svc is None:
            url = settings.database_url()
            if migrate:
                upgrade_database(url)
            svc = LatencyService(settings, Store(url))
        await run_in_threadpool(svc.start)  # the measurement worker's process says hello
        install_metrics(svc)
        app.state.service = svc
        log.info("latency server ready: backends %s, database %s", svc.available, redacted_url(settings.database_url()))
        try:
            yield
        finally:
            await run_in_threadpool(svc.stop)

    app = FastAPI(
        title="HardCoRe-NAS latency server",
        summary="Measures, caches and serves block, table and whole-network latencies of this device.",
        description=BROWSER_RULES,
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_service_error_handlers(app)
    app.add_middleware(FastLutMiddleware)
    app.add_middleware(ClientIdentityMiddleware, settings=settings)  # before the fast path: it may build
    install_device_lock(app, settings)
    for module in (health, device, latency, models, lut, jobs, tables):
        app.include_router(module.router)
    models.install_model_schemas(app)
    app.include_router(metrics_router)
    install_dashboard(app)  # the HTML pages at / and /ui/...
    install_limited_openapi(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,  # before any parsing
                       path_limits={"/v1/latency/model": (settings.max_onnx_bytes, "MAX_ONNX_BYTES")})
    app.add_middleware(BrowserSafetyMiddleware, settings=settings)  # before the body is read
    app.add_middleware(MetricsMiddleware)  # outermost: counts every answer, a refused one's too
    return app
