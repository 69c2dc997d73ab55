"""Channel reordering of the heaviest network by importance, before it seeds the supernet.

The supernet's narrower options take the *leading* channels of each block's expansion (and of its squeeze-excite
reduction). Sorting those channels by importance first lets a narrow child keep the channels that matter most
instead of an arbitrary prefix. Importance is first-order Taylor: ``sum |w * dL/dw|`` over the weights that
produce (or, in SE's expansion, consume) a channel, with the cross-entropy gradients accumulated over a per-class
split of the training data in eval mode. An expanded channel's score sums its 1x1 expansion row, its depthwise
filter and its SE-expansion row; SE hidden channels are ordered separately by their reduction row. A permutation
of hidden channels leaves the network's function unchanged, and :func:`reorder_by_importance` checks that it did.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from timm.models._efficientnet_blocks import InvertedResidual
from torch import Tensor, nn

__all__ = ["block_channel_importance", "permute_block_channels", "reorder_by_importance"]


def _row_scores(param: nn.Parameter, dim: int = 0) -> Tensor:
    """``sum |w * grad|`` per slice along ``dim`` (0: output channels, 1: input channels)."""
    taylor = (param.detach() * param.grad).abs()
    other = [d for d in range(taylor.ndim) if d != dim]
    return taylor.sum(dim=other)


def block_channel_importance(block: InvertedResidual) -> tuple[Tensor, Tensor | None]:
    """(importance of each expanded channel, of each SE hidden channel or None) from the gradients in place."""
    mid = _row_scores(block.conv_pw.weight) + _row_scores(block.conv_dw.weight)
    hidden = None
    se = getattr(block, "se", None)
    if isinstance(se, nn.Module) and hasattr(se, "conv_reduce"):
        mid = mid + _row_scores(se.conv_expand.weight)
        hidden = _row_scores(se.conv_reduce.weight)
    return mid, hidden


def _permute_bn(bn: nn.BatchNorm2d, order: Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(bn, name)
        t.data.copy_(t.data[order])


@torch.no_grad()
def permute_block_channels(block: InvertedResidual, mid_order: Tensor, hidden_order: Tensor | None = None) -> None:
    """Reorder the expanded channels (and SE hidden channels) of ``block`` in place: ``new[i] = old[order[i]]``."""
    block.conv_pw.weight.copy_(block.conv_pw.weight[mid_order])
    _permute_bn(block.bn1, mid_order)
    block.conv_dw.weight.copy_(block.conv_dw.weight[mid_order])
    _permute_bn(block.bn2, mid_order)
    se = getattr(block, "se", None)
    if isinstance(se, nn.Module) and hasattr(se, "conv_reduce"):
        se.conv_reduce.weight.copy_(se.conv_reduce.weight[:, mid_order])
        se.conv_expand.weight.copy_(se.conv_expand.weight[mid_order])
        se.conv_expand.bias.copy_(se.conv_expand.bias[mid_order])
        if hidden_order is not None:
            se.conv_reduce.weight.copy_(se.conv_reduce.weight[hidden_order])
            se.conv_reduce.bias.copy_(se.conv_reduce.bias[hidden_order])
            se.conv_expand.weight.copy_(se.conv_expand.weight[:, hidden_order])
    block.conv_pwl.weight.copy_(block.conv_pwl.weight[:, mid_order])


def _searchable_blocks(net: nn.Module) -> list[InvertedResidual]:
    """The inverted-residual blocks whose channels the supernet slices (stages 1 .. n-2 of a timm MobileNetV3)."""
    return [b for stage in list(net.blocks)[1:-1] for b in stage if isinstance(b, InvertedResidual)]


def reorder_by_importance(
    net: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device | str = "cpu", atol: float = 1e-4
) -> int:
    """Sort every searchable block's channels of ``net`` (a heaviest timm ``MobileNetV3``) by descending Taylor
    importance on ``batches`` (images, labels), in place. Raises ``RuntimeError`` if the logits on the first batch
    move by more than ``atol`` relative to their scale. Returns the number of images scored."""
    device = torch.device(device)
    was_training = net.training
    net.to(device).eval()
    requires = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    probe, seen = None, 0
    for images, targets in batches:
        images, targets = images.to(device), targets.to(device)
        if probe is None:
            probe = images
        nn.functional.cross_entropy(net(images), targets, reduction="sum").backward()
        seen += images.shape[0]
    if probe is None:
        raise ValueError("channel reordering needs at least one batch of training images")
    with torch.no_grad():
        before = net(probe)
    for block in _searchable_blocks(net):
        mid, hidden = block_channel_importance(block)
        hidden_order = torch.argsort(hidden, descending=True, stable=True) if hidden is not None else None
        permute_block_channels(block, torch.argsort(mid, descending=True, stable=True), hidden_order)
    for p, r in zip(net.parameters(), requires, strict=True):
        p.grad = None
        p.requires_grad_(r)
    with torch.no_grad():
        after = net(probe)
    scale = before.abs().max().clamp_min(1.0)
    if not torch.allclose(before, after, atol=atol * float(scale), rtol=0):
        raise RuntimeError(f"channel reordering changed the network's output (max difference "
                           f"{(before - after).abs().max().item():.3g})")
    net.train(was_training)
    return seen
