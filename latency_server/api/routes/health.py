"""``GET /healthz``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from latency_server.device_lock import device_status
from shared.api_schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz(request: Request) -> HealthResponse:
    """Liveness: the process answers (and whether it serves read-only)."""
    return HealthResponse(**device_status(request.app))
