"""BN statistics for one sub-network: recalibration, or batch statistics during the search.

Multipath training leaves each BN with statistics of the whole mixed batch; a particular child evaluated with
those can be far off (on the demo's supernet the heaviest child's held-out loss is 2.8 with them and 1.1 with
its own). Recalibrating on a few training batches in that child's own mode fixes its statistics
(:func:`recalibrate_bn`); the search, where every option runs on the whole batch, can normalise each option
with the batch's own statistics instead (:func:`batch_statistics`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn

__all__ = ["batch_statistics", "recalibrate_bn"]


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor], device: torch.device | str = "cpu") -> int:
    """Reset every BN's running statistics and re-estimate them as a cumulative average over ``batches``
    (torch's ``update_bn``: forward passes in training mode, no weight update). The supernet's sliced BN of a
    child keeps that cumulative average for the channels the child uses. Leaves ``model`` in eval mode and
    returns the batch count (which ``update_bn`` does not report)."""
    count = 0

    def counted() -> Iterator[Tensor]:
        nonlocal count
        for x in batches:
            count += 1
            yield x

    update_bn(counted(), model, device=torch.device(device))
    model.eval()
    return count


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every BN of ``model`` normalises with the current batch's statistics and leaves its
    running statistics untouched (training mode, momentum 0); other modules keep their mode. Restored on exit."""
    bns = _batch_norms(model)
    saved = [(m.training, m.momentum, m.num_batches_tracked.clone()
              if m.num_batches_tracked is not None else None) for m in bns]
    for m in bns:
        m.train()
        m.momentum = 0.0
    try:
        yield model
    finally:
        for m, (training, momentum, tracked) in zip(bns, saved, strict=True):
            m.train(training)
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
