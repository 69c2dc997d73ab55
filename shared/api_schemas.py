"""The latency server's REST contract as pydantic models (shared by server and search client; pydantic only).

All latencies are milliseconds per image in fields ending ``_ms``. Block specs are
:class:`shared.block_key.BlockKey` as JSON; LUT keys are ``str(BlockKey)``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "BACKEND_NAMES",
    "BLOCK_TYPES",
    "DEFAULT_BACKEND",
    "ACTIVATION_NAMES",
    "BackendName",
    "BlockResult",
    "BlockSpec",
    "BlocksRequest",
    "BlocksResponse",
    "CurrentTask",
    "DatabaseHealth",
    "DeviceResponse",
    "ErrorItem",
    "ErrorResponse",
    "HealthResponse",
    "JobAccepted",
    "JobState",
    "JobStatus",
    "LatencyStats",
    "LutResponse",
    "MeasureSettings",
    "NetworkRequest",
    "NetworkResponse",
    "QueueHealth",
    "ReferenceFigure",
    "ServerStats",
    "WorkerHealth",
]

BACKEND_NAMES = ("onnxruntime", "torch-cpu", "torch-cuda")
DEFAULT_BACKEND = "onnxruntime"
BLOCK_TYPES = ("ir", "ds", "dsa", "cn", "stem", "head")
ACTIVATION_NAMES = ("relu", "relu6", "hard_swish", "swish")

BackendName = Literal["onnxruntime", "torch-cpu", "torch-cuda"]
JobState = Literal["queued", "running", "done", "failed"]


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


PositiveInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=1)]
NonNegativeInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=0)]
Number = Annotated[float, BeforeValidator(_no_bool)]


class MeasureSettings(BaseModel):
    """The measuring identity of a request: backend, batch size, threads (defaults: onnxruntime, 1, 1)."""

    backend: BackendName = DEFAULT_BACKEND
    batch_size: PositiveInt = 1
    threads: PositiveInt = 1


class LatencyStats(BaseModel):
    """One measurement's statistics (ms per image)."""

    median_ms: float
    iqr_ms: float
    p90_ms: float
    samples: int
    warmup: int


class BlockSpec(BaseModel):
    """One block measurement (``BlockKey.to_dict()``); ``num_classes`` matters for ``head`` only."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ir", "ds", "dsa", "cn", "stem", "head"]
    in_chs: PositiveInt
    out_chs: PositiveInt
    stride: Literal[1, 2]
    resolution: PositiveInt
    exp_ratio: Annotated[Number, Field(gt=0)] = 1.0
    kernel: PositiveInt = 3
    se_ratio: Annotated[Number, Field(ge=0, le=1)] = 0.0
    act: Literal["relu", "relu6", "hard_swish", "swish"] = "hard_swish"
    num_classes: NonNegativeInt = 0


class BlocksRequest(MeasureSettings):
    """``POST /v1/latency/blocks``."""

    model_config = ConfigDict(extra="forbid")

    blocks: list[BlockSpec] = Field(min_length=1)


class BlockResult(BaseModel):
    key: str
    block: BlockSpec
    stats: LatencyStats
    cached: bool


class BlocksResponse(BaseModel):
    fingerprint: str
    results: list[BlockResult]


class LutResponse(BaseModel):
    """``GET /v1/lut`` when every entry is stored (200)."""

    space: str
    fingerprint: str
    unit: Literal["ms"] = "ms"
    backend: str
    batch_size: int
    threads: int
    resolution: int
    fixed_ms: float
    fixed: dict[str, float]
    entries: dict[str, float]
    stats: dict[str, LatencyStats]
    #: part name (stem, first, last, head) -> key in ``fixed``
    fixed_names: dict[str, str] = Field(default_factory=dict)
    #: per-table metadata (corrections, reference latencies) as stored with the table
    meta: dict[str, Any] = Field(default_factory=dict)
    #: ``entries`` with the table's fitted whole-network correction applied (= ``entries`` without one);
    #: what a search should use: ``corrected_fixed_ms + sum(corrected_entries)`` predicts a whole network
    corrected_entries: dict[str, float] = Field(default_factory=dict)
    corrected_fixed_ms: float | None = None
    #: the correction: model, features, coefficients, fixed offset, fit networks, residuals, leave-one-out error
    correction: dict[str, Any] | None = None
    #: the drift reference: arch, its latency when the table was built (``median_ms``) and each measurement
    reference: dict[str, Any] | None = None


class JobAccepted(BaseModel):
    """``GET /v1/lut`` while the table is being built (202, ``Location: /v1/jobs/{id}``)."""

    job_id: str
    done: int
    total: int


class JobStatus(BaseModel):
    id: str
    state: JobState
    done: int
    total: int
    error: str | None = None


class NetworkRequest(MeasureSettings):
    """``POST /v1/latency/network``."""

    model_config = ConfigDict(extra="forbid")

    arch: str = Field(min_length=1)
    resolution: PositiveInt = 224
    space: str = "hardcorenas"


class ReferenceFigure(BaseModel):
    """The drift reference network measured alongside a network (interleaved rounds)."""

    arch: str
    measured_ms: float
    table_ms: float


class NetworkResponse(BaseModel):
    fingerprint: str
    measured: LatencyStats
    #: the table's prediction now: corrected and drift-compensated (``predicted_table_ms * drift_ratio``)
    predicted_ms: float | None
    #: each independent round's statistics (one entry unless the server measures several rounds)
    rounds: list[LatencyStats] = Field(default_factory=list)
    #: max minus min of the round medians
    spread_ms: float = 0.0
    #: the corrected table's prediction (what a search's expected latency uses), without drift compensation
    predicted_table_ms: float | None = None
    #: fixed parts plus raw block medians (the uncorrected sum)
    predicted_naive_ms: float | None = None
    #: the reference network now over its latency when the table was built (``None`` when not measured)
    drift_ratio: float | None = None
    reference: ReferenceFigure | None = None
    #: the figure at the speed the device had when the table was built, comparable across time: the reference's
    #: table latency times the median over rounds of (network / reference), each round timing both back to back
    #: (``None`` without a drift reference). Use it to compare figures taken at different times.
    normalized_ms: float | None = None
    #: max minus min of the per-round normalised figures
    normalized_spread_ms: float | None = None


class DeviceResponse(BaseModel):
    fingerprint: str
    hardware: dict[str, Any]
    software: dict[str, Any]
    backends: list[str]
    settings: MeasureSettings = Field(default_factory=MeasureSettings)


class WorkerHealth(BaseModel):
    """The measurement worker process."""

    state: Literal["ready", "busy", "starting", "down", "stopped"]
    alive: bool
    answered_ping: bool
    pid: int | None = None
    rss_mb: float | None = None
    tasks: int = 0
    restarts: int = 0
    recycles: int = 0
    uptime_s: float | None = None
    last_error: str | None = None


class DatabaseHealth(BaseModel):
    reachable: bool
    error: str | None = None


class QueueHealth(BaseModel):
    depth: int
    capacity: int
    oldest_age_s: float | None = None


class HealthResponse(BaseModel):
    """``GET /healthz``: 200 when the worker answers and the database is reachable, 503 otherwise."""

    status: Literal["ok", "unavailable"] = "ok"
    worker: WorkerHealth | None = None
    database: DatabaseHealth | None = None
    queue: QueueHealth | None = None


class CurrentTask(BaseModel):
    label: str
    running_s: float


class ServerStats(BaseModel):
    """``GET /v1/stats``: what this server process has done since it started."""

    measurements: int
    block_measurements: int
    network_measurements: int
    #: reference and fit-network runs of table builds (not counted in ``measurements``)
    calibration_measurements: int = 0
    queued: int
    active_jobs: int
    #: measurement tasks that failed since start, by reason (timeout, memory, crash, error)
    failures: dict[str, int] = Field(default_factory=dict)
    #: what the worker measures now
    current_task: CurrentTask | None = None
    worker_restarts: int = 0
    worker_recycles: int = 0
    #: queued tasks cancelled because every request waiting for them had disconnected
    abandoned: int = 0


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorItem] | str
