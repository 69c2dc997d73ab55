"""Helpers shared by route modules: measuring settings from the query string, the measuring answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from shared.api_schemas import INT_CAP, BackendName, ErrorResponse, MeasureSettings


def settings_query(
    backend: Annotated[BackendName, Query()] = "onnxruntime",
    batch_size: Annotated[int, Query(ge=1, le=INT_CAP)] = 1,
    threads: Annotated[int, Query(ge=1, le=INT_CAP)] = 1,
) -> MeasureSettings:
    """``backend``, ``batch_size`` and ``threads`` query parameters."""
    return MeasureSettings(backend=backend, batch_size=batch_size, threads=threads)


#: the answers besides 200 and 422 that every measuring endpoint may give
MEASURING_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorResponse, "description": "Host is not a name of this server (loopback names, the bind "
          "address, LATENCY_SERVER_ALLOWED_HOSTS), or the body is not UTF-8 text"},
    401: {"model": ErrorResponse, "description": "a token is configured and the request lacks it"},
    403: {"model": ErrorResponse, "description": "a cross-site request (Origin not this server, or Sec-Fetch-Site "
          "cross-site), or a server without a token reached on a non-loopback address"},
    413: {"model": ErrorResponse, "description": "the body exceeds LATENCY_SERVER_MAX_BODY_BYTES"},
    415: {"model": ErrorResponse, "description": "the body is not Content-Type: application/json"},
    429: {"model": ErrorResponse, "description": "the measurement queue is full (interactive tasks: "
          "LATENCY_SERVER_MAX_QUEUED_TASKS; table-build tasks: LATENCY_SERVER_QUEUE_MAX_BACKGROUND), this client "
          "has LATENCY_SERVER_QUEUE_MAX_PER_CLIENT measurements waiting (a client is its token's hash, or its "
          "address without a token; clients are served in turn), or a new table build would exceed "
          "LATENCY_SERVER_MAX_CONCURRENT_BUILDS (a running build of the same table is joined); see Retry-After"},
    500: {"model": ErrorResponse, "description": "a measurement raised, ran over its memory limit or crashed the "
          "worker (refused for a cool-down after a kill or crash)"},
    503: {"model": ErrorResponse, "description": "read-only (another server measures on this device), the worker "
          "or the database is down, or the server is stopping (see Retry-After)"},
    504: {"model": ErrorResponse, "description": "a measurement ran over LATENCY_SERVER_TASK_TIMEOUT_S"},
}
