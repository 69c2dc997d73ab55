"""Device fingerprints: hardware + software + measuring settings -> a stable hash.

The hash covers the CPU model, core count, GPU model and driver (where present), torch and ONNX Runtime
versions, the backend, thread count and batch size, and the measurement method's version. Figures stored
under one fingerprint are never served under another.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METHOD_VERSION", "DeviceFingerprint", "cpu_model", "fingerprint_for", "gpu_info", "hardware_info"]

#: Bump when the way figures are measured changes so that old figures stop matching.
METHOD_VERSION = 1


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.lru_cache(maxsize=1)
def gpu_info() -> dict[str, Any] | None:
    """GPU model, count and driver if torch sees a CUDA device, else None."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        info: dict[str, Any] = {
            "gpu_model": torch.cuda.get_device_name(0),
            "gpu_count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
            "gpu_driver": None,
        }
    except Exception:  # noqa: BLE001 - a broken CUDA install means "no GPU"
        return None
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=10, check=True,
            ).stdout.strip().splitlines()
            info["gpu_driver"] = out[0].strip() if out else None
        except (OSError, subprocess.SubprocessError):
            pass
    return info


@functools.lru_cache(maxsize=1)
def hardware_info() -> dict[str, Any]:
    """Hardware facts that enter the fingerprint."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        "machine": platform.machine(),
        "gpu_model": None,
        "gpu_driver": None,
    }
    gpu = gpu_info()
    if gpu:
        info["gpu_model"] = gpu["gpu_model"]
        info["gpu_driver"] = gpu["gpu_driver"]
    return info


@functools.lru_cache(maxsize=1)
def software_info() -> dict[str, Any]:
    """Library versions that enter the fingerprint (plus informative ones that do not)."""
    import onnxruntime
    import torch

    return {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "method_version": METHOD_VERSION,
    }


_HASHED_HARDWARE = ("cpu_model", "cpu_count", "gpu_model", "gpu_driver")
_HASHED_SOFTWARE = ("torch", "onnxruntime", "method_version")


@dataclass(frozen=True)
class DeviceFingerprint:
    """The identity every stored figure belongs to."""

    backend: str
    threads: int
    batch_size: int
    hardware: dict[str, Any] = field(default_factory=hardware_info, compare=False)
    software: dict[str, Any] = field(default_factory=software_info, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def hashed_fields(self) -> dict[str, Any]:
        """Exactly what the hash covers."""
        return {
            "hardware": {k: self.hardware.get(k) for k in _HASHED_HARDWARE},
            "software": {k: self.software.get(k) for k in _HASHED_SOFTWARE},
            "backend": self.backend,
            "threads": self.threads,
            "batch_size": self.batch_size,
            **({"extra": self.extra} if self.extra else {}),
        }

    @property
    def id(self) -> str:
        """A stable 24-hex-digit hash of :meth:`hashed_fields`."""
        text = json.dumps(self.hashed_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def fingerprint_for(
    backend: str, threads: int, batch_size: int, *, onnx_exporter: str | None = None,
    hardware: dict[str, Any] | None = None, software: dict[str, Any] | None = None,
) -> DeviceFingerprint:
    """The fingerprint of this device for the given settings (the ONNX exporter counts for onnxruntime).

    ``hardware`` and ``software`` default to this process's (which imports torch); the server passes what its
    measurement worker reported instead.
    """
    extra = {"onnx_exporter": onnx_exporter} if backend == "onnxruntime" and onnx_exporter else {}
    return DeviceFingerprint(backend=backend, threads=threads, batch_size=batch_size,
                             hardware=hardware if hardware is not None else hardware_info(),
                             software=software if software is not None else software_info(), extra=extra)
