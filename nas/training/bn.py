"""BN recalibration: re-estimate running statistics for one fixed sub-network (spec section 9).

Multipath training leaves each BN with statistics of the whole mixed batch; a particular child evaluated with
those can be far off. Recalibrating on a few training batches in that child's own mode fixes its statistics.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = ["recalibrate_bn"]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor], device: torch.device | str = "cpu") -> int:
    """Reset every BN's running statistics and re-estimate them as a cumulative average over ``batches``
    (forward passes in training mode, no weight update). Leaves ``model`` in eval mode; returns the batch count."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    count = 0
    try:
        for x in batches:
            model(x.to(device))
            count += 1
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return count
