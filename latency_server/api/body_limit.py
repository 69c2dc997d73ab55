"""A pure-ASGI request-size limit, ahead of parsing and of the token check.

A request whose ``Content-Length`` exceeds the limit is answered 413 without reading its body; a body sent
without a length (chunked) is read and counted, and answered 413 as soon as it passes the limit. A body within
the limit is buffered once and handed to the application unchanged, so nothing downstream (JSON parsing,
validation, authentication) ever sees more than ``max_bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["BodyLimitMiddleware"]

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

#: more digits than any sane Content-Length (and than a 64-bit count)
_MAX_LENGTH_DIGITS = 18
#: a refused body up to this many times the limit is read and dropped before the 413, so that the client, still
#: sending, reads the answer instead of a reset connection; a larger one is answered at once
_DRAIN_FACTOR = 4


async def _reject(send: Send, status: int, msg: str, kind: str) -> None:
    body = json.dumps({"detail": [{"loc": ["body"], "msg": msg, "type": kind}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Answer 413 to request bodies over ``max_bytes`` (``LATENCY_SERVER_MAX_BODY_BYTES``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: paths with a limit of their own (an upload's): path -> (bytes, the setting's name after LATENCY_SERVER_)
        self.path_limits = path_limits or {}

    def _too_large(self, size: str, limit: int, env: str) -> str:
        return f"body: {size} bytes exceed the limit {limit} (LATENCY_SERVER_{env})"

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, env = self.path_limits.get(scope.get("path", ""), (self.max_bytes, "MAX_BODY_BYTES"))
        lengths = [value for name, value in scope.get("headers", []) if name.lower() == b"content-length"]
        if lengths:
            text = lengths[0].strip()
            if len(lengths) > 1 or not text.isdigit():  # bytes.isdigit: ASCII digits only
                await _reject(send, 400, "body: Content-Length must be one decimal number", "bad_length")
                return
            if len(text) > _MAX_LENGTH_DIGITS or int(text) > limit:
                if int(text[:_MAX_LENGTH_DIGITS]) <= _DRAIN_FACTOR * limit:
                    await _drain(receive, 0, _DRAIN_FACTOR * limit)
                await _reject(send, 413, self._too_large(text.decode()[:_MAX_LENGTH_DIGITS], limit, env),
                              "body_too_large")
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await _drain(receive, size, _DRAIN_FACTOR * limit)
                await _reject(send, 413, self._too_large(f"more than {limit}", limit, env), "body_too_large")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)


async def _drain(receive: Receive, size: int, budget: int) -> None:
    """Read and drop the rest of a request body, at most ``budget`` bytes in all."""
    while size <= budget:
        message = await receive()
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once (or the pending message), then the real one."""
    first: list[Message] = [pending] if pending is not None else [
        {"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay() -> Message:
        if first:
            return first.pop()
        return await receive()

    return replay
