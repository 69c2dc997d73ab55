"""Checkpoints and run folders: ``outputs/train/<date>-<time>-<name>/`` with ``last.pth.tar``,
``model_best.pth.tar``, ``args.yaml`` and ``summary.csv``.

A checkpoint is a dict saved with :func:`torch.save`:

* ``kind``: ``heaviest`` | ``supernet`` | ``child``; ``arch``: the arch string (``None`` for a supernet);
  ``space``: the search space's name; ``num_classes``; ``resolution``;
* ``state_dict`` (timm ``MobileNetV3`` names for heaviest/child, :class:`~nas.supernet.ElasticSupernet` names
  for a supernet; never a ``module.`` prefix) and ``state_dict_ema`` when EMA was on;
* ``epoch`` (last finished, 0-based), ``metric``, ``best_metric``, ``best_epoch``, ``optimizer``, ``scaler``,
  ``args`` (the run's options), ``version``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "load_checkpoint",
    "make_run_dir",
    "model_state",
    "save_checkpoint",
    "write_args",
    "append_summary",
]

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit what is asked of it."""


def make_run_dir(base: str | Path, name: str) -> Path:
    """A fresh ``<base>/<YYYYmmdd-HHMMSS>-<name>`` folder (``-1``, ``-2`` ... appended on a clash)."""
    root = Path(base) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    path, i = root, 0
    while path.exists():
        i += 1
        path = Path(f"{root}-{i}")
    path.mkdir(parents=True)
    return path


def write_args(run_dir: Path, args: Mapping[str, Any]) -> None:
    """The run's options as YAML (``args.yaml``)."""
    with open(run_dir / "args.yaml", "w") as f:
        yaml.safe_dump(dict(args), f, sort_keys=True)


def append_summary(run_dir: Path, row: Mapping[str, Any]) -> None:
    """Append one epoch's metrics to ``summary.csv`` (header written once)."""
    path = run_dir / "summary.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write atomically (temp file + rename) so an interrupted save never leaves a broken ``last.pth.tar``."""
    tmp = path.with_suffix(".tmp")
    torch.save({"version": CHECKPOINT_VERSION, **state}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written here (or a bare state dict, returned as ``{'state_dict': ...}``)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint: {p} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
        raise CheckpointError(f"checkpoint: cannot read {p}: {exc}") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint: {p} holds a {type(ckpt).__name__}, not a dict")
    if "state_dict" not in ckpt:
        if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            return {"state_dict": ckpt}
        raise CheckpointError(f"checkpoint: {p} has no 'state_dict'")
    return ckpt


def model_state(ckpt: Mapping[str, Any], *, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The weights to evaluate or build on: the EMA copy when present and wanted, without ``module.``."""
    sd = ckpt.get("state_dict_ema") if use_ema and ckpt.get("state_dict_ema") else ckpt["state_dict"]
    return {k.removeprefix("module."): v for k, v in sd.items()}
