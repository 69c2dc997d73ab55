"""The three training phases as library calls: heaviest network, one-shot supernet, child fine-tuning."""

from __future__ import annotations

import copy
import itertools
import json
import logging
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from nas.data import build_dataset, num_classes, split_per_class
from nas.models.supernet import ElasticSupernet
from nas.training.bn import recalibrate_bn
from nas.training.checkpoint import CheckpointError
from nas.training.config import TrainConfig
from nas.training.distributed import DistInfo, cleanup_distributed, setup_distributed
from nas.training.engine import FitResult, TrainTask, evaluate_classifier, fit
from nas.training.losses import classification_loss, distillation_loss, kd_kl, network_features
from nas.training.models import load_network, load_supernet
from nas.training.reorder import reorder_by_importance
from shared.arch_string import format_arch
from shared.builders import build_network
from shared.search_space import HARDCORENAS, SearchSpace

__all__ = ["arch_from_search_result", "finetune", "reorder_teacher", "train_heaviest", "train_supernet"]

_log = logging.getLogger(__name__)


def _datasets(cfg: TrainConfig):
    train = build_dataset(cfg.data, "train", cfg.resolution, train_transforms=True)
    val = build_dataset(cfg.data, "val", cfg.resolution, train_transforms=False)
    return train, val


def _run_name(phase: str, cfg: TrainConfig) -> str:
    data = Path(cfg.data).name if cfg.data not in ("digits", "synthetic") else cfg.data
    return f"{phase}-{data}-{cfg.resolution}"


def _with_dist(fn):
    """Set the process group up around a phase when the caller did not pass a :class:`DistInfo`."""

    def wrapper(cfg: TrainConfig, info: DistInfo | None = None, **kwargs) -> FitResult:
        if info is not None:
            return fn(cfg, info, **kwargs)
        info = setup_distributed(cfg.device)
        try:
            return fn(cfg, info, **kwargs)
        finally:
            cleanup_distributed()

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


def _fresh_network(arch: str, n_cls: int, cfg: TrainConfig) -> nn.Module:
    """A randomly initialised network whose classifier starts at zero (a uniform first prediction): without it the
    deep, un-normalised head gives initial losses near 7 and small data sets train far more slowly."""
    net = build_network(arch, num_classes=n_cls, drop_rate=cfg.drop, drop_path_rate=cfg.drop_path)
    nn.init.zeros_(net.classifier.weight)
    return net


def _teacher(path: str, info: DistInfo) -> nn.Module:
    teacher, _, _ = load_network(path)
    teacher.to(info.device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@_with_dist
def train_heaviest(cfg: TrainConfig, info: DistInfo, space: SearchSpace = HARDCORENAS) -> FitResult:
    """Phase 1: the heaviest sub-network as a plain timm MobileNetV3, smoothed CE."""
    train_set, val_set = _datasets(cfg)
    arch = format_arch(space.arch_from_choice(space.heaviest()))
    n_cls = num_classes(train_set)
    model = _fresh_network(arch, n_cls, cfg)
    criterion = classification_loss(cfg.smoothing)

    def loss_fn(m: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return criterion(m(x), y)

    meta = {"kind": "heaviest", "arch": arch, "space": space.name, "num_classes": n_cls, "resolution": cfg.resolution}
    task = TrainTask(_run_name("heaviest", cfg), model, loss_fn, evaluate_classifier, meta)
    return fit(task, cfg, train_set, val_set, info)


@_with_dist
def train_supernet(cfg: TrainConfig, info: DistInfo) -> FitResult:
    """Phase 2: one-shot multipath training with in-place distillation from the heaviest network.

    The supernet is seeded from the teacher (``cfg.teacher``) unless ``cfg.initial_checkpoint`` holds a supernet.
    Validation reports the heaviest and the lightest child (BN statistics recalibrated for each on
    ``cfg.bn_recal_batches`` training batches, in a copy); the checkpoint metric is their mean top-1.
    """
    if not cfg.teacher:
        raise CheckpointError("train-supernet needs --teacher (a train-heaviest checkpoint)")
    train_set, val_set = _datasets(cfg)
    teacher = _teacher(cfg.teacher, info)
    n_cls = num_classes(train_set)
    if teacher.num_classes != n_cls:
        raise CheckpointError(f"--teacher has {teacher.num_classes} classes, the data {n_cls}")
    if cfg.initial_checkpoint:
        model = load_supernet(cfg.initial_checkpoint)
        model.drop_rate = cfg.drop
    else:
        model = ElasticSupernet(HARDCORENAS, num_classes=n_cls, drop_rate=cfg.drop)
        if cfg.reorder_channels:
            reorder_teacher(teacher, cfg.data, cfg.resolution, cfg.batch_size, info.device)
        try:
            model.load_heaviest(teacher.state_dict())
        except ValueError as exc:
            raise CheckpointError(f"--teacher is not the heaviest network of the space: {exc}") from None
    space = model.space
    generator = torch.Generator().manual_seed(cfg.seed + 1000 * info.rank)
    criterion = classification_loss(cfg.smoothing)

    def loss_fn(m: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        logits, feats = m(x, return_features=True)
        with torch.no_grad():
            t_logits, t_feats = network_features(teacher, x)
        return criterion(logits, y) + distillation_loss(
            logits,
            feats,
            t_logits,
            t_feats,
            gamma=cfg.gamma_knowledge,
            ikd_divisor=cfg.ikd_divisor,
            real_kd=cfg.real_kd,
        )

    recal_loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=cfg.workers,
        generator=torch.Generator().manual_seed(cfg.seed),
        drop_last=True,
    )

    def evaluate(m: nn.Module, loader, dinfo: DistInfo) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, choice in (("heaviest", space.heaviest()), ("lightest", space.lightest())):
            child = copy.deepcopy(m) if cfg.bn_recal_batches else m
            child.set_child(choice)
            if cfg.bn_recal_batches:
                batches = (x for x, _ in itertools.islice(recal_loader, cfg.bn_recal_batches))
                recalibrate_bn(child, batches, dinfo.device)
            r = evaluate_classifier(child, loader, dinfo)
            out.update({f"top1_{name}": r["top1"], f"top5_{name}": r["top5"]})
        out["top1"] = (out["top1_heaviest"] + out["top1_lightest"]) / 2
        return out

    def on_train_epoch(m: nn.Module, epoch: int) -> None:
        m.set_multipath(generator)

    meta = {"kind": "supernet", "arch": None, "space": space.name, "num_classes": n_cls, "resolution": cfg.resolution}
    task = TrainTask(
        _run_name("supernet", cfg),
        model,
        loss_fn,
        evaluate,
        meta,
        find_unused_parameters=True,
        on_train_epoch=on_train_epoch,
    )
    return fit(task, cfg, train_set, val_set, info)


#: Share of each class of the training data the channel importance is measured on (the original's).
REORDER_PERCENT = 10.0


def reorder_teacher(teacher: nn.Module, data: str, resolution: int, batch_size: int, device: torch.device) -> None:
    """Sort the teacher's sliceable channels by importance (its function unchanged) before it seeds the supernet,
    scored on the first :data:`REORDER_PERCENT` % of each class of ``data``'s training split."""
    scoring, _ = split_per_class(build_dataset(data, "train", resolution, train_transforms=False), REORDER_PERCENT)
    images = reorder_by_importance(teacher, DataLoader(scoring, batch_size=batch_size, shuffle=False), device)
    _log.info("teacher channels reordered by Taylor importance on %d training images", images)


def arch_from_search_result(path: str) -> str:
    """The architecture string of a ``nas search`` result JSON (key ``arch``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"--search-result: cannot read {path}: {exc}") from None
    for key in ("arch", "arch_str", "architecture"):
        if isinstance(data, dict) and isinstance(data.get(key), str):
            return data[key]
    if isinstance(data, dict) and isinstance(data.get("result"), dict) and isinstance(data["result"].get("arch"), str):
        return data["result"]["arch"]
    raise CheckpointError(f"--search-result: {path} has no 'arch' string")


@_with_dist
def finetune(cfg: TrainConfig, info: DistInfo) -> FitResult:
    """Phase 4: a child sliced from the supernet (``cfg.supernet``), trained with CE + gamma * KL to the teacher.

    ``cfg.arch`` or ``cfg.search_result`` names the child. Without ``cfg.supernet`` the child starts from scratch;
    without ``cfg.teacher`` there is no distillation.
    """
    arch = cfg.arch or (arch_from_search_result(cfg.search_result) if cfg.search_result else "")
    if not arch:
        raise CheckpointError("finetune needs --arch or --search-result")
    train_set, val_set = _datasets(cfg)
    n_cls = num_classes(train_set)
    if cfg.supernet:
        model, arch, _ = load_network(cfg.supernet, arch, drop_rate=cfg.drop, drop_path_rate=cfg.drop_path)
    else:
        _log.warning("no --supernet: the child starts from random weights")
        arch = format_arch(HARDCORENAS.arch_from_choice(HARDCORENAS.choice_from_arch(arch)))
        model = _fresh_network(arch, n_cls, cfg)
    if model.num_classes != n_cls:
        raise CheckpointError(f"--supernet has {model.num_classes} classes, the data {n_cls}")
    teacher = _teacher(cfg.teacher, info) if cfg.teacher else None
    criterion = classification_loss(cfg.smoothing)

    def loss_fn(m: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        logits = m(x)
        loss = criterion(logits, y)
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
            loss = loss + cfg.gamma_knowledge * kd_kl(logits, t_logits)
        return loss

    meta = {
        "kind": "child",
        "arch": arch,
        "space": HARDCORENAS.name,
        "num_classes": n_cls,
        "resolution": cfg.resolution,
    }
    task = TrainTask(_run_name("finetune", cfg), model, loss_fn, evaluate_classifier, meta)
    return fit(task, cfg, train_set, val_set, info)
