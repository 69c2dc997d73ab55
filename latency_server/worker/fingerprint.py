"""Device fingerprints: hardware + software + measuring settings -> a stable hash.

The hash covers the CPU model, core count, GPU model and driver (where present), torch, timm and ONNX Runtime
versions, the backend, thread count and batch size, and the measurement method's version; and what else moves
latency without a code change: the CPU frequency governor (where readable), the CPUs the process may run on
(affinity) and its cgroup CPU quota, ``OMP_*``/``MKL_*`` settings, and for ONNX Runtime the exporter's opset and
the session options the backend sets (reported by the worker). Figures stored under one fingerprint are never
served under another; a table of an older fingerprint of the same device and settings is stale.
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

from latency_server.worker.discipline import parse_cpus

__all__ = ["METHOD_VERSION", "DeviceFingerprint", "cpu_affinity", "cpu_governor", "cpu_model", "cpu_quota",
           "environment_info", "expand_cpus", "fingerprint_for", "gpu_info", "hardware_info", "software_info",
           "thread_env"]

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


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def cpu_governor() -> str | None:
    """CPU 0's frequency governor (``performance``, ``powersave``, ...), ``None`` where unreadable."""
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def _ranges(cpus: list[int]) -> str:
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and runs[-1][1] == cpu - 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def expand_cpus(text: str) -> list[int]:
    """The CPUs of a list like ``0-3,6`` (the inverse of how :func:`cpu_affinity` writes them)."""
    return list(parse_cpus(text))


def cpu_affinity() -> str | None:
    """The CPUs this process may run on, as ranges (``os.cpu_count()`` counts the machine's, not these)."""
    try:
        return _ranges(list(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return None


def cpu_quota() -> str | None:
    """The cgroup CPU quota: v2 ``cpu.max`` (``max 100000`` = none), else v1 ``quota period``; ``None`` if neither."""
    quota = _read("/sys/fs/cgroup/cpu.max")
    if quota is not None:
        return quota
    for base in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):
        v1 = _read(f"{base}/cpu.cfs_quota_us")
        if v1 is not None:
            return f"{v1} {_read(f'{base}/cpu.cfs_period_us')}"
    return None


def thread_env() -> dict[str, str]:
    """``OMP_*`` and ``MKL_*`` settings of this process (they set the math libraries' threading)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OMP_", "MKL_"))}


def environment_info() -> dict[str, Any]:
    """What moves latency besides the libraries, read afresh on every call (it can change between workers)."""
    return {"cpu_governor": cpu_governor(), "cpu_affinity": cpu_affinity(), "cpu_quota": cpu_quota(),
            "thread_env": thread_env()}


@functools.lru_cache(maxsize=1)
def _library_info() -> dict[str, Any]:
    import onnxruntime
    import timm
    import torch

    return {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "method_version": METHOD_VERSION,
    }


def software_info() -> dict[str, Any]:
    """Library versions and the environment that enter the fingerprint (plus informative ones that do not)."""
    return {**_library_info(), **environment_info()}


_HASHED_HARDWARE = ("cpu_model", "cpu_count", "gpu_model", "gpu_driver")
_HASHED_SOFTWARE = ("torch", "timm", "onnxruntime", "method_version", "cpu_governor", "cpu_affinity", "cpu_quota",
                    "thread_env")
#: reported by the worker for the ONNX Runtime backend; they move only that backend's figures
_HASHED_ORT = ("onnx_opset", "ort_session")


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
            "software": {k: self.software.get(k) for k in _HASHED_SOFTWARE
                         + (_HASHED_ORT if self.backend == "onnxruntime" else ())},
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
