"""The training engine: one loop for every phase (optimizer, schedule, EMA, AMP, DDP, checkpoints, resume)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3, NativeScaler, accuracy, dispatch_clip_grad, distribute_bn, random_seed
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from nas.data import shard
from nas.training.checkpoint import (
    CheckpointError,
    append_summary,
    load_checkpoint,
    make_run_dir,
    save_checkpoint,
    write_args,
)
from nas.training.config import TrainConfig
from nas.training.distributed import DistInfo, all_reduce_sum, check_replicas

__all__ = ["FitResult", "TrainTask", "evaluate_classifier", "fit"]

_log = logging.getLogger(__name__)

#: ``loss_fn(model, images, targets) -> loss``: ``model`` is the (possibly DDP-wrapped) training model.
LossFn = Callable[[nn.Module, Tensor, Tensor], Tensor]
#: ``evaluate_fn(model, loader, info) -> metrics``; the metrics hold ``top1`` (the checkpoint metric).
EvalFn = Callable[[nn.Module, DataLoader, DistInfo], dict[str, float]]


@dataclass
class TrainTask:
    """What one phase trains: the model, its loss, how it is evaluated and what its checkpoints say about it."""

    name: str
    model: nn.Module
    loss_fn: LossFn
    evaluate_fn: EvalFn
    meta: dict[str, Any]  # kind, arch, space, num_classes, resolution
    find_unused_parameters: bool = False
    on_train_epoch: Callable[[nn.Module, int], None] | None = None


@dataclass
class FitResult:
    """Where the run wrote its files and how it ended."""

    run_dir: Path | None
    best_metric: float
    best_epoch: int
    last_metrics: dict[str, float] = field(default_factory=dict)
    model: nn.Module | None = None


@torch.no_grad()
def evaluate_classifier(model: nn.Module, loader: DataLoader, info: DistInfo) -> dict[str, float]:
    """Top-1, top-5 (percent) and mean CE over the loader, summed over ranks."""
    model.eval()
    loss_sum = c1 = c5 = n = 0.0
    for images, targets in loader:
        images, targets = images.to(info.device), targets.to(info.device)
        logits = model(images)
        loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        k = min(5, logits.shape[1])
        a1, a5 = accuracy(logits, targets, topk=(1, k))
        c1 += a1.item() * images.shape[0] / 100.0
        c5 += a5.item() * images.shape[0] / 100.0
        n += images.shape[0]
    loss_sum, c1, c5, n = all_reduce_sum([loss_sum, c1, c5, n], info)
    n = max(n, 1.0)
    return {"top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "loss": loss_sum / n}


def _loaders(cfg: TrainConfig, train_set: Dataset, val_set: Dataset, info: DistInfo) -> tuple[DataLoader, DataLoader]:
    drop_last = len(train_set) >= cfg.batch_size * info.world_size
    if info.distributed:
        sampler = DistributedSampler(
            train_set, info.world_size, info.rank, shuffle=True, seed=cfg.seed, drop_last=drop_last
        )
    else:
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(cfg.seed))
    pin = info.device.type == "cuda"
    train_loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        drop_last=drop_last,
        pin_memory=pin,
        persistent_workers=cfg.workers > 0,
    )
    val_loader = DataLoader(
        shard(val_set, info.rank, info.world_size),
        batch_size=cfg.val_batch_size,
        shuffle=False,
        num_workers=cfg.workers,
        pin_memory=pin,
    )
    return train_loader, val_loader


def fit(task: TrainTask, cfg: TrainConfig, train_set: Dataset, val_set: Dataset, info: DistInfo) -> FitResult:
    """Train ``task.model`` for ``cfg.epochs`` (plus cooldown), validating and checkpointing every epoch."""
    random_seed(cfg.seed, info.rank)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    model = task.model.to(info.device)
    use_amp = cfg.amp and info.device.type == "cuda"
    if cfg.amp and not use_amp:
        _log.warning("--amp needs CUDA; training in float32")
    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    scaler = NativeScaler(device="cuda") if use_amp else None
    ema = ModelEmaV3(model, decay=cfg.model_ema_decay, use_warmup=True) if cfg.model_ema else None

    start_epoch, best_metric, best_epoch = 0, -math.inf, -1
    run_dir: Path | None = None
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume)
        if ckpt.get("kind") != task.meta["kind"] or "optimizer" not in ckpt:
            raise CheckpointError(f"resume: {cfg.resume} is not a {task.meta['kind']} training checkpoint")
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("state_dict_ema"):
            ema.module.load_state_dict(ckpt["state_dict_ema"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"]) + 1
        best_metric, best_epoch = float(ckpt.get("best_metric", -math.inf)), int(ckpt.get("best_epoch", -1))
        run_dir = Path(cfg.resume).resolve().parent
        _log.info("resuming %s from epoch %d", run_dir, start_epoch)
    elif info.is_main:
        run_dir = make_run_dir(cfg.output, cfg.experiment or task.name)
    if info.is_main:
        write_args(run_dir, {**asdict(cfg), "world_size": info.world_size, **task.meta})
        _log.info("run folder: %s", run_dir)

    train_model: nn.Module = model
    if info.distributed:
        ids = [info.device.index] if info.device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=task.find_unused_parameters)
    train_loader, val_loader = _loaders(cfg, train_set, val_set, info)
    steps = len(train_loader) if cfg.steps_per_epoch is None else min(cfg.steps_per_epoch, len(train_loader))
    scheduler, num_epochs = create_scheduler_v2(
        optimizer,
        sched=cfg.sched,
        num_epochs=cfg.epochs,
        decay_epochs=cfg.decay_epochs,
        decay_rate=cfg.decay_rate,
        min_lr=cfg.min_lr,
        warmup_lr=cfg.warmup_lr,
        warmup_epochs=cfg.warmup_epochs,
        cooldown_epochs=cfg.cooldown_epochs,
        step_on_epochs=False,
        updates_per_epoch=steps,
    )
    if start_epoch:
        scheduler.step_update(start_epoch * steps)

    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, num_epochs):
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        if task.on_train_epoch is not None:
            task.on_train_epoch(model, epoch)
        t0 = time.perf_counter()
        train_loss = _train_one_epoch(
            task, cfg, train_model, train_loader, optimizer, scheduler, scaler, ema, epoch, num_epochs, steps, info
        )
        if info.distributed:  # every replica ends the epoch with the mean running BN statistics
            distribute_bn(model, info.world_size, reduce=True)
        eval_model = ema.module if ema is not None else model
        metrics = task.evaluate_fn(eval_model, val_loader, info)
        train_s = time.perf_counter() - t0
        if info.is_main:
            is_best = metrics["top1"] > best_metric
            if is_best:
                best_metric, best_epoch = metrics["top1"], epoch
            state = {
                **task.meta,
                "epoch": epoch,
                "metric": metrics["top1"],
                "best_metric": best_metric,
                "best_epoch": best_epoch,
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "args": asdict(cfg),
            }
            if ema is not None:
                state["state_dict_ema"] = ema.module.state_dict()
            if scaler is not None:
                state["scaler"] = scaler.state_dict()
            save_checkpoint(run_dir / "last.pth.tar", state)
            if is_best:
                save_checkpoint(run_dir / "model_best.pth.tar", state)
            row = {
                "epoch": epoch,
                "train_loss": round(train_loss, 6),
                "lr": optimizer.param_groups[0]["lr"],
                **{f"eval_{k}": round(v, 4) for k, v in metrics.items()},
                "epoch_s": round(train_s, 2),
            }
            append_summary(run_dir, row)
            _log.info(
                "epoch %d/%d: train loss %.4f, %s (%.1f s)",
                epoch + 1,
                num_epochs,
                train_loss,
                ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()),
                train_s,
            )
        best_metric, best_epoch = (float(x) for x in _broadcast_best(best_metric, best_epoch, info))
        best_epoch = int(best_epoch)
    if info.distributed:
        check_replicas(model, info)
        _log.info("rank %d: replicas identical after training", info.rank)
    return FitResult(run_dir, best_metric, best_epoch, metrics, model)


def _broadcast_best(best_metric: float, best_epoch: int, info: DistInfo) -> tuple[float, float]:
    if not info.distributed:
        return best_metric, best_epoch
    t = torch.tensor([best_metric, best_epoch], dtype=torch.float64, device=info.device)
    torch.distributed.broadcast(t, 0)
    return t[0].item(), t[1].item()


def _train_one_epoch(
    task, cfg, train_model, loader, optimizer, scheduler, scaler, ema, epoch, num_epochs, steps, info
) -> float:
    train_model.train()
    loss_sum, n = 0.0, 0
    bar = tqdm(
        total=steps,
        desc=f"{task.name} {epoch + 1}/{num_epochs}",
        disable=not (cfg.progress and info.is_main),
        leave=False,
        dynamic_ncols=True,
    )
    num_updates = epoch * steps
    for i, (images, targets) in enumerate(loader):
        if i >= steps:
            break
        images, targets = images.to(info.device, non_blocking=True), targets.to(info.device, non_blocking=True)
        with torch.autocast(info.device.type, dtype=torch.float16, enabled=scaler is not None):
            loss = task.loss_fn(train_model, images, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, step {i}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # AMP: scaled backward, unscale, clip, step, update
            scaler(loss, optimizer, clip_grad=cfg.clip_grad or None, parameters=train_model.parameters())
        else:
            loss.backward()
            if cfg.clip_grad:
                dispatch_clip_grad(train_model.parameters(), cfg.clip_grad)
            optimizer.step()
        num_updates += 1
        scheduler.step_update(num_updates)
        if ema is not None:
            ema.update(task.model, step=num_updates)
        loss_sum += loss.item()
        n += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / n:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    bar.close()
    (loss_sum, n) = all_reduce_sum([loss_sum, float(n)], info)
    return loss_sum / max(n, 1.0)
