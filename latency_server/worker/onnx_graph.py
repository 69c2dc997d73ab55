"""An uploaded ONNX graph checked and costed from the graph itself (run in the worker's child; never allocates
the weights a graph merely declares).

Refused: anything that is not a valid ONNX model (:func:`onnx.checker.check_model`), weights stored outside
the file, operators of a custom domain, control flow (``Loop``, ``Scan``, ``If``: their cost is not known
from the shapes), inputs without a fully static shape, and graphs over the parameter limit (counted from the
initializers' declared dimensions, before the checker or shape inference runs).
"""

from __future__ import annotations

import math

import onnx
from google.protobuf.message import DecodeError
from onnx import shape_inference

from latency_server.worker.model_tasks import ModelInspection

__all__ = ["inspect_onnx"]

_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}
_CONTROL_FLOW = {"Loop", "Scan", "If"}


def _refused(msg: str, where: str = "file") -> ModelInspection:
    return ModelInspection(error=msg, where=where)


def _dims(shape: onnx.TypeProto) -> list[int] | None:
    """A tensor type's dimensions, or ``None`` unless every one is a positive number."""
    if not shape.HasField("tensor_type") or not shape.tensor_type.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in shape.tensor_type.shape.dim]
    return dims if all(d > 0 for d in dims) else None


def _nodes(graph: onnx.GraphProto):
    """Every node, also those of subgraphs held in attributes."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _nodes(sub)


def _macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of convolutions and matrix products, from the inferred shapes (batch included)."""
    shapes = {}
    graph = model.graph
    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = _dims(info.type)
        if dims is not None:
            shapes[info.name] = dims
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in graph.node:
        out = shapes.get(node.output[0]) if node.output else None
        if out is None:
            continue
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in shapes:
            weight = shapes[node.input[1]]  # (c_out, c_in / groups, k...)
            total += math.prod(out) * math.prod(weight[1:])
        elif node.op_type in ("Gemm", "MatMul") and node.input[0] in shapes:
            total += math.prod(out) * shapes[node.input[0]][-1]
    return total


def inspect_onnx(data: bytes, max_parameters: int) -> ModelInspection:
    """The graph's figures, or the reason it is refused."""
    if data[:4] == b"PK\x03\x04":
        return _refused("file: a zip archive, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        return _refused(f"file: not an ONNX model (the protobuf does not parse: {type(exc).__name__})")
    graph = model.graph
    if not graph.node:
        return _refused("file: not an ONNX model (no graph nodes)")
    for init in graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL or init.external_data:
            return _refused(f"file: initializer {init.name!r} keeps its data outside the file (external data is "
                            "not accepted: export with the weights inside)")
    parameters = sum(math.prod(init.dims) for init in graph.initializer)
    if parameters > max_parameters:
        return _refused(f"file: {parameters} parameters exceed the limit {max_parameters} "
                        "(LATENCY_SERVER_MAX_PARAMETERS)")
    for opset in model.opset_import:
        if opset.domain not in _STANDARD_DOMAINS:
            return _refused(f"file: operator domain {opset.domain!r} is custom; only standard ONNX operators run")
    for node in _nodes(graph):
        if node.domain not in _STANDARD_DOMAINS:
            return _refused(f"file: operator {node.op_type!r} of custom domain {node.domain!r}; only standard "
                            "ONNX operators run")
        if node.op_type in _CONTROL_FLOW:
            return _refused(f"file: control flow ({node.op_type}) is not accepted: its cost is not known from the "
                            "graph's shapes")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        return _refused(f"file: the ONNX checker refuses the model: {str(exc).splitlines()[0][:300]}")
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        return _refused("file: the graph has no inputs")
    for info in inputs:
        if _dims(info.type) is None:
            return _refused(f"file: input {info.name!r} has no static shape (every dimension must be a number)")
    try:
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as exc:
        return _refused(f"file: shape inference fails: {str(exc).splitlines()[0][:300]}")
    infos = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    activations = max((math.prod(d) for d in (_dims(i.type) for i in infos) if d is not None), default=0)
    first = _dims(inputs[0].type) or [1]
    resolution = first[2] if len(first) == 4 else None
    return ModelInspection(parameters=parameters, macs=_macs(inferred), activation_elements=activations,
                           layers=len(graph.node), batch_size=first[0] if len(first) >= 2 else 1,
                           resolution=resolution)
