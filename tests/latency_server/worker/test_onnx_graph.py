"""An uploaded ONNX graph is checked and costed from the graph alone: hostile graphs are refused with a reason
that names the file, before anything the graph declares is allocated; a plain graph's figures are exact."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from latency_server.worker.onnx_graph import inspect_onnx

LIMIT = 50_000_000


def _model(nodes, inputs, outputs, initializers=(), opsets=(("", 17),)) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def _conv_model(batch: int | str = 1) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8, 16, 16])], [weight])


def test_a_plain_convolution_is_costed_from_its_shapes() -> None:
    seen = inspect_onnx(_conv_model().SerializeToString(), LIMIT)
    assert seen.error is None
    assert seen.parameters == 8 * 3 * 3 * 3
    assert seen.macs == 8 * 16 * 16 * 3 * 3 * 3
    assert seen.activation_elements == 8 * 16 * 16
    assert (seen.resolution, seen.batch_size) == (16, 1)


def test_an_exported_network_counts_every_parameter_and_mac() -> None:
    from shared.builders import build_network
    from shared.costs import count_macs, count_params
    from shared.published import PUBLISHED

    net = build_network(PUBLISHED["A"].arch).eval()
    x = torch.randn(1, 3, 64, 64)
    buffer = io.BytesIO()
    torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=18, do_constant_folding=True)
    seen = inspect_onnx(buffer.getvalue(), LIMIT)
    assert seen.error is None
    # the export folds batch norms into the convolutions: their weights stay, scale and shift become biases
    assert abs(seen.parameters - count_params(net)) / count_params(net) < 0.02
    assert abs(seen.macs - count_macs(net, x)) / count_macs(net, x) < 0.01


@pytest.mark.parametrize(("data", "reason"), [
    (b"PK\x03\x04" + b"\0" * 100, "zip archive"),
    (b"this is not a protobuf at all \xff\xff", "not an ONNX model"),
    (_conv_model().SerializeToString()[:40], "not an ONNX model"),
])
def test_what_is_not_an_onnx_model_is_refused(data: bytes, reason: str) -> None:
    seen = inspect_onnx(data, LIMIT)
    assert seen.error is not None and reason in seen.error and seen.where == "file"


def test_a_dynamic_input_shape_is_refused() -> None:
    seen = inspect_onnx(_conv_model(batch="N").SerializeToString(), LIMIT)
    assert seen.error is not None and "static shape" in seen.error


def test_a_custom_domain_operator_is_refused() -> None:
    model = _model([helper.make_node("MyOp", ["x"], ["y"], domain="com.example")],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                   opsets=(("", 17), ("com.example", 1)))
    seen = inspect_onnx(model.SerializeToString(), LIMIT)
    assert seen.error is not None and "custom" in seen.error


def test_external_data_is_refused() -> None:
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 3, 3, 3])
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="/etc/passwd")
    model = _conv_model()
    model.graph.initializer[0].CopyFrom(weight)
    seen = inspect_onnx(model.SerializeToString(), LIMIT)
    assert seen.error is not None and "external data" in seen.error


def test_a_billion_declared_parameters_are_refused_before_anything_allocates() -> None:
    # an initializer that declares 10^9 elements but carries no data: the file is a few hundred bytes
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000, 1000, 1000])
    model = _model([helper.make_node("Add", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1000, 1000, 1000])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000, 1000, 1000])], [huge])
    data = model.SerializeToString()
    assert len(data) < 1000
    seen = inspect_onnx(data, LIMIT)
    assert seen.error is not None and "parameters exceed the limit" in seen.error


@pytest.mark.parametrize("op", ["Loop", "Scan"])
def test_control_flow_is_refused(op: str) -> None:
    body = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "body",
                             [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
                             [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    if op == "Loop":
        node = helper.make_node("Loop", ["n", "", "x"], ["y"], body=body)
        inputs = [helper.make_tensor_value_info("n", TensorProto.INT64, []),
                  helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])]
    else:
        node = helper.make_node("Scan", ["x"], ["y"], body=body, num_scan_inputs=1)
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])]
    model = _model([node], inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    seen = inspect_onnx(model.SerializeToString(), LIMIT)
    assert seen.error is not None and f"control flow ({op})" in seen.error
