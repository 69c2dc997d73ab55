"""Dependencies injected with ``Depends``: the app's settings, the service, the bearer-token guard.

:func:`require_token` applies the token check of :mod:`latency_server.api.auth` to the routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from latency_server.api.auth import bearer, token_accepted
from latency_server.config import Settings
from latency_server.service import LatencyService

__all__ = ["ServiceDep", "SettingsDep", "bearer", "get_app_settings", "get_service", "require_token",
           "token_accepted"]

def get_app_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_service(request: Request) -> LatencyService:
    """The app's latency service."""
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ServiceDep = Annotated[LatencyService, Depends(get_service)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require_token(settings: SettingsDep, credentials: BearerDep) -> None:
    """Endpoints that may measure need ``Authorization: Bearer <token>`` when a token is configured."""
    if not token_accepted(settings, credentials):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Authorization: a valid 'Bearer <token>' header is required for endpoints that measure",
            headers={"WWW-Authenticate": "Bearer"},
        )
