"""``GET /healthz``."""

from __future__ import annotations

from fastapi import APIRouter

from shared.api_schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """Liveness: the process answers."""
    return HealthResponse()
