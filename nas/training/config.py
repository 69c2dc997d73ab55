"""Options of the training commands (timm names), one dataclass shared by every phase."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

__all__ = ["TrainConfig", "add_train_arguments", "config_from_args"]


@dataclass
class TrainConfig:
    """Every option of ``train-heaviest``, ``train-supernet`` and ``finetune``; defaults suit ``digits`` at 32 px."""

    data: str = "digits"
    resolution: int = 32
    epochs: int = 8
    batch_size: int = 32
    val_batch_size: int = 128
    opt: str = "adamw"  # timm name; the paper's ImageNet recipe: sgd (Nesterov), lr 0.128 at batch 256
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
    # finetune
    arch: str = ""
    search_result: str = ""
    supernet: str = ""


def add_train_arguments(p: argparse.ArgumentParser, defaults: TrainConfig | None = None) -> None:
    """The timm-style options every training command shares."""
    d = defaults or TrainConfig()
    p.add_argument("data", help="'digits', 'synthetic' or an ImageFolder root with train/ and val/")
    p.add_argument("--resolution", type=int, default=d.resolution, help="input size in pixels (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs (default %(default)s)")
    p.add_argument("-b", "--batch-size", type=int, default=d.batch_size, help="per-process batch (default %(default)s)")
    p.add_argument("-vb", "--val-batch-size", type=int, default=d.val_batch_size)
    p.add_argument("--opt", default=d.opt, help="timm optimizer: adamw, sgd (Nesterov) ... (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--sched", choices=("cosine", "step"), default=d.sched, help="lr schedule (default %(default)s)")
    p.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs)
    p.add_argument("--warmup-lr", type=float, default=d.warmup_lr)
    p.add_argument("--min-lr", type=float, default=d.min_lr)
    p.add_argument("--decay-epochs", type=float, default=d.decay_epochs, help="step schedule: epochs per decay")
    p.add_argument("--decay-rate", type=float, default=d.decay_rate, help="step schedule: decay factor")
    p.add_argument("--cooldown-epochs", type=int, default=d.cooldown_epochs)
    p.add_argument("--clip-grad", type=float, default=d.clip_grad, help="clip the gradient norm (default off)")
    p.add_argument("--drop", type=float, default=d.drop, help="dropout before the classifier")
    p.add_argument("--drop-path", type=float, default=d.drop_path, help="drop-path rate (plain networks only)")
    p.add_argument("--smoothing", type=float, default=d.smoothing, help="label smoothing (default %(default)s)")
    p.add_argument(
        "--model-ema",
        action=argparse.BooleanOptionalAction,
        default=d.model_ema,
        help="keep an EMA of the weights; validation and model_best use it",
    )
    p.add_argument("--model-ema-decay", type=float, default=d.model_ema_decay)
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=d.amp,
        help="mixed precision (CUDA only; ignored on CPU)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("-j", "--workers", type=int, default=d.workers, help="data-loader workers")
    p.add_argument(
        "--steps-per-epoch", type=int, default=d.steps_per_epoch, help="cap on optimizer steps per epoch (smoke tests)"
    )
    p.add_argument("--resume", default=d.resume, help="continue a run from its last.pth.tar")
    p.add_argument("--output", default=d.output, help="base folder of run folders (default %(default)s)")
    p.add_argument("--experiment", default=d.experiment, help="run folder name (default: phase-data-resolution)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device)
    p.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help="torch CPU threads (0: torch's default; 1 is far faster on a busy shared machine)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def add_distillation_arguments(p: argparse.ArgumentParser, defaults: TrainConfig | None = None) -> None:
    d = defaults or TrainConfig()
    p.add_argument("--gamma-knowledge", type=float, default=d.gamma_knowledge, help="weight of distillation")
    p.add_argument("--ikd-divisor", type=float, default=d.ikd_divisor, help="divides the stage-feature MSE")
    p.add_argument(
        "--real-kd",
        action=argparse.BooleanOptionalAction,
        default=d.real_kd,
        help="KD as KL to the teacher's softmax (else MSE of logits)",
    )


def add_supernet_arguments(p: argparse.ArgumentParser, defaults: TrainConfig | None = None) -> None:
    d = defaults or TrainConfig()
    p.add_argument(
        "--bn-recal-batches",
        type=int,
        default=d.bn_recal_batches,
        help="validation: re-estimate BN statistics of each evaluated child on this many training batches "
        "(0: use the supernet's mixed running statistics)",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed command-line options (unknown names ignored)."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
