"""The fingerprint notices every change that moves latency: library versions, the exporter's opset, ONNX Runtime's
session options, the CPU governor, the process's CPU affinity and cgroup quota, and OMP_*/MKL_* settings."""

from __future__ import annotations

from typing import Any

import pytest

from latency_server.worker import fingerprint
from latency_server.worker.fingerprint import DeviceFingerprint, fingerprint_for

HARDWARE = {"cpu_model": "test cpu", "cpu_count": 8, "gpu_model": None, "gpu_driver": None}
SOFTWARE = {"torch": "2.0", "onnxruntime": "1.0", "method_version": 1, "timm": "1.0.0", "onnx_opset": 18,
            "ort_session": {"graph_optimization_level": "ORT_ENABLE_ALL", "execution_mode": "ORT_SEQUENTIAL",
                            "inter_op_num_threads": 1, "intra_op_num_threads": 1},
            "cpu_governor": "performance", "cpu_affinity": "0-7", "cpu_quota": None, "thread_env": {}}


def _id(backend: str = "onnxruntime", **software: Any) -> str:
    return DeviceFingerprint(backend, 1, 1, hardware=HARDWARE, software={**SOFTWARE, **software}).id


@pytest.mark.parametrize("change", [
    {"timm": "1.0.1"},
    {"onnx_opset": 17},
    {"ort_session": {**SOFTWARE["ort_session"], "graph_optimization_level": "ORT_ENABLE_BASIC"}},
    {"ort_session": {**SOFTWARE["ort_session"], "execution_mode": "ORT_PARALLEL"}},
    {"ort_session": {**SOFTWARE["ort_session"], "inter_op_num_threads": 4}},
    {"cpu_governor": "powersave"},
    {"cpu_affinity": "0-3"},
    {"cpu_quota": "200000 100000"},
    {"thread_env": {"OMP_WAIT_POLICY": "PASSIVE"}},
])
def test_each_change_yields_a_new_fingerprint(change: dict[str, Any]) -> None:
    assert _id(**change) != _id()


def test_runtime_settings_of_onnx_runtime_do_not_move_a_torch_fingerprint() -> None:
    assert _id("torch-cpu", onnx_opset=17) == _id("torch-cpu")
    assert _id("torch-cpu", cpu_governor="powersave") != _id("torch-cpu")


@pytest.mark.parametrize(("probe", "value"), [
    ("cpu_governor", "powersave"), ("cpu_affinity", "0"), ("cpu_quota", "50000 100000"),
    ("thread_env", {"OMP_NUM_THREADS": "3"}),
])
def test_this_process_probes_enter_its_fingerprint(monkeypatch: pytest.MonkeyPatch, probe: str, value: Any) -> None:
    before = fingerprint_for("onnxruntime", 1, 1, hardware=HARDWARE, software=fingerprint.software_info())
    monkeypatch.setattr(fingerprint, probe, lambda: value)
    after = fingerprint_for("onnxruntime", 1, 1, hardware=HARDWARE, software=fingerprint.software_info())
    assert after.software[probe] == value and after.id != before.id


def test_the_environment_probes_read_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("MKL_DYNAMIC", "FALSE")
    monkeypatch.setenv("UNRELATED_SETTING", "1")
    assert fingerprint.thread_env() == {"MKL_DYNAMIC": "FALSE", "OMP_WAIT_POLICY": "PASSIVE",
                                        **{k: v for k, v in os.environ.items() if k.startswith(("OMP_", "MKL_"))}}
    assert len(fingerprint.expand_cpus(fingerprint.cpu_affinity())) == len(os.sched_getaffinity(0))
    assert fingerprint.cpu_governor() is None or isinstance(fingerprint.cpu_governor(), str)
