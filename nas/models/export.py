"""Export a network: one self-contained ONNX file (timm's exporter, checked against PyTorch with ONNX Runtime) and
a timm-compatible state dict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["export_checked_onnx", "save_state_dict"]


def export_checked_onnx(model: nn.Module, path: str | Path, *, resolution: int = 224, opset: int = 18) -> float:
    """Write ``model`` (eval mode, dynamic batch axis, input ``input``, output ``logits``) as one ONNX file with
    timm's ``onnx_export`` (dynamo exporter, ONNX checker) and return the largest absolute difference between ONNX
    Runtime's and PyTorch's outputs on a random input. timm's own forward check only asserts; the difference is
    computed here so it can be reported."""
    from timm.utils.onnx import onnx_export, onnx_forward

    model = model.eval().cpu()
    x = torch.randn(1, 3, resolution, resolution)
    onnx_export(
        model,
        str(path),
        example_input=x,
        opset=opset,
        use_dynamo=True,
        input_names=["input"],
        output_names=["logits"],
        external_data=False,  # one self-contained file
        check=True,
    )
    with torch.no_grad():
        ref = model(x).numpy()
    got = onnx_forward(str(path), x)
    return float(np.abs(got - ref).max())


def save_state_dict(model: nn.Module, path: str | Path) -> None:
    """The plain state dict (timm ``MobileNetV3`` names) that ``timm`` networks of the same string load strictly."""
    torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, path)
