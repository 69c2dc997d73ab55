"""Server settings: every option from ``LATENCY_SERVER_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.api_schemas import MAX_BLOCKS_PER_REQUEST

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    """Where the default SQLite file lives (``~/.local/share/hardcore-nas``)."""
    return Path.home() / ".local" / "share" / "hardcore-nas"


class Settings(BaseSettings):
    """Settings of one latency server (one target device)."""

    model_config = SettingsConfigDict(env_prefix="LATENCY_SERVER_", extra="ignore")

    # -- service --------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    db: str = Field("", description="SQLAlchemy URL; empty = a SQLite file in data_dir; PostgreSQL: "
                    "postgresql+psycopg://user:password@host:5432/database (pip install '.[postgres]')")
    data_dir: Path = Field(default_factory=default_data_dir)
    token: SecretStr | None = Field(None, description="if set, measuring endpoints need 'Bearer <token>'")
    allow_unauthenticated: bool = Field(
        False, description="serve on a non-loopback address without a token (anyone who reaches it may measure)"
    )
    allowed_hosts: str = Field(
        "", description="comma-separated Host names this server answers to besides the loopback names, the bind "
        "address and (bound beyond loopback) IP addresses: a DNS-rebinding guard; '*' = any"
    )
    device_lock: str = Field(
        "", description="lock file held by the one server that measures on this device; empty = a file in the "
        "lock directory named after the device (share it between containers on one machine)"
    )
    lock_dir: str = Field(
        "", description="directory of the device lock file (created owner-only); empty = beside the SQLite "
        "database, else /run/lock when writable, else the system temp directory; put it on a volume shared by "
        "the containers of one device"
    )
    log_level: str = "info"
    progress: bool = Field(True, description="log progress of table builds")

    # -- measurement method --------------------------------------------------------------------------
    warmup: int = Field(10, ge=1, description="warm-up runs before timing (>= 10 in production)")
    min_repeats: int = Field(30, ge=1, description="floor on the number of timed runs")
    max_repeats: int = Field(20000, ge=1, description="ceiling on the number of timed runs")
    budget_s: float = Field(0.25, ge=0.0, description="time budget per measurement (timed runs fill it)")
    network_rounds: int = Field(
        7, ge=1, description="least rounds of a network measurement (each a fresh session of the network and of "
        "the drift reference, back to back); the median of the network's rounds is its raw figure"
    )
    # -- network verdicts: a central figure and an upper bound at a confidence -----------------------
    verdict_max_rounds: int = Field(
        25, ge=1, description="most rounds of a network measurement (the sequential rule stops earlier once more "
        "rounds could hardly tighten the bound)"
    )
    verdict_round_gap_s: float = Field(0.5, ge=0.0, le=60.0, description="pause between rounds (spreads them in time)")
    verdict_share: float = Field(
        0.1, gt=0.0, le=1.0, description="sequential rule: stop once the ratio's estimation error is at most this "
        "share of the bound's variance"
    )
    verdict_history: int = Field(
        200, ge=2, description="newest figures of the drift reference that describe the device's variability"
    )
    verdict_drift_floor: float = Field(
        0.03, ge=0.0, le=1.0, description="the least drift of the device's level between measurements (log-sd) a "
        "verdict's bound counts: a history of a few minutes can look steadier than the device will be after the "
        "verdict (a load that starts later); 0 takes the history's estimate as it is"
    )
    verdict_history_hours: float = Field(24.0, gt=0.0, description="oldest figure of that history, in hours")
    time_scale: float = Field(1.0, gt=0, description="test hook: multiplies every timed duration (1 in use)")

    # -- whole-network correction and drift compensation -------------------------------------------
    calibration_networks: int = Field(
        12, ge=0, description="random networks (plus the lightest and heaviest) measured to fit a table's "
        "correction; 0 = serve raw sums only"
    )
    calibration_rounds: int = Field(3, ge=1, description="independent interleaved rounds of the fit networks")
    calibration_reference_sessions: int = Field(
        4, ge=1, le=16, description="fresh sessions of the drift reference spread over each calibration round (its "
        "figure can jump between sessions; the table's reference level is the median of all of them)"
    )
    calibration_seed: int = Field(
        7_001, description="seed of the fit networks (accuracy benchmarks must sample with other seeds)"
    )
    correction_features: str = Field("scale,per_block", description="global parameters of the correction")
    drift_reference: bool = Field(
        True, description="measure the reference network with every table build and network measurement"
    )
    drift_elasticity_prior: float = Field(
        0.75, ge=0.0, le=1.0, description="prior of the between-request slope of log(network) on log(reference), "
        "reported with each stored measurement as a diagnostic (predictions follow this request's reference with "
        "exponent 1)"
    )
    drift_elasticity_prior_sd: float = Field(
        0.15, ge=0.0, description="how far the estimate from repeated networks may move from that prior (its "
        "standard deviation in the shrinkage; 0 pins the exponent at the prior)"
    )
    drift_level_window_s: float = Field(
        900.0, gt=0.0, description="the device's smoothed level, reported beside each answer and drawn on the "
        "dashboard: the median of the drift reference's figures within this many seconds (every measurement's "
        "rounds, this request's included); predictions follow this request's own reference"
    )
    table_level_window_s: float = Field(
        600.0, gt=0.0, description="predictions follow the table's level as other networks measured within this "
        "many seconds find it (their figures normalised by their own reference rounds, over the table's): a change "
        "of the networks' ratio to the reference under contention, which the reference's level cannot follow; "
        "contention changes within minutes, and a longer window carries an old condition into new predictions"
    )
    table_level_prior_sd: float = Field(
        0.03, ge=0.0, description="how far the table's level is expected to move after its build (log-sd): the "
        "shrinkage towards the build's level of the median over few networks; 0 keeps the build's level"
    )
    pooled_repeats_per_network: int = Field(
        5, ge=2, description="at most this many measurements of one network count in the statistics pooled over "
        "networks (the ratio's drift, the drift elasticity), newest first: one client repeating a network cannot "
        "move everyone's bounds"
    )
    too_noisy_ratio: float = Field(
        1.5, gt=1.0, description="a verdict whose bound is above this many times its central figure carries a "
        "noise warning: the device's drift, the best bound reachable now and what would help"
    )
    worker_cpus: str = Field(
        "", pattern=r"^$|^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$", max_length=200,
        description="pin the measurement worker (and so the drift reference timed beside each network) to these "
        "CPUs, e.g. 1 or 2-3 (empty: not pinned); the CPU set enters the device fingerprint")
    worker_nice: int = Field(
        0, ge=-20, le=19, description="the measurement worker's nice value (negative raises its priority where the "
        "server may, which needs CAP_SYS_NICE; 0: unchanged)")
    onnx_exporter: str = Field("torchscript", pattern="^(torchscript|dynamo)$")
    default_threads: int = Field(1, ge=1)

    # -- input limits (guard memory and time) ---------------------------------------------------------
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body (413 beyond)")
    max_onnx_bytes: int = Field(64 << 20, ge=1024, description="largest ONNX upload to POST /v1/latency/model "
                                "(the whole multipart body; 413 beyond)")
    max_channels: int = Field(4096, ge=1)
    max_exp_ratio: int = Field(8, ge=1, description="largest expansion ratio of a block or arch-string block")
    max_resolution: int = Field(1024, ge=1)
    max_batch_size: int = Field(256, ge=1)
    max_kernel: int = Field(11, ge=1)
    max_threads: int = Field(64, ge=1)
    max_blocks_per_request: int = Field(MAX_BLOCKS_PER_REQUEST, ge=1, le=MAX_BLOCKS_PER_REQUEST)
    max_arch_length: int = Field(4096, ge=1)
    max_network_blocks: int = Field(64, ge=1)
    max_num_classes: int = Field(100000, ge=1)
    max_activation_elements: int = Field(1 << 28, ge=1, description="batch x channels x H x W of any tensor")

    # -- budgets before work: a request whose estimated cost is over one of these is refused (422) ----
    max_parameters: int = Field(100_000_000, ge=1, description="parameters of any one model measured")
    #: weights, their exported copies and activations of one measurement; the worker's own memory excluded
    max_memory_mb: int = Field(4096, ge=1, description="estimated memory of one measurement")
    #: a table build counts its missing entries and its calibration networks
    max_request_s: float = Field(3600.0, gt=0, description="estimated measuring time of one request's work")
    #: multiply-adds per second, cautious; learned from stored block figures once there are some
    assumed_macs_per_s: float = Field(2e9, gt=0, description="device speed assumed before any figure is stored")

    # -- the measurement worker process: a task over its time or memory limit gets the worker killed and
    #    restarted; the worker is also recycled between tasks after N tasks or M minutes (0 = never) --------
    task_timeout_s: float = Field(900.0, gt=0, description="wall-clock limit of one measurement task")
    refuse_over_timeout: bool = Field(
        True, description="refuse work estimated over TASK_TIMEOUT_S before it is queued (off: the worker is killed "
        "when it runs over; a test hook)")
    task_memory_mb: int = Field(6144, ge=64, description="the worker's resident memory limit while a task runs")
    worker_recycle_tasks: int = Field(1000, ge=0, description="recycle the worker after this many tasks")
    worker_recycle_minutes: float = Field(30.0, ge=0, description="recycle the worker after this many minutes")
    worker_start_timeout_s: float = Field(180.0, gt=0, description="how long a task waits for a worker to start")
    worker_restart_hold_file: Path | None = Field(
        None, description="test hook: while this file exists, a worker that died is not restarted")
    worker_spawn_fail_file: Path | None = Field(
        None, description="test hook: while this file exists, starting a worker process fails")
    #: work that killed or crashed the worker is refused this long, so retrying clients cannot loop
    failure_cooldown_s: float = Field(600.0, ge=0, description="refusal after a kill or crash (0 = none)")

    # -- queue, jobs, health, shutdown ---------------------------------------------------------------
    max_queued_tasks: int = Field(1024, ge=1, description="interactive measurement tasks pending at once (429 above)")
    queue_max_background: int = Field(
        8192, ge=1, description="table-build tasks pending at once (a build that does not fit is refused with 429); "
        "counted apart from interactive tasks, so builds never block requests nor the other way round")
    queue_max_per_client: int = Field(
        0, ge=0, description="interactive tasks one client may have waiting (429 above; 0 = no limit); a client is "
        "its token's hash, or its address without a token")
    max_concurrent_builds: int = Field(
        2, ge=1, description="distinct table builds at once (a further one gets 429; a running build is joined)")
    max_jobs: int = Field(1000, ge=1, description="jobs kept for GET /v1/jobs (finished ones expire first)")
    job_ttl_s: float = Field(3600.0, gt=0, description="how long a finished job stays visible")
    health_timeout_s: float = Field(2.0, gt=0, description="worker ping and database check of /healthz")
    #: pending work is cancelled at once; the running measurement may finish within this time
    shutdown_timeout_s: float = Field(10.0, ge=0, description="time for the running measurement at shutdown")

    def database_url(self) -> str:
        """The SQLAlchemy URL, defaulting to ``sqlite:///<data_dir>/latency.db``."""
        if self.db:
            return self.db
        return f"sqlite:///{self.data_dir / 'latency.db'}"

