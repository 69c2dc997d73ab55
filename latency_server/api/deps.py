"""Dependencies injected with ``Depends``: the app's settings, the service, the bearer-token guard.

The token check lives here once: :func:`require_token` uses it for the routes, and the pure-ASGI fast
path of :mod:`latency_server.api.fast_lut` calls :func:`token_accepted` with the same ``HTTPBearer``.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from latency_server.config import Settings
from latency_server.service import LatencyService

__all__ = ["ServiceDep", "SettingsDep", "bearer", "get_app_settings", "get_service", "require_token",
           "token_accepted"]

#: ``Authorization: Bearer <token>`` parsing; a missing or other header yields ``None`` (the check answers)
bearer = HTTPBearer(auto_error=False, description="required by endpoints that may measure when the server has a "
                    "token (LATENCY_SERVER_TOKEN)")


def get_app_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_service(request: Request) -> LatencyService:
    """The app's latency service."""
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ServiceDep = Annotated[LatencyService, Depends(get_service)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def token_accepted(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether a request with these bearer credentials may measure (always, when no token is configured)."""
    if settings.token is None or not settings.token.get_secret_value():
        return True
    return credentials is not None and secrets.compare_digest(
        credentials.credentials.encode(), settings.token.get_secret_value().encode()
    )


def require_token(settings: SettingsDep, credentials: BearerDep) -> None:
    """Endpoints that may measure need ``Authorization: Bearer <token>`` when a token is configured."""
    if not token_accepted(settings, credentials):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Authorization: a valid 'Bearer <token>' header is required for endpoints that measure",
            headers={"WWW-Authenticate": "Bearer"},
        )
