"""A pure-ASGI guard against use from web pages: Host allow-list, cross-site refusal, JSON content type.

A web page the user opens can send requests to a server on loopback: with DNS rebinding (a name of the
attacker's that resolves to 127.0.0.1) it can even read the answers. Browsers give such requests away, and this
middleware refuses them before anything is parsed:

- ``Host`` must be a name of this server (loopback names, the bind address, ``LATENCY_SERVER_ALLOWED_HOSTS``;
  any IP address when bound beyond loopback), else 400: a rebound name never is.
- A request that changes state or may measure (any method but GET/HEAD/OPTIONS, and ``GET /v1/lut``, which
  starts table builds) is refused 403 when its ``Origin`` is not this server's own, or when the browser marks it
  cross-site (``Sec-Fetch-Site``, sent with ``<img>`` loads that carry no ``Origin``).
- A body must be ``Content-Type: application/json``, else 415: a page may post ``text/plain`` without a CORS
  preflight, and FastAPI would parse it as JSON all the same. The model route also takes a
  ``multipart/form-data`` upload, which the cross-site checks above still guard.
- Without a token, a connection that arrived on a non-loopback address is refused 403 (see
  :mod:`latency_server.api.exposure`).

No CORS headers are ever sent, so browsers keep other origins from reading any answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import parse_host_header

from latency_server.api.exposure import allowed_host_names, connection_exposed, ip_literals_allowed, needs_token

__all__ = ["BROWSER_RULES", "BrowserSafetyMiddleware"]

#: the rules in the REST reference (the app's OpenAPI description)
BROWSER_RULES = (
    "**Requests from browsers.** Every request's `Host` must be a name of this server: `127.0.0.1`, `localhost`, "
    "`[::1]` (any port), the bind address, one of `LATENCY_SERVER_ALLOWED_HOSTS` (comma-separated; `*` = any), or "
    "any IP address when the server is bound beyond loopback; other names get 400 (a DNS-rebinding guard). A "
    "request that may measure (every POST, and `GET /v1/lut`, which starts builds) with an `Origin` other than "
    "this server's own, or marked `Sec-Fetch-Site: cross-site` or `same-site`, gets 403. A body must be sent as "
    "`Content-Type: application/json` (415 otherwise). No CORS headers are sent. A server without a token refuses "
    "(403) connections that arrive on a non-loopback address."
)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: routes that take a file upload as well: a page's cross-site form post is still refused by the Origin checks
UPLOAD_PATHS = frozenset({"/v1/latency/model"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: GET endpoints that may start work
_MEASURING_GETS = frozenset({"/v1/lut"})
#: ``Sec-Fetch-Site`` values of requests a page of this server, or the user, made
_OWN_SITES = frozenset({"same-origin", "none"})


async def _refuse(send: Send, status: int, loc: list[str], msg: str, kind: str) -> None:
    body = json.dumps({"detail": [{"loc": loc, "msg": msg, "type": kind}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BrowserSafetyMiddleware:
    """Refuse foreign ``Host`` names (400), cross-site measuring requests (403), non-JSON bodies (415) and
    tokenless non-loopback connections (403)."""

    def __init__(self, app: ASGIApp, settings: Any) -> None:
        self.app = app
        self.settings = settings
        self.allowed = allowed_host_names(settings)

    def _host_allowed(self, host: str) -> bool:
        if self.allowed is None:
            return True
        parsed = parse_host_header(host)
        return parsed is not None and (parsed.host.lower() in self.allowed
                                       or ip_literals_allowed(self.settings, parsed.host))

    def _problem(self, scope: dict[str, Any]) -> tuple[int, list[str], str, str] | None:
        if connection_exposed(scope.get("server")) and needs_token(self.settings):
            return (403, ["request"], "request: this server has no token (LATENCY_SERVER_TOKEN) and answers loopback "
                    "connections only", "token_required")
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self._host_allowed(host):
            return (400, ["header", "host"], f"Host: {host[:64]!r} is not a name of this server (loopback names, "
                    "the bind address and LATENCY_SERVER_ALLOWED_HOSTS)", "host_not_allowed")
        method = scope["method"]
        if method not in _SAFE_METHODS or scope["path"] in _MEASURING_GETS:
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
                return (403, ["header", "origin"], f"Origin: {origin[:64]!r} is not this server; cross-origin "
                        "requests may not measure", "cross_origin")
            site = headers.get("sec-fetch-site")
            if site is not None and site.lower() not in _OWN_SITES:
                return (403, ["header", "sec-fetch-site"], f"Sec-Fetch-Site: {site[:32]!r}: requests from other "
                        "sites may not measure", "cross_origin")
        has_body = headers.get("content-length", "0").strip() != "0" or "transfer-encoding" in headers
        if method in _BODY_METHODS and has_body:  # (a bodyless request gets its route's answer: 405, 422)
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json" and not (
                    media_type == "multipart/form-data" and scope["path"] in UPLOAD_PATHS):
                kinds = "'application/json' or 'multipart/form-data'" if scope["path"] in UPLOAD_PATHS else \
                    "'application/json'"
                return (415, ["header", "content-type"], f"Content-Type: {media_type[:64] or 'none'!r} is not "
                        f"supported; send the body as Content-Type {kinds}", "unsupported_media_type")
        return None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._problem(scope)
            if problem is not None:
                await _refuse(send, *problem)
                return
        await self.app(scope, receive, send)
