"""A pure-ASGI fast path for ``GET /v1/lut`` of tables this process has already served complete.

Complete tables never change, so their serialised JSON is kept by the service's tables; this middleware
answers them without FastAPI's routing and dependency resolution (about half the per-request cost, which
matters under many concurrent clients). The bearer token is checked by the routes' own check. Anything
else, including every request that would fail validation or authentication, goes through the normal route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection

from latency_server.api.auth import bearer, token_accepted
from shared.api_schemas import BACKEND_NAMES, MeasureSettings

__all__ = ["FastLutMiddleware"]

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


_PARAMETERS = frozenset({"backend", "batch_size", "threads", "resolution", "space"})
_INTEGERS = ("batch_size", "threads", "resolution")


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class FastLutMiddleware:
    """Serve cached complete tables straight from memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def _cached(self, scope: Scope) -> bytes | None:
        state = scope.get("app").state if scope.get("app") is not None else None
        service = getattr(state, "service", None)
        settings = getattr(state, "settings", None)
        if service is None or settings is None:
            return None
        if not token_accepted(settings, await bearer(HTTPConnection(scope))):
            return None  # the route answers 401
        try:
            pairs = parse_qsl(scope.get("query_string", b"").decode("ascii"), keep_blank_values=True)
        except (ValueError, UnicodeDecodeError):
            return None
        query = dict(pairs)
        # only plainly valid queries take the shortcut; anything odd (blank, repeated or unknown parameters,
        # non-canonical numbers) goes to the route, whose validation answers it
        if len(query) != len(pairs) or not query.keys() <= _PARAMETERS:
            return None
        if any(query.get(k, "1") != str(_as_int(query.get(k, "1"))) for k in _INTEGERS):
            return None
        backend = query.get("backend", "onnxruntime")
        if backend not in BACKEND_NAMES:
            return None
        measuring = MeasureSettings.model_construct(
            backend=backend, batch_size=int(query.get("batch_size", 1)), threads=int(query.get("threads", 1))
        )
        resolution = int(query.get("resolution", 224))
        return service.tables.bodies.get(measuring, query.get("space", "hardcorenas"), resolution)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/v1/lut":
            body = await self._cached(scope)
            if body is not None:
                await send({
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                })
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
