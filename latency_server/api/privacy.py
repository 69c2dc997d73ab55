"""What readers without the token see of other clients' work when a token is configured.

Task labels and worker errors name the block or network being measured, which is another client's choice of
network. ``/v1/stats`` and ``/healthz`` stay unauthenticated (monitoring needs them), so with a token configured
a reader without it sees only the kind of the task and the reason of an error; without a token configured
everyone sees everything, as anyone may measure anyway.
"""

from __future__ import annotations

from fastapi import Request

from latency_server.api.auth import bearer, token_accepted

__all__ = ["may_see_work", "public_error", "public_label"]


async def may_see_work(request: Request) -> bool:
    """Whether this request may see which networks are measured (a valid token, or none configured)."""
    return token_accepted(request.app.state.settings, await bearer(request))


def public_label(label: str) -> str:
    """A task label without the block or network it names: its kind (``block``, ``network``, ...)."""
    return label.split(" ", 1)[0].rstrip(":")


def public_error(error: str | None) -> str | None:
    """A worker error without the task it names: the reason before the first colon."""
    return None if error is None else error.split(":", 1)[0]
