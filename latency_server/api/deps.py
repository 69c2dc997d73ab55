"""Dependencies injected with ``Depends``: settings, the service, the bearer-token guard."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from latency_server.config import Settings
from latency_server.service import LatencyService

__all__ = ["ServiceDep", "SettingsDep", "get_service", "get_settings", "require_token"]


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_service(request: Request) -> LatencyService:
    """The app's latency service."""
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[LatencyService, Depends(get_service)]


def require_token(request: Request, settings: SettingsDep) -> None:
    """Endpoints that may measure need ``Authorization: Bearer <token>`` when a token is configured."""
    if settings.token is None or not settings.token.get_secret_value():
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), settings.token.get_secret_value().encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Authorization: a valid 'Bearer <token>' header is required for endpoints that measure",
            headers={"WWW-Authenticate": "Bearer"},
        )
