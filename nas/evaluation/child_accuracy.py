"""Held-out accuracy of supernet children without training: the proxy a search and its baselines are judged by.

Each child runs as the supernet's fixed child (sliced weights; the same function as the standalone timm network
:func:`nas.models.child.extract_child` builds, without the cost of building one per child), its BN statistics are
re-estimated on the same fixed training batches (multipath training leaves mixtures that fit no particular child),
and it is evaluated on the same fixed validation split. The batches are drawn once and kept as tensors, so every
child sees identical data and the data pipeline runs once, not once per child.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from nas.models.supernet import ElasticSupernet
from nas.training.bn import recalibrate_bn
from nas.training.distributed import DistInfo
from nas.training.engine import evaluate_classifier
from shared.search_space import ArchChoice

__all__ = ["ChildAccuracy", "ChildEvaluator", "evaluator_for"]


@dataclass(frozen=True)
class ChildAccuracy:
    """Top-1 (percent) and mean cross-entropy of one child on the validation split."""

    top1: float
    loss: float


class ChildEvaluator:
    """Evaluates children of one supernet on fixed data (in a private copy: the caller's supernet is untouched).

    ``recal_set``: training images (eval transforms) for the BN statistics, ``recal_batches`` batches of
    ``batch_size`` drawn once with ``seed``; ``val_set``: the fixed split every child is evaluated on.
    """

    def __init__(
        self,
        supernet: ElasticSupernet,
        recal_set: Dataset,
        val_set: Dataset,
        *,
        recal_batches: int = 4,
        batch_size: int = 64,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        if recal_batches < 1:
            raise ValueError(f"recal_batches must be positive, got {recal_batches}")
        self.device = torch.device(device)
        self.supernet = copy.deepcopy(supernet).to(self.device).eval()
        loader = DataLoader(recal_set, batch_size=batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed), drop_last=len(recal_set) >= batch_size)
        self.recal = [x for x, _ in itertools.islice(loader, recal_batches)]
        self.val = list(DataLoader(val_set, batch_size=256, shuffle=False))
        self.val_images = sum(len(y) for _, y in self.val)

    @torch.no_grad()
    def evaluate(self, choice: ArchChoice) -> ChildAccuracy:
        """The child's top-1 and loss on the validation split, with its own recalibrated BN statistics."""
        self.supernet.set_child(choice)
        recalibrate_bn(self.supernet, self.recal, self.device)  # resets every BN first: no state leaks between children
        metrics = evaluate_classifier(self.supernet, self.val, DistInfo(device=self.device))
        return ChildAccuracy(top1=metrics["top1"], loss=metrics["loss"])


def evaluator_for(
    supernet_path: str,
    data: str,
    resolution: int,
    *,
    recal_batches: int = 4,
    seed: int = 0,
    device: str = "cpu",
) -> ChildEvaluator:
    """An evaluator of a supernet checkpoint's children: BN statistics from ``data``'s train split (eval
    transforms), accuracy on its val split."""
    from nas.data import build_dataset
    from nas.training.models import load_supernet

    train = build_dataset(data, "train", resolution, train_transforms=False)
    val = build_dataset(data, "val", resolution, train_transforms=False)
    return ChildEvaluator(load_supernet(supernet_path), train, val, recal_batches=recal_batches, seed=seed,
                          device=device)
