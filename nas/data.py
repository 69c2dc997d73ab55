"""Datasets for training, search and validation: scikit-learn digits, a synthetic set, or an ImageFolder root.

``build_dataset(name_or_path, split, resolution, train_transforms=...)`` returns a dataset of
``(image [3, R, R] float tensor, label)`` pairs exposing ``.targets`` and ``.num_classes``.

* ``digits``: scikit-learn's bundled 1,797 real 8x8 grey digit images (no download), resized to the resolution,
  made 3-channel, with a fixed stratified 80/20 train/val split (seed 0).
* ``synthetic``: class templates plus noise, generated from a fixed seed, for smoke tests.
* any other value: an ImageFolder root with ``train/`` and ``val/`` sub-folders and ImageNet-style transforms.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

__all__ = [
    "DataError",
    "LabeledSubset",
    "SPLITS",
    "build_dataset",
    "num_classes",
    "shard",
    "split_per_class",
]

SPLITS = ("train", "val")
#: Normalisation of the tensor data sets (digits, synthetic): [0, 1] -> [-1, 1].
_TENSOR_MEAN, _TENSOR_STD = 0.5, 0.5


class DataError(ValueError):
    """A data set that cannot be found or read; the message says what is wrong and where."""


class TensorImageDataset(Dataset):
    """Small grey images held in memory, resized per item to ``resolution`` and repeated to 3 channels."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: list[int],
        classes: int,
        resolution: int,
        *,
        train_transforms: bool,
    ):
        self.images = images  # [N, 1, h, w] in [0, 1]
        self.targets = list(targets)
        self.num_classes = classes
        self.resolution = resolution
        self.augment = _tensor_train_transform(resolution) if train_transforms else None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = F.interpolate(
            self.images[index : index + 1], size=(self.resolution,) * 2, mode="bilinear", align_corners=False
        )[0]
        if self.augment is not None:
            img = self.augment(img)
        img = (img.expand(3, -1, -1) - _TENSOR_MEAN) / _TENSOR_STD
        return img.contiguous(), self.targets[index]


def _tensor_train_transform(resolution: int):
    from torchvision import transforms

    return transforms.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))


def _digits(split: str, resolution: int, train_transforms: bool) -> TensorImageDataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    idx = np.arange(len(data.target))
    train_idx, val_idx = train_test_split(idx, test_size=0.2, random_state=0, stratify=data.target)
    chosen = np.sort(train_idx if split == "train" else val_idx)
    images = torch.from_numpy(data.images[chosen]).float().div_(16.0).unsqueeze(1)
    targets = [int(t) for t in data.target[chosen]]
    return TensorImageDataset(images, targets, 10, resolution, train_transforms=train_transforms)


def _synthetic(split: str, resolution: int, train_transforms: bool, classes: int = 10) -> TensorImageDataset:
    gen = torch.Generator().manual_seed(1234)
    templates = torch.rand(classes, 1, 8, 8, generator=gen)
    per_class = 32 if split == "train" else 8
    gen_split = torch.Generator().manual_seed(0 if split == "train" else 1)
    targets = [c for c in range(classes) for _ in range(per_class)]
    noise = 0.15 * torch.randn(len(targets), 1, 8, 8, generator=gen_split)
    images = (templates[torch.tensor(targets)] + noise).clamp_(0, 1)
    return TensorImageDataset(images, targets, classes, resolution, train_transforms=train_transforms)


def _image_folder(root: str, split: str, resolution: int, train_transforms: bool) -> Dataset:
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    folder = Path(root) / split
    if not Path(root).is_dir():
        raise DataError(f"data: {root!r} is neither 'digits', 'synthetic' nor an existing folder")
    if not folder.is_dir():
        raise DataError(f"data: {folder} does not exist (an ImageFolder root needs train/ and val/ sub-folders)")
    transform = create_transform(
        resolution,
        is_training=train_transforms,
        auto_augment="rand-m9-mstd0.5" if train_transforms else None,
        re_prob=0.2 if train_transforms else 0.0,
        color_jitter=0.4,
        interpolation="bicubic",
        crop_pct=0.875,
    )
    try:
        ds = ImageFolder(str(folder), transform=transform)
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"data: cannot read {folder}: {exc}") from None
    ds.num_classes = len(ds.classes)  # type: ignore[attr-defined]
    return ds


def build_dataset(name_or_path: str, split: str, resolution: int, *, train_transforms: bool) -> Dataset:
    """The ``split`` (``train`` or ``val``) of ``digits``, ``synthetic`` or an ImageFolder root, at ``resolution``."""
    if split not in SPLITS:
        raise DataError(f"data: split must be one of {SPLITS}, got {split!r}")
    if not isinstance(resolution, int) or resolution < 8:
        raise DataError(f"data: resolution must be an integer >= 8, got {resolution!r}")
    if name_or_path == "digits":
        return _digits(split, resolution, train_transforms)
    if name_or_path == "synthetic":
        return _synthetic(split, resolution, train_transforms)
    return _image_folder(name_or_path, split, resolution, train_transforms)


class LabeledSubset(Subset):
    """A :class:`~torch.utils.data.Subset` that keeps ``.targets`` and ``.num_classes``."""

    @property
    def targets(self) -> list[int]:
        base = _targets(self.dataset)
        return [base[i] for i in self.indices]

    @property
    def num_classes(self) -> int:
        return num_classes(self.dataset)


def _targets(dataset: Dataset) -> list[int]:
    if isinstance(dataset, Subset) and not hasattr(dataset, "targets"):
        base = _targets(dataset.dataset)
        return [base[i] for i in dataset.indices]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise DataError("data: the data set exposes no .targets")
    return [int(t) for t in targets]


def num_classes(dataset: Dataset) -> int:
    """Number of classes of a data set built here (or a subset of one)."""
    n = getattr(dataset, "num_classes", None)
    if n is not None:
        return int(n)
    if isinstance(dataset, Subset):
        return num_classes(dataset.dataset)
    classes = getattr(dataset, "classes", None)
    if classes is not None:
        return len(classes)
    return max(_targets(dataset)) + 1


def split_per_class(dataset: Dataset, train_percent: float) -> tuple[LabeledSubset, LabeledSubset]:
    """The first ``train_percent`` % of each class (in data-set order) and the rest (the search's held-out split)."""
    if not 0.0 <= train_percent <= 100.0:
        raise DataError(f"data: train_percent must lie in [0, 100], got {train_percent}")
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(_targets(dataset)):
        by_class.setdefault(t, []).append(i)
    first: list[int] = []
    rest: list[int] = []
    for idx in by_class.values():
        cut = math.floor(len(idx) * train_percent / 100.0 + 1e-9)
        first.extend(idx[:cut])
        rest.extend(idx[cut:])
    return LabeledSubset(dataset, sorted(first)), LabeledSubset(dataset, sorted(rest))


def shard(dataset: Dataset, rank: int, world_size: int) -> Dataset:
    """Every ``world_size``-th item starting at ``rank`` (exact, no padding): distributed validation."""
    if world_size <= 1:
        return dataset
    return LabeledSubset(dataset, list(range(rank, len(dataset), world_size)))
