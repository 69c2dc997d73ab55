"""Checkpoints and run folders: ``outputs/train/<date>-<time>-<name>/`` with ``last.pth.tar``,
``model_best.pth.tar``, ``args.yaml`` and ``summary.csv``.

A checkpoint is a dict saved with :func:`torch.save`:

* ``kind``: ``heaviest`` | ``supernet`` | ``child``; ``arch``: the arch string (``None`` for a supernet);
  ``space``: the search space's name; ``num_classes``; ``resolution``;
* ``state_dict`` (timm ``MobileNetV3`` names for heaviest/child, :class:`~nas.models.supernet.ElasticSupernet` names
  for a supernet; never a ``module.`` prefix) and ``state_dict_ema`` when EMA was on;
* ``epoch`` (last finished, 0-based), ``metric``, ``best_metric``, ``best_epoch``, ``optimizer``, ``scaler``,
  ``args`` (the run's options), ``version``.

Everything in it is a tensor or a plain value (str, int, float, bool, None, list, dict), so every checkpoint
loads with ``torch.load(weights_only=True)``, which runs no code from the file.
"""

from __future__ import annotations

import csv
import pickle
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from timm.models import clean_state_dict

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "load_checkpoint",
    "make_run_dir",
    "model_state",
    "plain_values",
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


def plain_values(value: Any) -> Any:
    """``value`` with every leaf a str, int, float, bool or None (tuples as lists, numpy scalars as numbers, paths
    and other objects as their string), as YAML and ``torch.load(weights_only=True)`` read it back."""
    if isinstance(value, Mapping):
        return {str(k): plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_values(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / 0-d torch scalars
        return value.item()
    return str(value)


def write_args(run_dir: Path, args: Mapping[str, Any]) -> None:
    """The run's options as YAML (``args.yaml``)."""
    with open(run_dir / "args.yaml", "w") as f:
        yaml.safe_dump(plain_values(args), f, sort_keys=True)


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
    """Write atomically (temp file + rename) so an interrupted save never leaves a broken ``last.pth.tar``;
    ``args`` is stored as plain values so the file loads with ``weights_only=True``."""
    state = {"version": CHECKPOINT_VERSION, **state}
    if "args" in state:
        state["args"] = plain_values(state["args"])
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _unsafe_globals(path: Path) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - only used to word the error
        return ""
    return ", ".join(names[:3])


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written here (or a bare state dict, returned as ``{'state_dict': ...}``) with
    ``weights_only=True``.

    Not timm's ``load_state_dict``: that returns only the weights, and a checkpoint here also says which network it
    holds (kind, arch, space, class count), which every caller checks before building one.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint: {p} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
        found = _unsafe_globals(p) if isinstance(exc, pickle.UnpicklingError) else ""
        if found:
            raise CheckpointError(
                f"checkpoint: {p} holds Python objects besides tensors and plain values ({found}), so it cannot be "
                "loaded safely (weights_only=True); save its state_dict alone, or a dict of tensors and plain values"
            ) from None
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"checkpoint: cannot read {p} as a torch file ({type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint: {p} holds a {type(ckpt).__name__}, not a dict")
    if "state_dict" not in ckpt:
        if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            return {"state_dict": ckpt}
        raise CheckpointError(f"checkpoint: {p} has no 'state_dict'")
    return ckpt


def model_state(ckpt: Mapping[str, Any], *, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The weights to evaluate or build on: the EMA copy when present and wanted, without a DDP or
    ``torch.compile`` prefix (timm's ``clean_state_dict``)."""
    sd = ckpt.get("state_dict_ema") if use_ema and ckpt.get("state_dict_ema") else ckpt["state_dict"]
    return clean_state_dict(sd)
