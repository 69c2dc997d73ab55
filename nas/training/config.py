"""Options of the training phases (timm names), one dataclass shared by every phase.

Its defaults are the ``digits`` heaviest-network settings; :mod:`nas.training.recipes` holds each phase's complete
settings per recipe and :mod:`nas.training.options` the command-line options that override them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Every option of ``train-heaviest``, ``train-supernet`` and ``finetune``; defaults suit ``digits`` at 32 px."""

    data: str = "digits"
    recipe: str = "digits"
    resolution: int = 32
    epochs: int = 8
    batch_size: int = 32
    val_batch_size: int = 128
    opt: str = "adamw"  # timm name ("sgd" is Nesterov momentum)
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 0.01
    sched: str = "cosine"
    warmup_epochs: int = 1
    warmup_lr: float = 1e-4
    min_lr: float = 1e-5
    decay_epochs: float = 2.4
    decay_rate: float = 0.97
    cooldown_epochs: int = 0
    clip_grad: float | None = None
    drop: float = 0.0
    drop_path: float = 0.0
    smoothing: float = 0.1
    model_ema: bool = False
    model_ema_decay: float = 0.999
    amp: bool = False
    seed: int = 42
    workers: int = 0
    steps_per_epoch: int | None = None
    resume: str = ""
    output: str = "outputs/train"
    experiment: str = ""
    device: str = "auto"
    threads: int = 0
    progress: bool = True
    # distillation (train-supernet, finetune)
    teacher: str = ""
    gamma_knowledge: float = 1.0
    ikd_divisor: float = 50.0
    real_kd: bool = True
    initial_checkpoint: str = ""
    bn_recal_batches: int = 10
    reorder_channels: bool = True  # children after 2 supernet epochs on digits: 31 % -> 60 % mean top-1
    # finetune
    arch: str = ""
    search_result: str = ""
    supernet: str = ""
