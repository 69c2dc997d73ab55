"""Command-line options of the training commands: ``--recipe`` picks every default, explicit flags override it.

An option the user does not type stays out of the parsed namespace (``argparse.SUPPRESS``), so
:func:`config_from_args` can tell "typed" from "defaulted" and take the recipe's value for the latter. Each
option's help shows its value under every recipe for the command's phase.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from nas.training.config import TrainConfig
from nas.training.recipes import RECIPES, recipe_config

__all__ = ["add_distillation_arguments", "add_supernet_arguments", "add_train_arguments", "config_from_args"]


class _Options:
    """Adds options of one phase to a parser, with the recipes' defaults in the help."""

    def __init__(self, p: argparse.ArgumentParser, phase: str):
        self.p, self.phase = p, phase
        self.defaults = {r: recipe_config(r, phase) for r in RECIPES}

    def __call__(self, *flags: str, help: str = "", **kwargs: Any) -> None:
        dest = kwargs.get("dest") or flags[-1].lstrip("-").replace("-", "_")
        values = {r: getattr(cfg, dest) for r, cfg in self.defaults.items()}
        if len(set(map(repr, values.values()))) == 1:
            shown = f"default {values['digits']}"
        else:
            shown = "; ".join(f"{r}: {v}" for r, v in values.items())
        self.p.add_argument(*flags, default=argparse.SUPPRESS, help=f"{help} ({shown})".lstrip(), **kwargs)


def add_train_arguments(p: argparse.ArgumentParser, phase: str) -> None:
    """The timm-style options every training command shares, defaulting to ``--recipe``'s values for ``phase``."""
    p.add_argument("data", help="'digits', 'synthetic' or an ImageFolder root with train/ and val/")
    p.add_argument("--recipe", choices=RECIPES, default="digits",
                   help="every default below: 'digits' (the bundled data, minutes on a CPU) or 'paper' (the "
                   "original's ImageNet recipe: SGD Nesterov, EMA, warm-up, the paper's rates and batches); "
                   "options given explicitly override it (default %(default)s)")
    opt = _Options(p, phase)
    opt("--resolution", type=int, help="input size in pixels")
    opt("--epochs", type=int, help="epochs")
    opt("-b", "--batch-size", type=int, help="per-process batch")
    opt("-vb", "--val-batch-size", type=int)
    opt("--opt", help="timm optimizer: adamw, sgd (Nesterov), momentum ...")
    opt("--lr", type=float, help="learning rate")
    opt("--momentum", type=float)
    opt("--weight-decay", type=float)
    opt("--sched", choices=("cosine", "step"), help="lr schedule")
    opt("--warmup-epochs", type=int)
    opt("--warmup-lr", type=float)
    opt("--min-lr", type=float)
    opt("--decay-epochs", type=float, help="step schedule: epochs per decay")
    opt("--decay-rate", type=float, help="step schedule: decay factor")
    opt("--cooldown-epochs", type=int, help="epochs at the minimum lr after a cosine schedule")
    opt("--clip-grad", type=float, help="clip the gradient norm")
    opt("--drop", type=float, help="dropout before the classifier")
    opt("--drop-path", type=float, help="drop-path rate (plain networks only)")
    opt("--smoothing", type=float, help="label smoothing")
    opt("--model-ema", action=argparse.BooleanOptionalAction,
        help="keep an EMA of the weights; validation and model_best use it")
    opt("--model-ema-decay", type=float)
    opt("--amp", action=argparse.BooleanOptionalAction, help="mixed precision (CUDA only; ignored on CPU)")
    opt("--seed", type=int)
    opt("-j", "--workers", type=int, help="data-loader workers")
    opt("--steps-per-epoch", type=int, help="cap on optimizer steps per epoch (smoke tests)")
    opt("--resume", help="continue a run from its last.pth.tar")
    opt("--output", help="base folder of run folders")
    opt("--experiment", help="run folder name (empty: phase-data-resolution)")
    opt("--device", choices=("auto", "cpu", "cuda"))
    opt("--threads", type=int, help="torch CPU threads (0: torch's default; 1 is far faster on a busy shared machine)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                   help="no progress bars")


def add_distillation_arguments(p: argparse.ArgumentParser, phase: str) -> None:
    opt = _Options(p, phase)
    opt("--gamma-knowledge", type=float, help="weight of distillation")
    opt("--ikd-divisor", type=float, help="divides the stage-feature MSE")
    opt("--real-kd", action=argparse.BooleanOptionalAction,
        help="KD as KL to the teacher's softmax (else MSE of logits)")


def add_supernet_arguments(p: argparse.ArgumentParser, phase: str = "supernet") -> None:
    opt = _Options(p, phase)
    opt("--bn-recal-batches", type=int,
        help="validation: re-estimate BN statistics of each evaluated child on this many training batches "
        "(0: use the supernet's mixed running statistics)")
    opt("--reorder-channels", action=argparse.BooleanOptionalAction,
        help="before seeding the supernet, sort the teacher's expanded and SE channels by Taylor importance "
        "(|w * dL/dw| on 10 %% of each class of the training data) so narrow options keep the important ones")


def config_from_args(args: argparse.Namespace, phase: str) -> TrainConfig:
    """The :class:`TrainConfig` of ``args.recipe`` for ``phase`` with every option typed on the command line on top
    (names that are not options of the phases are ignored)."""
    names = {f.name for f in fields(TrainConfig)} - {"recipe"}
    given = {k: v for k, v in vars(args).items() if k in names}
    return recipe_config(getattr(args, "recipe", "digits"), phase, **given)
