"""Helpers shared by route modules: measuring settings from the query string."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from shared.api_schemas import INT_CAP, BackendName, MeasureSettings


def settings_query(
    backend: Annotated[BackendName, Query()] = "onnxruntime",
    batch_size: Annotated[int, Query(ge=1, le=INT_CAP)] = 1,
    threads: Annotated[int, Query(ge=1, le=INT_CAP)] = 1,
) -> MeasureSettings:
    """``backend``, ``batch_size`` and ``threads`` query parameters."""
    return MeasureSettings(backend=backend, batch_size=batch_size, threads=threads)
