"""What ``nas fleet status`` asks each latency server: health, device, software, queue, tables, drift, last verdict.

Each server is asked over HTTP with its reads only (``/healthz``, ``/v1/device``, ``/v1/stats``, ``/v1/tables``); a
server that cannot be reached, or answers outside the contract, gives a status that says so instead of raising,
so that one dead device never hides the rest of the fleet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from shared.api_schemas import DeviceResponse, HealthResponse, ServerStats, TablesResponse

__all__ = ["ServerStatus", "fleet_status", "server_status"]


@dataclass
class ServerStatus:
    """One server's row; ``reachable`` False with ``error`` when it did not answer."""

    url: str
    reachable: bool
    error: str | None = None
    health: str | None = None  # ok | unavailable
    worker: str | None = None
    read_only: bool = False
    device: dict[str, Any] = field(default_factory=dict)  # cpu_model, cpu_count, gpu_model, machine
    software: dict[str, Any] = field(default_factory=dict)
    backends: list[str] = field(default_factory=list)
    queue: dict[str, Any] = field(default_factory=dict)  # depth, capacity, running
    tables: list[dict[str, Any]] = field(default_factory=list)
    last_verdict: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        return self.reachable and self.health == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def _get(client: httpx.Client, path: str, model: type, *, accept: tuple[int, ...] = (200,)) -> Any:
    response = client.get(path)
    if response.status_code not in accept:
        raise ValueError(f"{path} answered {response.status_code}")
    return model.model_validate_json(response.content)


def server_status(url: str, *, token: str | None = None, timeout_s: float = 5.0) -> ServerStatus:
    """Ask one server; never raises for a dead or odd server."""
    url = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout_s) as client:
            health: HealthResponse = _get(client, "/healthz", HealthResponse, accept=(200, 503))
            device: DeviceResponse = _get(client, "/v1/device", DeviceResponse)
            stats: ServerStats = _get(client, "/v1/stats", ServerStats)
            tables: TablesResponse = _get(client, "/v1/tables", TablesResponse)
    except httpx.HTTPError as exc:
        return ServerStatus(url, reachable=False, error=f"unreachable: {exc or type(exc).__name__}")
    except (ValueError, ValidationError) as exc:  # a pydantic error is a ValueError; kept explicit for readers
        return ServerStatus(url, reachable=False, error=f"not a latency server answer: {str(exc).splitlines()[0]}")
    hw = device.hardware
    return ServerStatus(
        url, reachable=True, health=health.status, worker=health.worker.state,
        read_only=bool(health.read_only),
        device={k: hw.get(k) for k in ("cpu_model", "cpu_count", "gpu_model", "machine")},
        software={k: v for k in ("torch", "onnxruntime", "python", "cuda") if (v := device.software.get(k))},
        backends=list(device.backends),
        queue={"depth": health.queue.depth, "capacity": health.queue.capacity,
               "running": None if stats.current_task is None else stats.current_task.label},
        tables=[t.model_dump(include={"space", "resolution", "backend", "threads", "batch_size", "complete",
                                      "entries", "built_at", "drift_ratio"}) for t in tables.tables],
        last_verdict=None if stats.last_verdict is None else stats.last_verdict.model_dump(),
    )


def fleet_status(urls: list[str], *, token: str | None = None, timeout_s: float = 5.0) -> list[ServerStatus]:
    """Every server's status, asked at once, in the order given."""
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(urls)))) as pool:
        return list(pool.map(lambda u: server_status(u, token=token, timeout_s=timeout_s), urls))
