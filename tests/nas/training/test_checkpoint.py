"""Checkpoints: every file the training writes loads with ``weights_only=True``; the one supernet loader checks
kind, space and shapes and says what is wrong in one line."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nas.models.supernet import ElasticSupernet
from nas.training import CheckpointError, TrainConfig, load_checkpoint, load_supernet, train_heaviest
from nas.training.checkpoint import plain_values
from shared.search_space import HARDCORENAS

from ._helpers import run_dir

PLAIN = (str, int, float, bool, type(None))


def _all_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _all_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_plain(v) for v in value)
    return isinstance(value, PLAIN)


@pytest.mark.slow
def test_training_checkpoints_load_with_weights_only(heaviest_dir: Path, supernet_dir: Path) -> None:
    for path in (heaviest_dir / "last.pth.tar", heaviest_dir / "model_best.pth.tar", supernet_dir / "last.pth.tar"):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        assert ckpt["kind"] in ("heaviest", "supernet") and _all_plain(ckpt["args"]), path


def test_paths_and_numpy_values_in_the_options_are_stored_as_plain_values(tmp_path: Path) -> None:
    """A library caller's TrainConfig may hold a Path: the real training path stores it as a string."""
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=16, val_batch_size=360, warmup_epochs=0, threads=1,
                      progress=False, output=tmp_path / "runs")  # type: ignore[arg-type]
    train_heaviest(cfg)
    d = run_dir(tmp_path / "runs")
    ckpt = torch.load(d / "last.pth.tar", map_location="cpu", weights_only=True)
    assert ckpt["args"]["output"] == str(tmp_path / "runs") and _all_plain(ckpt["args"])
    assert yaml.safe_load((d / "args.yaml").read_text())["output"] == str(tmp_path / "runs")
    assert plain_values({"a": (1, np.float32(0.5)), "b": Path("x"), "c": np.int64(3)}) == {"a": [1, 0.5], "b": "x",
                                                                                          "c": 3}


def test_a_checkpoint_holding_python_objects_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "timm-style.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError, match=r"argparse\.Namespace.*weights_only=True") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read .* as a torch file"):
        load_checkpoint(tmp_path / "text.pth")


def test_load_supernet_checks_kind_space_and_shapes(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = ElasticSupernet(HARDCORENAS, num_classes=10)
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    ckpt = {"kind": "supernet", "space": "hardcorenas", "num_classes": 10, "state_dict": net.state_dict(),
            "state_dict_ema": ema, "epoch": 0}
    torch.save(ckpt, tmp_path / "super.pth.tar")
    loaded = load_supernet(tmp_path / "super.pth.tar", space=HARDCORENAS)
    assert loaded.classifier.out_features == 10  # from the head
    assert torch.equal(loaded.conv_stem.weight, ema["conv_stem.weight"])  # the EMA weights
    raw = load_supernet(tmp_path / "super.pth.tar", use_ema=False)
    assert torch.equal(raw.conv_stem.weight, net.conv_stem.weight)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "bare.pth")  # DDP prefix
    assert torch.equal(load_supernet(tmp_path / "bare.pth", space=HARDCORENAS).conv_stem.weight, net.conv_stem.weight)

    torch.save({"kind": "child", "state_dict": {}}, tmp_path / "child.pth.tar")
    with pytest.raises(CheckpointError, match="is a child checkpoint, not a supernet"):
        load_supernet(tmp_path / "child.pth.tar")
    torch.save({**ckpt, "space": "another"}, tmp_path / "other.pth.tar")
    with pytest.raises(CheckpointError, match="supernet of space 'another', not 'hardcorenas'"):
        load_supernet(tmp_path / "other.pth.tar", space=HARDCORENAS)
    torch.save({"conv_stem.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="no classifier.weight"):
        load_supernet(tmp_path / "junk.pth")
    cut = {k: v for k, v in net.state_dict().items() if not k.startswith("blocks.4")}
    torch.save({"kind": "supernet", "state_dict": cut}, tmp_path / "cut.pth.tar")
    with pytest.raises(CheckpointError, match=r"not a supernet of space 'hardcorenas': \d+ missing"):
        load_supernet(tmp_path / "cut.pth.tar")
