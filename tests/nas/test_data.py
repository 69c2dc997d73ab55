"""Data sets: digits, synthetic, ImageFolder and the per-class split."""

from __future__ import annotations

import pytest
import torch

from nas.data import DataError, build_dataset, num_classes, shard, split_per_class


def test_digits_split_is_fixed_stratified_and_disjoint():
    train = build_dataset("digits", "train", 32, train_transforms=False)
    val = build_dataset("digits", "val", 32, train_transforms=False)
    assert len(train) + len(val) == 1797 and len(val) == 360
    assert num_classes(train) == 10 and set(val.targets) == set(range(10))
    img, label = val[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and isinstance(label, int)
    assert torch.equal(img[0], img[1]) and img.min() >= -1 and img.max() <= 1
    again = build_dataset("digits", "val", 32, train_transforms=False)
    assert again.targets == val.targets and torch.equal(again[5][0], val[5][0])
    # disjoint: no val image equals a train image at the source resolution
    train_set = {tuple(t.flatten().tolist()) for t in train.images}
    overlap = sum(tuple(v.flatten().tolist()) in train_set for v in val.images)
    assert overlap < 5  # digits has a few exact duplicates across the whole set


def test_train_transforms_augment():
    ds = build_dataset("digits", "train", 32, train_transforms=True)
    torch.manual_seed(0)
    a = ds[0][0]
    b = ds[0][0]
    assert not torch.equal(a, b)


def test_any_resolution():
    assert build_dataset("synthetic", "val", 48, train_transforms=False)[0][0].shape == (3, 48, 48)


def test_split_per_class_takes_leading_images_of_each_class():
    val = build_dataset("digits", "val", 32, train_transforms=False)
    first, rest = split_per_class(val, 80)
    assert len(first) + len(rest) == len(val)
    assert set(first.indices).isdisjoint(rest.indices)
    for c in range(10):
        idx = [i for i, t in enumerate(val.targets) if t == c]
        cut = int(len(idx) * 0.8)
        assert [i for i in first.indices if val.targets[i] == c] == idx[:cut]
    assert num_classes(first) == 10 and first.targets == [val.targets[i] for i in first.indices]


def test_shard_is_exact():
    val = build_dataset("synthetic", "val", 32, train_transforms=False)
    parts = [shard(val, r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p.indices) == list(range(len(val)))


def test_image_folder(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 30), (i * 100, 50, 0)).save(tmp_path / split / cls / f"{i}.png")
    ds = build_dataset(str(tmp_path), "train", 32, train_transforms=True)
    assert num_classes(ds) == 2 and ds.targets == [0, 0, 1, 1]
    assert ds[0][0].shape == (3, 32, 32)
    assert build_dataset(str(tmp_path), "val", 32, train_transforms=False)[3][0].shape == (3, 32, 32)


def test_missing_folder_errors(tmp_path):
    with pytest.raises(DataError, match="neither"):
        build_dataset(str(tmp_path / "nope"), "train", 32, train_transforms=False)
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="val"):
        build_dataset(str(tmp_path), "val", 32, train_transforms=False)
    with pytest.raises(DataError, match="split"):
        build_dataset("digits", "test", 32, train_transforms=False)
