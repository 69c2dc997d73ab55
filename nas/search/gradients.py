"""Gradients of the held-out loss w.r.t. the architecture weights, from a frozen supernet.

Each call samples, per image, one option per block from ``alpha`` and one depth per stage from ``beta`` (hard
one-hot weights with ``requires_grad``), runs the supernet's weighted mode (every option on the whole batch,
mixed per image) with frozen weights, and returns ``d CE / d weights`` averaged over the images (the original
sums; the LP oracle is scale-invariant and the momentum sees one consistent scale). Batches come from an
endless, seeded, shuffled loader over the held-out split; batches with non-finite gradients are skipped.

BN statistics (``bn_statistics``): ``batch`` (default) normalises every option with the batch's own statistics --
each option runs on the whole batch, so these are that option's own statistics. ``running`` is the original's eval
mode: the running statistics of multipath training are mixtures that fit no particular option, and they penalise
wide options (on the demo's supernet the heaviest child's held-out loss is 2.8 with them, 1.1 with its own), which
pulls the search below the latency limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from nas.search.driver import Gradients
from nas.training.bn import batch_statistics

__all__ = ["SupernetGradients", "sample_one_hot"]


def sample_one_hot(probs: np.ndarray, batch_size: int, generator: torch.Generator) -> Tensor:
    """Per-image one-hot samples from the last axis of ``probs``: shape ``probs.shape + (batch_size,)``."""
    p = torch.as_tensor(np.clip(probs, 0.0, None), dtype=torch.float64)
    flat = p.reshape(-1, p.shape[-1])
    idx = torch.multinomial(flat, batch_size, replacement=True, generator=generator)  # [rows, B]
    one_hot = F.one_hot(idx, p.shape[-1]).permute(0, 2, 1)  # [rows, options, B]
    return one_hot.reshape(*p.shape, batch_size).to(torch.float32)


class SupernetGradients:
    """Callable ``(alpha, beta) -> Gradients`` over a frozen supernet and a held-out data set."""

    def __init__(
        self,
        supernet: nn.Module,
        dataset: Dataset,
        *,
        batch_size: int = 16,
        seed: int = 0,
        aggregate_batches: int = 1,
        device: str | torch.device = "cpu",
        max_skips: int = 10,
        bn_statistics: str = "batch",
    ) -> None:
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ValueError("the held-out split is empty (lower --train-percent)")
        if bn_statistics not in ("batch", "running"):
            raise ValueError(f"bn_statistics: expected 'batch' or 'running', got {bn_statistics!r}")
        if bn_statistics == "batch" and min(batch_size, len(dataset)) < 2:  # type: ignore[arg-type]
            raise ValueError("batch statistics need at least 2 images per batch (--batch-size, held-out split); "
                             "or use --bn-statistics running")
        self.bn_statistics = bn_statistics
        self.supernet = supernet.to(device).eval()
        for p in self.supernet.parameters():
            p.requires_grad_(False)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.aggregate_batches = aggregate_batches
        self.max_skips = max_skips
        self.generator = torch.Generator().manual_seed(seed)
        loader_gen = torch.Generator().manual_seed(seed + 1)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=RandomSampler(dataset, generator=loader_gen),
            num_workers=0,
            drop_last=len(dataset) >= batch_size,  # type: ignore[arg-type]
        )
        self._batches = self._endless()
        self.skipped = 0

    def _endless(self) -> Iterator[tuple[Tensor, Tensor]]:
        while True:
            yield from self.loader

    def _one_batch(self, alpha: np.ndarray, beta: np.ndarray) -> Gradients | None:
        images, targets = next(self._batches)
        dtype = next(self.supernet.parameters()).dtype
        images, targets = images.to(self.device, dtype), targets.to(self.device)
        b = images.shape[0]
        alpha_w = sample_one_hot(alpha, b, self.generator).to(self.device, dtype).requires_grad_(True)
        beta_w = sample_one_hot(beta, b, self.generator).to(self.device, dtype).requires_grad_(True)
        stats = batch_statistics(self.supernet) if self.bn_statistics == "batch" else contextlib.nullcontext()
        with torch.enable_grad(), stats:
            logits = self.supernet.forward_weighted(images, alpha_w, beta_w)
            loss = F.cross_entropy(logits, targets)
            grad_a, grad_b = torch.autograd.grad(loss, (alpha_w, beta_w))
        if not (torch.isfinite(grad_a).all() and torch.isfinite(grad_b).all() and torch.isfinite(loss)):
            return None
        # d(mean loss)/d(w_n) carries 1/B; summing over images gives the gradient of the batch-mean loss
        ga = grad_a.sum(dim=-1).double().cpu().numpy()
        gb = grad_b.sum(dim=-1).double().cpu().numpy()
        return Gradients(ga, gb, float(loss.detach()))

    def __call__(self, alpha: np.ndarray, beta: np.ndarray) -> Gradients:
        """Gradients at (alpha, beta) from ``aggregate_batches`` fresh held-out batches (summed)."""
        got: list[Gradients] = []
        skips = 0
        while len(got) < self.aggregate_batches:
            g = self._one_batch(alpha, beta)
            if g is None:
                skips += 1
                self.skipped += 1
                if skips > self.max_skips:
                    raise FloatingPointError(f"{skips} consecutive batches gave non-finite gradients")
                continue
            got.append(g)
        return Gradients(
            alpha=np.sum([g.alpha for g in got], axis=0),
            beta=np.sum([g.beta for g in got], axis=0),
            loss=float(np.mean([g.loss for g in got])),
        )
