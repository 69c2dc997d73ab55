"""The bearer-token check, once: the routes' dependency, the pages and the pure-ASGI fast path all use it.

Kept apart from :mod:`latency_server.api.deps` (which hands routes the service) so that what only checks a token
does not import the service.
"""

from __future__ import annotations

import secrets

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from latency_server.config import Settings

__all__ = ["bearer", "token_accepted"]

#: ``Authorization: Bearer <token>`` parsing; a missing or other header yields ``None`` (the check answers)
bearer = HTTPBearer(auto_error=False, description="required by endpoints that may measure when the server has a "
                    "token (LATENCY_SERVER_TOKEN)")


def token_accepted(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether a request with these bearer credentials may measure (always, when no token is configured)."""
    if settings.token is None or not settings.token.get_secret_value():
        return True
    return credentials is not None and secrets.compare_digest(
        credentials.credentials.encode(), settings.token.get_secret_value().encode()
    )
