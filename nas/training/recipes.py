"""Training recipes: complete option sets per phase, chosen by ``--recipe``; explicit flags override them.

* ``digits`` (default): small-data settings that train the bundled 32 px data in minutes on a CPU (AdamW). The
  supernet, seeded from the trained heaviest network, trains at a tenth of the heaviest network's rate, as in the
  paper: at the heaviest's own rate 4 epochs undid the teacher (its child fell from 73 % to 50 % top-1) and the
  children's accuracy no longer followed their size (Spearman with latency -0.39 on one seed; 0.41 and 0.60 on
  two seeds at the lower rate).
* ``paper``: the original project's ImageNet commands at 224 px: SGD with Nesterov momentum 0.9, weight decay
  1e-5, 3 warm-up epochs, label smoothing 0.1, an EMA of the weights (decay 0.999; validation and the best
  checkpoint use it), mixed precision on CUDA; heaviest network ``-b 256 --lr 0.128``, step decay 0.97 every 2.4
  epochs for 300 epochs, dropout 0.3, drop-path 0.2; supernet ``-b 200 --lr 0.0128``, cosine over 100 epochs,
  distillation weight 1 with the feature loss divided by 50; fine-tuning ``-b 128 --lr 0.00128``, cosine over 50
  epochs, no smoothing, distillation weight 2. Cosine schedules add timm's 10 cool-down epochs. Batch sizes are
  per process, as in the original's distributed launches.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nas.training.config import TrainConfig

__all__ = ["PHASES", "RECIPES", "recipe_config", "recipe_values"]

PHASES = ("heaviest", "supernet", "finetune")

_PAPER_COMMON: dict[str, Any] = {
    "resolution": 224,
    "opt": "sgd",  # timm's "sgd" is Nesterov momentum
    "momentum": 0.9,
    "weight_decay": 1e-5,
    "warmup_epochs": 3,
    "min_lr": 1e-5,
    "cooldown_epochs": 10,  # timm adds it to cosine schedules only
    "smoothing": 0.1,
    "model_ema": True,
    "model_ema_decay": 0.999,
    "amp": True,
}

_RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "digits": {
        "heaviest": {},
        "supernet": {"lr": 3e-4, "epochs": 6, "warmup_epochs": 1},
        "finetune": {"lr": 1e-3, "epochs": 5, "warmup_epochs": 1, "smoothing": 0.0, "gamma_knowledge": 2.0},
    },
    "paper": {
        "heaviest": {
            **_PAPER_COMMON,
            "batch_size": 256,
            "lr": 0.128,
            "sched": "step",
            "epochs": 300,
            "decay_epochs": 2.4,
            "decay_rate": 0.97,
            "warmup_lr": 1e-6,
            "drop": 0.3,
            "drop_path": 0.2,
        },
        "supernet": {
            **_PAPER_COMMON,
            "batch_size": 200,
            "lr": 0.0128,
            "sched": "cosine",
            "epochs": 100,
            "warmup_lr": 1e-4,
            "gamma_knowledge": 1.0,
            "ikd_divisor": 50.0,
            "real_kd": True,
        },
        "finetune": {
            **_PAPER_COMMON,
            "batch_size": 128,
            "lr": 0.00128,
            "sched": "cosine",
            "epochs": 50,
            "warmup_lr": 1e-4,
            "smoothing": 0.0,
            "gamma_knowledge": 2.0,
            "real_kd": True,
        },
    },
}

RECIPES = tuple(_RECIPES)


def recipe_values(recipe: str, phase: str) -> dict[str, Any]:
    """The options ``recipe`` sets for ``phase`` (those it leaves out keep :class:`TrainConfig`'s defaults)."""
    if recipe not in _RECIPES:
        raise ValueError(f"--recipe: unknown recipe {recipe!r}, expected one of {RECIPES}")
    if phase not in PHASES:
        raise ValueError(f"unknown training phase {phase!r}, expected one of {PHASES}")
    return dict(_RECIPES[recipe][phase])


def recipe_config(recipe: str, phase: str, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of ``recipe`` for ``phase``, with ``overrides`` (explicit options) on top."""
    return replace(TrainConfig(), **{**recipe_values(recipe, phase), "recipe": recipe, **overrides})
