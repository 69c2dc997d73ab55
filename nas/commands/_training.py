"""Wiring shared by the training commands: options -> config -> phase, errors -> one line."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from nas.errors import UserError


def run_phase(phase: Callable, args: argparse.Namespace, name: str) -> int:
    """Run training phase ``name`` (``heaviest``, ``supernet``, ``finetune``) with its recipe's settings and the
    options typed on top; user-caused errors become :class:`~nas.cli.UserError`."""
    from nas.training import TrainConfig
    from nas.training.options import config_from_args

    cfg: TrainConfig = config_from_args(args, name)
    for name in ("epochs", "batch_size", "val_batch_size", "resolution"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    if cfg.lr <= 0:
        raise UserError(f"--lr must be positive, got {cfg.lr}")
    try:
        result = phase(cfg)
    except (ValueError, FloatingPointError) as exc:  # DataError, CheckpointError, SearchSpaceError, ArchStringError
        raise UserError(str(exc)) from None
    if result.run_dir is not None:
        print(f"best top-1 {result.best_metric:.2f} at epoch {result.best_epoch + 1}; outputs in {result.run_dir}")
    return 0
