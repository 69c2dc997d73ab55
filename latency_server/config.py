"""Server settings: every option from ``LATENCY_SERVER_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    device_lock: str = Field(
        "", description="lock file held by the one server that measures on this device; empty = a file in the "
        "system temp directory named after the device (share it between containers on one machine)"
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
    verdict_history_hours: float = Field(24.0, gt=0.0, description="oldest figure of that history, in hours")
    time_scale: float = Field(1.0, gt=0, description="test hook: multiplies every timed duration (1 in use)")

    # -- whole-network correction and drift compensation -------------------------------------------
    calibration_networks: int = Field(
        12, ge=0, description="random networks (plus the lightest and heaviest) measured to fit a table's "
        "correction; 0 = serve raw sums only"
    )
    calibration_rounds: int = Field(3, ge=1, description="independent interleaved rounds of the fit networks")
    calibration_seed: int = Field(
        7_001, description="seed of the fit networks (accuracy benchmarks must sample with other seeds)"
    )
    correction_features: str = Field("scale,per_block", description="global parameters of the correction")
    drift_reference: bool = Field(
        True, description="measure the reference network with every table build and network measurement"
    )
    onnx_exporter: str = Field("torchscript", pattern="^(torchscript|dynamo)$")
    default_threads: int = Field(1, ge=1)

    # -- input limits (guard memory and time) ---------------------------------------------------------
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body (413 beyond)")
    max_channels: int = Field(4096, ge=1)
    max_exp_ratio: int = Field(8, ge=1, description="largest expansion ratio of a block or arch-string block")
    max_resolution: int = Field(1024, ge=1)
    max_batch_size: int = Field(256, ge=1)
    max_kernel: int = Field(11, ge=1)
    max_threads: int = Field(64, ge=1)
    max_blocks_per_request: int = Field(256, ge=1)
    max_arch_length: int = Field(4096, ge=1)
    max_network_blocks: int = Field(64, ge=1)
    max_num_classes: int = Field(100000, ge=1)
    max_activation_elements: int = Field(1 << 28, ge=1, description="batch x channels x H x W of any tensor")

    def database_url(self) -> str:
        """The SQLAlchemy URL, defaulting to ``sqlite:///<data_dir>/latency.db``."""
        if self.db:
            return self.db
        return f"sqlite:///{self.data_dir / 'latency.db'}"

