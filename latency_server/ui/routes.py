"""The dashboard: HTML pages at ``/`` and ``/ui/...`` drawn from Jinja2 templates, charts as inline SVG.

Pages: overview (``/``), tables (``/ui/tables``, ``/ui/tables/{id}`` with a heatmap), drift (``/ui/drift``),
verdicts (``/ui/verdicts``) and jobs (``/ui/jobs``). Nothing is fetched from elsewhere, so the pages work offline.
The access rule is the JSON API's: when the server has a token, the pages that show clients' networks (verdicts,
jobs) need it. A browser that cannot send ``Authorization: Bearer <token>`` opens a page once with ``?token=...``;
the answer sets the token as an HTTP-only cookie, which later pages accept.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from latency_server.api.deps import BearerDep, ServiceDep, SettingsDep, token_accepted
from latency_server.config import Settings
from latency_server.ui import data, history

__all__ = ["TOKEN_COOKIE", "install_dashboard", "router"]

TOKEN_COOKIE = "latency_server_token"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)


class PageLocked(Exception):
    """A page that needs the token was asked for without it."""


def _matches(settings: Settings, given: str | None) -> bool:
    secret = settings.token.get_secret_value() if settings.token is not None else ""
    return bool(given) and secrets.compare_digest(given.encode(), secret.encode())  # type: ignore[union-attr]


def page_token(request: Request, settings: SettingsDep, credentials: BearerDep) -> str | None:
    """Admit a request carrying the token (header, cookie or ``?token=``); the token to set as a cookie when it
    came in the query, else ``None``."""
    if token_accepted(settings, credentials) or _matches(settings, request.cookies.get(TOKEN_COOKIE)):
        return None
    query = request.query_params.get("token")
    if _matches(settings, query):
        return query
    raise PageLocked


TokenDep = Annotated[str | None, Depends(page_token)]


def _page(request: Request, name: str, context: dict, *, cookie: str | None = None, status: int = 200) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    locked = settings.token is not None and bool(settings.token.get_secret_value())
    response = templates.TemplateResponse(request, name, {"page": name.removesuffix(".html"), "locked": locked,
                                                          **context}, status_code=status)
    if cookie is not None:
        response.set_cookie(TOKEN_COOKIE, cookie, httponly=True, samesite="strict")
    return response


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, service: ServiceDep) -> HTMLResponse:
    """The device, its health, worker, queue, the task running now, counters and refusals."""
    return _page(request, "overview.html", {"o": data.overview(service, request.app.state.ui_started_at)})


@router.get("/ui/tables", response_class=HTMLResponse)
def tables_page(request: Request, service: ServiceDep) -> HTMLResponse:
    """Every stored table."""
    return _page(request, "tables.html", {"tables": data.table_rows(service)})


@router.get("/ui/tables/{table_id}", response_class=HTMLResponse)
def table_page(request: Request, service: ServiceDep, table_id: int) -> HTMLResponse:
    """One table: its summary and the heatmap of its block latencies."""
    detail = data.table_detail(service, table_id)
    if detail is None:
        raise HTTPException(404, detail=f"table_id: no table {table_id} on this server")
    return _page(request, "table.html", detail)


@router.get("/ui/drift", response_class=HTMLResponse)
def drift_page(request: Request, service: ServiceDep) -> HTMLResponse:
    """The drift reference over time per configuration, with the band the verdicts use."""
    return _page(request, "drift.html", {"configs": history.drift_configurations(service)})


@router.get("/ui/verdicts", response_class=HTMLResponse)
def verdicts_page(request: Request, service: ServiceDep, cookie: TokenDep) -> HTMLResponse:
    """Recent network measurements with their verdicts, and predicted against measured."""
    return _page(request, "verdicts.html", history.verdict_rows(service), cookie=cookie)


@router.get("/ui/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, service: ServiceDep, cookie: TokenDep) -> HTMLResponse:
    """Table builds of this process with their progress."""
    return _page(request, "jobs.html", {"jobs": data.job_rows(service)}, cookie=cookie)


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard from ``app`` (and note when it started: the overview's uptime)."""
    app.state.ui_started_at = time.monotonic()

    @app.exception_handler(PageLocked)
    async def locked(request: Request, exc: PageLocked) -> HTMLResponse:
        return _page(request, "locked.html", {}, status=401)

    app.include_router(router)
