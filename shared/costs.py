"""Parameter and multiply-accumulate (MAC) counts of the space's networks, per block, from the modules themselves.

A network of the space is its fixed parts (stem, first ds block, last 1x1 conv, head with classifier) plus one
block per kept position, each built by :func:`shared.builders.build_block` -- the same timm classes and settings
:func:`shared.builders.build_network` uses -- at a geometry that depends on the position alone. So both counts are
exactly additive: a network's count is the fixed parts' plus its blocks' (:class:`SpaceCosts`).

MACs are counted by forward hooks on the built modules at the given input resolution (batch 1): a convolution
``k_h * k_w * c_in / groups * c_out * H_out * W_out``, a linear layer ``in * out``; the squeeze-excite convolutions
run on their pooled 1x1 input, the head's conv after the global pool; batch norm, activations, pooling and the
residual additions are not counted (the usual convention, which timm's and fvcore's counts share for these layers).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from shared.block_key import BlockKey
from shared.search_space import ArchChoice, SearchSpace

__all__ = ["SpaceCosts", "block_costs", "count_macs", "count_params", "space_costs"]


def count_params(module) -> int:
    """Every parameter element of ``module`` (as ``sum(p.numel() for p in module.parameters())``)."""
    return int(sum(p.numel() for p in module.parameters()))


def count_macs(module, x) -> int:
    """Multiply-accumulates of one forward pass of ``module`` on ``x`` (batch 1): convolutions and linear layers."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(m: nn.Conv2d, _inputs, output) -> None:
        nonlocal total
        k_h, k_w = m.kernel_size
        total += k_h * k_w * (m.in_channels // m.groups) * m.out_channels * output.shape[-2] * output.shape[-1]

    def linear_hook(m: nn.Linear, _inputs, output) -> None:
        nonlocal total
        total += m.in_features * m.out_features * (output.numel() // output.shape[-1] // output.shape[0])

    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(x[:1])
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return int(total)


@functools.lru_cache(maxsize=1024)
def block_costs(key: BlockKey) -> tuple[int, int]:
    """``(parameters, MACs)`` of the module measured under ``key`` (built as the network builder builds it), the
    MACs at the key's input resolution. Built and run on torch's ``meta`` device: the shapes are the real ones,
    no weights are initialised and no arithmetic is done (a whole space's table in well under a second)."""
    import torch

    from shared.builders import build_block

    with torch.device("meta"):
        module = build_block(key)
        x = torch.empty(1, key.in_chs, key.resolution, key.resolution)
    return count_params(module), count_macs(module, x)


@dataclass(frozen=True)
class SpaceCosts:
    """Per-option counts of one space at one resolution and classifier width: ``params[s, j, i]`` and
    ``macs[s, j, i]`` of option ``i`` at block position ``j`` of searchable stage ``s`` (int64), and the fixed
    parts' totals. A network's count is the fixed part plus its kept blocks' entries (:meth:`params_of`)."""

    space: SearchSpace
    resolution: int
    params: np.ndarray
    macs: np.ndarray
    fixed_params: int
    fixed_macs: int

    def params_of(self, choice: ArchChoice) -> int:
        return self.fixed_params + sum(int(self.params[s, j, i]) for s, st in enumerate(choice.options)
                                       for j, i in enumerate(st))

    def macs_of(self, choice: ArchChoice) -> int:
        return self.fixed_macs + sum(int(self.macs[s, j, i]) for s, st in enumerate(choice.options)
                                     for j, i in enumerate(st))


@functools.lru_cache(maxsize=16)
def space_costs(space: SearchSpace, resolution: int = 224) -> SpaceCosts:
    """The per-option parameter and MAC counts of ``space`` at ``resolution`` (its ``num_classes`` sets the
    classifier; use :meth:`SearchSpace.with_classes` for another)."""
    space.check_resolution(resolution)
    shape = (space.num_stages, space.max_depth, space.num_options)
    params = np.zeros(shape, dtype=np.int64)
    macs = np.zeros(shape, dtype=np.int64)
    keys = space.block_keys_table(resolution)
    for s, j, i in np.ndindex(shape):
        params[s, j, i], macs[s, j, i] = block_costs(keys[s][j][i])
    fixed = [block_costs(key) for key in space.fixed_keys(resolution).values()]
    params.setflags(write=False)
    macs.setflags(write=False)
    return SpaceCosts(space, resolution, params, macs, sum(p for p, _ in fixed), sum(m for _, m in fixed))
