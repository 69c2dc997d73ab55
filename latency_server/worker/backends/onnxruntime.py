"""ONNX Runtime on the CPU execution provider, full graph optimisation, as deployed; export in memory."""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from latency_server.worker.backends.base import Backend, Runner

__all__ = ["OnnxRuntimeBackend", "export_onnx", "runtime_settings"]

OPSET = 18
#: exported whole networks kept for repeated requests (the drift reference, re-measured networks)
EXPORT_CACHE_BYTES = 256 << 20


def export_onnx(module: nn.Module, example: torch.Tensor, exporter: str = "torchscript") -> bytes:
    """The ONNX model of ``module`` as bytes, weights inlined (no files written).

    ``torchscript`` (``dynamo=False``) takes ~0.1 s per block; ``dynamo`` ~0.6 s per block.
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            with contextlib.redirect_stdout(io.StringIO()):
                program = torch.onnx.export(module, (example,), dynamo=True, verbose=False, opset_version=OPSET)
            return program.model_proto.SerializeToString()
        if exporter != "torchscript":
            raise ValueError(f"onnx_exporter: unknown exporter {exporter!r}, expected torchscript or dynamo")
        buffer = io.BytesIO()
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=OPSET, do_constant_folding=True,
            input_names=["input"], output_names=["output"],
        )
        return buffer.getvalue()


class _OrtRunner(Runner):
    def __init__(self, session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> None:
        self.session = session
        self.feed = feed
        self.outputs = [o.name for o in session.get_outputs()]

    def run(self) -> None:
        self.session.run(self.outputs, self.feed)

    def timed(self) -> float:
        start = time.perf_counter()
        self.session.run(self.outputs, self.feed)
        return time.perf_counter() - start

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


class OnnxRuntimeBackend(Backend):
    """ORT CPU provider; ``intra_op_num_threads = threads``, one inter-op thread, sequential execution."""

    name = "onnxruntime"

    def __init__(self, threads: int = 1, exporter: str = "torchscript") -> None:
        super().__init__(threads)
        if exporter not in ("torchscript", "dynamo"):
            raise ValueError(f"onnx_exporter: unknown exporter {exporter!r}, expected torchscript or dynamo")
        self.exporter = exporter
        self._exports: OrderedDict[Hashable, bytes] = OrderedDict()  # least recently used first

    def _remember(self, key: Hashable, model: bytes) -> None:
        self._exports[key] = model
        while len(self._exports) > 1 and sum(len(m) for m in self._exports.values()) > EXPORT_CACHE_BYTES:
            self._exports.popitem(last=False)

    def session_options(self) -> ort.SessionOptions:
        """Session options as deployed: full graph optimisation, explicit threads."""
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return options

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        return self.factory(module, example)()

    def factory(
        self, module: nn.Module, example: torch.Tensor, *, cache_key: Hashable | None = None
    ) -> Callable[[], Runner]:
        """Export once (or reuse the export cached under ``cache_key``); every call opens a fresh session."""
        self.apply_threads()
        model = self._exports.get(cache_key) if cache_key is not None else None
        if model is None:
            model = export_onnx(module, example, self.exporter)
            if cache_key is not None:
                self._remember(cache_key, model)
        else:
            self._exports.move_to_end(cache_key)
        data = example.detach().cpu().numpy().astype(np.float32)

        def session() -> Runner:
            self.apply_threads()
            sess = ort.InferenceSession(model, self.session_options(), providers=["CPUExecutionProvider"])
            return _OrtRunner(sess, {sess.get_inputs()[0].name: data})

        return session

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "onnxruntime": ort.__version__,
            "provider": "CPUExecutionProvider",
            "graph_optimization": "ORT_ENABLE_ALL",
            "inter_op_threads": 1,
            "execution_mode": "sequential",
            "exporter": self.exporter,
            "opset": OPSET,
        }


def runtime_settings() -> dict[str, Any]:
    """The exporter's opset and the session options this backend sets, for the fingerprint (the intra-op threads
    as set for one thread: they follow the request's ``threads``, which the fingerprint holds)."""
    options = OnnxRuntimeBackend(threads=1).session_options()
    return {"onnx_opset": OPSET,
            "ort_session": {"graph_optimization_level": str(options.graph_optimization_level).rsplit(".", 1)[-1],
                            "execution_mode": str(options.execution_mode).rsplit(".", 1)[-1],
                            "intra_op_num_threads": options.intra_op_num_threads,
                            "inter_op_num_threads": options.inter_op_num_threads}}
