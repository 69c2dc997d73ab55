"""Export a network: ONNX (checked against PyTorch with ONNX Runtime) and a timm-compatible state dict."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["export_onnx", "save_state_dict"]


def export_onnx(model: nn.Module, path: str | Path, *, resolution: int = 224, opset: int = 18) -> float:
    """Write ``model`` (eval mode, batch 1, dynamic batch axis) as one self-contained ONNX file and return the
    largest absolute difference between ONNX Runtime's and PyTorch's outputs on a random input."""
    import onnx
    import onnxruntime as ort

    model = model.eval().cpu()
    x = torch.randn(1, 3, resolution, resolution)
    buf = io.BytesIO()
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    onnx.save_model(program.model_proto, buf)
    data = buf.getvalue()
    Path(path).write_bytes(data)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return float(np.abs(got - ref).max())


def save_state_dict(model: nn.Module, path: str | Path) -> None:
    """The plain state dict (timm ``MobileNetV3`` names) that ``timm`` networks of the same string load strictly."""
    torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, path)
