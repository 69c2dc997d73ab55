"""Training losses: smoothed CE, knowledge distillation and the in-place distillation of one-shot training."""

from __future__ import annotations

import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy
from torch import Tensor, nn

__all__ = ["classification_loss", "distillation_loss", "kd_kl", "network_features"]


def classification_loss(smoothing: float) -> nn.Module:
    """Cross entropy, label-smoothed when ``smoothing`` > 0 (timm's loss)."""
    return LabelSmoothingCrossEntropy(smoothing) if smoothing > 0 else nn.CrossEntropyLoss()


def kd_kl(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """``KL(softmax(t) || softmax(s))``, batch mean (temperature 1)."""
    return F.kl_div(
        F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1), reduction="batchmean", log_target=True
    )


def distillation_loss(
    student_logits: Tensor,
    student_feats: list[Tensor],
    teacher_logits: Tensor,
    teacher_feats: list[Tensor],
    *,
    gamma: float,
    ikd_divisor: float,
    real_kd: bool = True,
) -> Tensor:
    """``gamma * (sum of stage-feature MSEs / ikd_divisor + KD)``; KD is KL (``real_kd``) or the logits' MSE."""
    feat = sum(F.mse_loss(s, t) for s, t in zip(student_feats, teacher_feats, strict=True))
    kd = kd_kl(student_logits, teacher_logits) if real_kd else F.mse_loss(student_logits, teacher_logits)
    return gamma * (feat / ikd_divisor + kd)


def network_features(net: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Logits plus the stem output and every stage output of a timm ``MobileNetV3`` (8 tensors here)."""
    feats = []
    x = net.bn1(net.conv_stem(x))
    feats.append(x)
    for stage in net.blocks:
        x = stage(x)
        feats.append(x)
    return net.forward_head(x), feats
