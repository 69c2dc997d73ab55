"""Error bodies: 4xx that name the field and stay small, 5xx that say nothing but a request id.

A client error answers ``{"detail": [{"loc", "msg", "type"}]}`` with at most :data:`MAX_ERROR_ITEMS` items,
each message starting with the field it is about and cut to :data:`MAX_MESSAGE_CHARS`; no input is echoed
beyond an excerpt (a 20 KB body once came back as 2.5 MB of errors). An unexpected exception answers 500
with a generic message and a request id; its traceback goes to the log under that id.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from latency_server.admission.validate import InputError
from latency_server.api.metrics import refused
from shared.arch_string import excerpt

__all__ = ["MAX_ERROR_ITEMS", "MAX_MESSAGE_CHARS", "error_body", "fault_response", "install_error_handlers"]

log = logging.getLogger(__name__)

MAX_ERROR_ITEMS = 20
MAX_MESSAGE_CHARS = 300
_LOC_PART_CHARS = 64
_SOURCES = ("body", "query", "path", "header")


def _loc_part(part: Any) -> str | int:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    text = str(part)
    return text if len(text) <= _LOC_PART_CHARS else excerpt(text, _LOC_PART_CHARS)


def _item(loc: Any, msg: str, kind: str) -> dict[str, Any]:
    parts = [_loc_part(p) for p in loc]
    where = ".".join(str(p) for p in parts if p not in _SOURCES) or ".".join(map(str, parts)) or "request"
    if kind == "json_invalid":  # loc is ("body", character position)
        where, msg = "body", f"not valid JSON at character {parts[-1]}: {msg}"
    text = msg if msg.startswith(where) else f"{where}: {msg}"
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return {"loc": parts, "msg": text, "type": kind}


def error_body(items: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    """``{"detail": items}``: at most :data:`MAX_ERROR_ITEMS` of them, then one that counts the rest of ``total``."""
    total = len(items) if total is None else total
    kept = items[:MAX_ERROR_ITEMS]
    if total > len(kept):
        rest = total - len(kept)
        kept.append({"loc": [], "msg": f"request: {rest} more errors not shown", "type": "too_many_errors"})
    return {"detail": kept}


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    refused(request, "invalid_request", 422)
    errors = exc.errors()
    items = [_item(err.get("loc", ()), str(err.get("msg", "invalid")), str(err.get("type")))
             for err in errors[:MAX_ERROR_ITEMS]]
    return JSONResponse(error_body(items, len(errors)), status_code=422)


async def _input_error(request: Request, exc: InputError) -> JSONResponse:
    refused(request, "invalid_input", 422)
    return JSONResponse(error_body([_item(exc.loc, exc.msg, "value_error")]), status_code=422)


def fault_response(request: Request, exc: BaseException, status: int = 500,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A server fault's answer: a generic message and a request id; the traceback goes to the log under that id.

    For every 5xx (a fault mapped to 503 with ``Retry-After`` too), so that no exception text reaches a client.
    """
    request_id = uuid.uuid4().hex[:16]
    log.error("%s on %s %s (request id %s)", type(exc).__name__, request.method, request.url.path, request_id,
              exc_info=exc)
    message = "internal server error" if status == 500 else "the server cannot answer this now"
    return JSONResponse({"detail": f"{message}; the server log has the details under request id {request_id}",
                         "request_id": request_id},
                        status_code=status, headers={"X-Request-ID": request_id, **(headers or {})})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return fault_response(request, exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's answer, but a 405 lists every method the path takes: Starlette names only those of the first
    route on the path (``GET /v1/jobs/{id}`` and ``DELETE /v1/jobs/{id}`` are two routes)."""
    if exc.status_code == 405:
        allowed = [method for method in _METHODS if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.router.routes)]
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Answer validation and input errors (422) and unexpected exceptions (500) as described above."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(Exception, _unexpected)
