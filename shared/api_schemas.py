"""The latency server's REST contract as pydantic models (shared by server and search client; pydantic only).

All latencies are milliseconds per image in fields ending ``_ms``. Block specs are
:class:`shared.block_key.BlockKey` as JSON; LUT keys are ``str(BlockKey)``.

Every number is bounded and finite here (``NaN`` and ``Infinity`` are refused, integers stop at
:data:`INT_CAP`), so no input reaches the server's arithmetic unchecked; the server's configured limits are
tighter and its OpenAPI schema declares them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.search_space import SPACES

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
    "INT_CAP",
    "MIN_EXP_RATIO",
    "NETWORK_NUM_FEATURES",
    "NETWORK_STEM_SIZE",
    "SPACE_NAMES",
    "ErrorItem",
    "ErrorResponse",
    "HealthResponse",
    "JobAccepted",
    "JobState",
    "JobStatus",
    "LastVerdict",
    "LatencyStats",
    "LutResponse",
    "MAX_BLOCKS_PER_REQUEST",
    "MeasureSettings",
    "ModelRequest",
    "ModelResponse",
    "OperatorTime",
    "NetworkRequest",
    "NetworkResponse",
    "QueueHealth",
    "ReferenceFigure",
    "ServerStats",
    "SpaceName",
    "TableSummary",
    "TablesResponse",
    "Verdict",
    "WorkerHealth",
]

BACKEND_NAMES = ("onnxruntime", "torch-cpu", "torch-cuda")
DEFAULT_BACKEND = "onnxruntime"
BLOCK_TYPES = ("ir", "ds", "dsa", "cn", "stem", "head")
ACTIVATION_NAMES = ("relu", "relu6", "hard_swish", "swish")

SPACE_NAMES = tuple(SPACES)
#: The largest integer any field takes (a database integer); configured limits are far below it.
INT_CAP = 2**31 - 1
#: The most blocks one request may name: the server's default limit, and the ceiling of its configured one, so
#: that a longer list is refused by its length before any item is validated.
MAX_BLOCKS_PER_REQUEST = 256
#: The smallest expansion ratio a block spec takes (keys keep four decimals of it).
MIN_EXP_RATIO = 0.01
#: The stem width and head features a network request builds by default: those of timm's ``hardcorenas_*`` (and of
#: :func:`shared.builders.build_network`'s defaults), which every table and stored figure was measured with.
NETWORK_STEM_SIZE = 32
NETWORK_NUM_FEATURES = 1280

BackendName = Literal["onnxruntime", "torch-cpu", "torch-cuda"]
SpaceName = Literal[SPACE_NAMES]  # type: ignore[valid-type]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


def _json_int(value: Any) -> Any:
    """JSON integers: no booleans, and ``16.0`` is 16 (as JSON Schema has it), but a string stays refused."""
    value = _no_bool(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


# (the bounds come before the validator, or they vanish from the JSON schema)
PositiveInt = Annotated[int, Field(ge=1, le=INT_CAP), BeforeValidator(_json_int)]
NonNegativeInt = Annotated[int, Field(ge=0, le=INT_CAP), BeforeValidator(_json_int)]
#: requests: no unknown fields, no NaN/Infinity, and JSON types as declared (no "16" for 16)
_REQUEST = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class MeasureSettings(BaseModel):
    """The measuring identity of a request: backend, batch size, threads (defaults: onnxruntime, 1, 1)."""

    model_config = _REQUEST

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

    model_config = _REQUEST

    type: Literal["ir", "ds", "dsa", "cn", "stem", "head"]
    in_chs: PositiveInt
    out_chs: PositiveInt
    stride: Literal[1, 2]
    resolution: PositiveInt
    exp_ratio: Annotated[float, Field(ge=MIN_EXP_RATIO, le=INT_CAP), BeforeValidator(_no_bool)] = Field(
        1.0, description="expansion ratio (ir blocks; ignored by the other types)")
    kernel: PositiveInt = Field(3, description="odd kernel size (ignored by head blocks)")
    se_ratio: Annotated[float, Field(ge=0, le=1), BeforeValidator(_no_bool)] = Field(
        0.0, description="squeeze-excite ratio, 0 = none (ignored by stem, head and cn blocks)")
    act: Literal["relu", "relu6", "hard_swish", "swish"] = "hard_swish"
    num_classes: NonNegativeInt = Field(0, description="classifier width: positive for head blocks, ignored by "
                                        "the other types")


class BlocksRequest(MeasureSettings):
    """``POST /v1/latency/blocks``."""

    blocks: list[BlockSpec] = Field(min_length=1, max_length=MAX_BLOCKS_PER_REQUEST)


class BlockResult(BaseModel):
    key: str
    block: BlockSpec
    stats: LatencyStats
    cached: bool


class BlocksResponse(BaseModel):
    fingerprint: str
    results: list[BlockResult] = Field(max_length=MAX_BLOCKS_PER_REQUEST)


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
    #: measured under an older fingerprint of this device and settings (a library, the governor, the CPUs, the
    #: quota or OMP_*/MKL_* changed since): served only with ``allow_stale=true``; a build request rebuilds it
    stale: bool = False


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
    #: the first failure: its entry, reason and request id (details are in the server log under that id only)
    error: str | None = None
    #: the first failure's reason code: timeout, memory, crash, error, or the service error's type
    reason: str | None = None
    request_id: str | None = None


class NetworkRequest(MeasureSettings):
    """``POST /v1/latency/network``."""

    arch: str = Field(min_length=1, description="architecture string, e.g. [['ds_r1_k3_s1_e1_c16_nre'], ...]")
    resolution: Annotated[int, Field(ge=32, le=INT_CAP), BeforeValidator(_json_int)] = 224
    space: SpaceName = Field("hardcorenas", description="the search space whose table predicts the network")
    stem_size: PositiveInt = Field(NETWORK_STEM_SIZE, description="the stem's output channels (timm's stem_size; "
                                   "16 for mobilenetv3_small_100): a network with another stem or head than the "
                                   "default gets no table prediction")
    num_features: PositiveInt = Field(NETWORK_NUM_FEATURES, description="the head's features before the "
                                      "classifier (timm's num_features; 1024 for mobilenetv3_small_100)")
    confidence: Annotated[float, Field(ge=0.5, le=0.9999), BeforeValidator(_no_bool)] = Field(
        0.95, description="the confidence of the verdict's upper bound: a later measurement is at most "
        "verdict.upper_ms with it (a search asks its k-th verdict at 1 - (1 - c) / 2^k)")


class ReferenceFigure(BaseModel):
    """The drift reference network measured alongside a network (interleaved rounds)."""

    arch: str
    measured_ms: float
    table_ms: float


class Verdict(BaseModel):
    """What the device's measurements let one say about a network: its typical latency and an upper bound that a
    later measurement stays under with the stated confidence."""

    #: the latency at the device's typical speed: (network / reference ratio) x the reference's typical figure
    central_ms: float
    #: one-sided upper prediction bound of a later measurement's median at ``confidence``
    upper_ms: float
    confidence: float
    #: rounds taken (the sequential rule's stop) and reference figures in the device's history
    rounds: int
    history: int
    #: network / reference, geometric mean over the rounds
    ratio: float
    #: the reference's typical figure (the median of its history)
    reference_typical_ms: float
    #: log-standard deviations: the device's speed (reference history) and the per-round ratio
    sd_device: float
    sd_ratio: float
    #: which bound was the larger: "normal" (t quantile) or "empirical" (the history's own quantile)
    quantile: str
    #: the device's speed split: drift between measurements and jitter between the rounds of one (log-sds; None
    #: where the history has too few series to tell them apart and all of its spread counts as drift)
    sd_drift: float | None = None
    sd_jitter: float | None = None
    #: log-sd of the network's ratio to the reference between measurements, and where it came from: "repeats"
    #: (networks measured more than once on this configuration) or "device" (too few: taken as the device's drift)
    sd_ratio_drift: float | None = None
    ratio_drift_source: str | None = None
    #: in words, when the bound is more than the server's ``too_noisy_ratio`` times the central figure: the
    #: device's drift, the best bound reachable now and what would help (``None`` otherwise)
    noise_warning: str | None = None
    method: str
    #: the raw rounds: each round's median of the network and of the reference, timed back to back
    network_rounds_ms: list[float] = Field(default_factory=list)
    reference_rounds_ms: list[float] = Field(default_factory=list)


class NetworkResponse(BaseModel):
    fingerprint: str
    measured: LatencyStats
    #: the table's prediction now: corrected and drift-compensated, ``predicted_table_ms * table_level_factor *
    #: drift_ratio`` (the device's speed as the reference timed beside this network shows it, in full, and the
    #: table's level as other networks measure it now)
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
    #: the exponent of the drift compensation in ``predicted_ms``: 1 on this request's own reference ("request"),
    #: since a change of the device's speed moves every network in full
    drift_elasticity: float | None = None
    drift_elasticity_source: str | None = None
    #: the reference's smoothed level now, for comparison with this request's (the median of its recent figures,
    #: this request's rounds included), how
    #: many figures it rests on, and where they came from: "window" (several measurements within the server's
    #: window) or "request" (this request's rounds alone)
    drift_level_ms: float | None = None
    drift_level_source: str | None = None
    drift_level_figures: int | None = None
    #: the table's level now: other networks' recent figures (normalised by their own reference rounds) over the
    #: table's, their mean shrunk by their count; ``predicted_ms`` includes it. 1 until other networks are measured
    table_level_factor: float | None = None
    table_level_networks: int | None = None
    reference: ReferenceFigure | None = None
    #: the figure at the speed the device had when the table was built, comparable across time: the reference's
    #: table latency times the median over rounds of (network / reference), each round timing both back to back
    #: (``None`` without a drift reference). Use it to compare figures taken at different times.
    normalized_ms: float | None = None
    #: max minus min of the per-round normalised figures
    normalized_spread_ms: float | None = None
    #: the verdict: central figure and upper bound at the request's confidence (``None`` without a drift reference)
    verdict: Verdict | None = None


class ModelRequest(MeasureSettings):
    """``POST /v1/latency/model`` as JSON: a timm model by name, built with random weights (an ONNX file comes as
    ``multipart/form-data`` instead: the file in ``file``, these settings as form fields)."""

    timm: str = Field(min_length=1, max_length=200, description="a timm model name, e.g. mobilenetv3_small_100")
    resolution: Annotated[int, Field(ge=32, le=INT_CAP), BeforeValidator(_json_int)] = 224
    confidence: Annotated[float, Field(ge=0.5, le=0.9999), BeforeValidator(_no_bool)] = Field(
        0.95, description="the confidence of the verdict's upper bound")
    profile: bool = Field(False, description="add ONNX Runtime's per-operator profile (onnxruntime backend)")


class OperatorTime(BaseModel):
    """One operator of the model in ONNX Runtime's profile: its mean time per run."""

    name: str
    op_type: str
    mean_ms: float


class ModelResponse(BaseModel):
    """A model's verdict on this device, beside its size, its compute and the memory its session takes."""

    fingerprint: str
    #: ``timm:<name>`` or ``onnx:<sha256 of the file>``
    model: str
    resolution: int
    measured: LatencyStats
    rounds: list[LatencyStats] = Field(default_factory=list)
    spread_ms: float = 0.0
    #: the drift reference's median over this measurement's rounds (``None`` without a drift reference)
    reference_ms: float | None = None
    verdict: Verdict | None = None
    #: parameters (timm: ``sum(p.numel())``; ONNX: the initializers' elements)
    parameters: int
    #: multiply-accumulates of one forward pass of the batch: convolutions and matrix products
    macs: int
    #: the measured session's peak memory above the worker's resident set before it (``None`` where unknown)
    peak_memory_bytes: int | None = None
    memory_source: str = ""
    #: the operators taking the most time (``profile: true`` only)
    profile: list[OperatorTime] | None = None
    #: an ONNX file measured before at this configuration and confidence: its stored answer
    cached: bool = False


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
    #: another server holds this device: this one serves stored figures only
    read_only: bool = False
    read_only_reason: str | None = None
    #: why the status is "unavailable" (empty when "ok")
    reasons: list[str] = Field(default_factory=list)


class CurrentTask(BaseModel):
    label: str
    running_s: float
    #: requests waiting for it (merged requests share one task)
    waiters: int = 0


class LastVerdict(BaseModel):
    """The newest whole-network verdict of this server process; no arch string (a client's networks are its own)."""

    central_ms: float
    upper_ms: float
    confidence: float
    measured_ms: float
    predicted_ms: float | None = None
    backend: str
    threads: int
    batch_size: int
    resolution: int
    at: str


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
    #: another server holds this device: this one serves stored figures only
    read_only: bool = False
    read_only_reason: str | None = None
    #: the newest whole-network verdict since start (``None`` before any)
    last_verdict: LastVerdict | None = None


class TableSummary(BaseModel):
    """One latency table this server's database holds for this device, with its drift now."""

    space: str
    resolution: int
    backend: str
    threads: int
    batch_size: int
    fingerprint: str
    #: entries of the table (the blocks it covers); ``complete`` once every one is measured
    entries: int
    complete: bool
    #: when the table was complete (``None`` while it builds)
    built_at: str | None = None
    #: the correction's leave-one-out error over the fit networks, per cent (``None`` without a correction)
    loo_error_pct: float | None = None
    #: the drift reference's level when the table was built, ms
    reference_ms: float | None = None
    #: the drift reference's newest figure on this configuration, ms, and when it was measured
    reference_now_ms: float | None = None
    reference_now_at: str | None = None
    #: ``reference_now_ms / reference_ms``: above 1, the device runs slower than when the table was built
    drift_ratio: float | None = None


class TablesResponse(BaseModel):
    """``GET /v1/tables``: the tables this server holds."""

    tables: list[TableSummary]


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorItem] | str
    #: the id under which a server fault is logged (5xx only)
    request_id: str | None = None
