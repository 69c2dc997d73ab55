"""Who is asking: each request's client, for the measurement queue's turns and per-client limits.

A client is the hash of its bearer token when the server has a token (so the token itself is never kept), else
its peer address. The pure-ASGI middleware sets :data:`~latency_server.worker.queue.client_id` for the request;
the threads that run its handlers inherit it (``run_in_threadpool`` copies the context).
"""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Receive, Scope, Send

from latency_server.config import Settings
from latency_server.worker.queue import client_id

__all__ = ["ClientIdentityMiddleware", "client_of"]


def client_of(scope: Scope, settings: Settings) -> str:
    """``token:<hash>`` when a token is configured and presented, else ``addr:<peer address>``."""
    if settings.token is not None and settings.token.get_secret_value():
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return "token:" + hashlib.sha256(value[7:].strip()).hexdigest()[:16]
    peer = scope.get("client")
    return f"addr:{peer[0] if peer else 'unknown'}"


class ClientIdentityMiddleware:
    """Set the request's client for the measurement queue."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = client_id.set(client_of(scope, self.settings))
        try:
            await self.app(scope, receive, send)
        finally:
            client_id.reset(token)
