"""Networks from checkpoints: the heaviest/child timm networks, the supernet, and a child sliced from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from timm.models.mobilenetv3 import MobileNetV3

from nas.models.child import extract_child
from nas.models.supernet import ElasticSupernet
from nas.training.checkpoint import CheckpointError, load_checkpoint, model_state
from shared.arch_string import ArchDef, ArchStringError, format_arch, parse_arch
from shared.builders import build_network
from shared.search_space import HARDCORENAS, SearchSpace, SearchSpaceError, get_space

__all__ = ["load_network", "load_supernet", "supernet_from_state"]


def _num_classes(sd: dict[str, torch.Tensor]) -> int:
    w = sd.get("classifier.weight")
    if w is None:
        raise CheckpointError("checkpoint: no classifier.weight, not a network of this project")
    return int(w.shape[0])


def supernet_from_state(
    ckpt: dict[str, Any], *, use_ema: bool = True, space: SearchSpace | None = None, source: str = "checkpoint"
) -> ElasticSupernet:
    """Rebuild the supernet stored in a ``supernet`` checkpoint dict (or a bare state dict wrapped by
    :func:`~nas.training.checkpoint.load_checkpoint`): its space (``space`` when it records none), its class count
    from the head, every tensor present and of the right shape."""
    name = ckpt.get("space") or (space or HARDCORENAS).name
    if space is not None and name != space.name:
        raise CheckpointError(f"checkpoint: {source} is a supernet of space {name!r}, not {space.name!r}")
    sd = model_state(ckpt, use_ema=use_ema)
    net = ElasticSupernet(get_space(name), num_classes=_num_classes(sd))
    try:
        missing, unexpected = net.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)[:200]
        raise CheckpointError(f"checkpoint: {source} is not a supernet of space {name!r}: {first}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint: {source} is not a supernet of space {name!r}: {len(missing)} missing and "
            f"{len(unexpected)} unexpected tensors (e.g. {(missing or unexpected)[0]})"
        )
    return net


def load_supernet(path: str | Path, *, space: SearchSpace | None = None, use_ema: bool = True) -> ElasticSupernet:
    """The supernet of a ``train-supernet`` checkpoint or of a bare supernet state dict, with its EMA weights when
    present and ``use_ema``. ``space``: the space the caller needs (a supernet of another space is refused).
    Raises :class:`~nas.training.checkpoint.CheckpointError` with one line for anything else."""
    ckpt = load_checkpoint(path)
    kind = ckpt.get("kind", "supernet")
    if kind != "supernet":
        raise CheckpointError(f"checkpoint: {path} is a {kind} checkpoint, not a supernet")
    return supernet_from_state(ckpt, use_ema=use_ema, space=space, source=str(path))


def load_network(
    path: str | Path,
    arch: str | ArchDef | None = None,
    *,
    use_ema: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> tuple[MobileNetV3, str, dict[str, Any]]:
    """A timm network from any checkpoint: a child/heaviest one (its own arch unless ``arch`` is given, which must
    match) or a supernet (then ``arch`` picks the child to slice). Returns (network, arch string, checkpoint)."""
    ckpt = load_checkpoint(path)
    try:
        arch_text = format_arch(parse_arch(arch)) if isinstance(arch, str) else (format_arch(arch) if arch else None)
    except ArchStringError as exc:
        raise ValueError(f"--arch: {exc}") from None
    if ckpt.get("kind") == "supernet":
        if arch_text is None:
            raise CheckpointError("checkpoint: a supernet checkpoint needs --arch to pick the child")
        supernet = supernet_from_state(ckpt, use_ema=use_ema, source=str(path))
        try:
            choice = supernet.space.choice_from_arch(arch_text)
        except SearchSpaceError as exc:
            raise SearchSpaceError(f"--arch is not a child of the supernet: {exc}") from None
        return extract_child(supernet, choice, drop_rate=drop_rate, drop_path_rate=drop_path_rate), arch_text, ckpt
    stored = ckpt.get("arch")
    if arch_text is None:
        if not stored:
            raise CheckpointError(f"checkpoint: {path} records no architecture; pass --arch")
        arch_text = stored
    sd = model_state(ckpt, use_ema=use_ema)
    net = build_network(arch_text, num_classes=_num_classes(sd), drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    try:
        net.load_state_dict(sd)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)[:200]]
        raise CheckpointError(f"checkpoint: {path} does not fit the architecture: {first[0].strip()}") from None
    return net, arch_text, ckpt
