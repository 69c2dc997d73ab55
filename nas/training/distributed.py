"""Distributed helpers: ``torchrun`` set-up (gloo on CPU, nccl on GPU), sums over ranks and a replica check.

BN statistics are averaged over ranks with timm's ``distribute_bn``; :func:`check_replicas` is ours because it
proves what the averaging and DDP promise (identical replicas), which nothing in torch or timm checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "all_reduce_sum", "check_replicas", "cleanup_distributed", "setup_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Initialise the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); pick the device.

    ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: CUDA was asked for but is not available")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return DistInfo(rank, world_size, local_rank, dev)


def cleanup_distributed() -> None:
    """Tear the process group down if one is up."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a few floats over all ranks (identity when not distributed)."""
    if not info.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


def check_replicas(model: nn.Module, info: DistInfo) -> float:
    """Raise unless every rank holds the same parameters and buffers; return the largest difference seen."""
    if not info.distributed:
        return 0.0
    flat = torch.cat([t.detach().double().flatten() for t in model.state_dict().values() if t.is_floating_point()])
    mine = flat.to(info.device)
    ref = mine.clone()
    dist.broadcast(ref, 0)
    diff = torch.tensor([(mine - ref).abs().max().item()], dtype=torch.float64, device=info.device)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    if diff.item() != 0.0:
        raise RuntimeError(f"replicas differ after training: max |difference| {diff.item():.3g}")
    return diff.item()
