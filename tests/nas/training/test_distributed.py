"""DDP on CPU: two gloo processes started by torchrun train a few supernet steps and end with identical weights."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml

from nas.latency.local_server import free_port
from nas.training import load_checkpoint

from ._helpers import FAST, run_dir, summary

pytestmark = pytest.mark.slow  # two torchrun processes training


def test_torchrun_two_cpu_processes_stay_in_sync(tmp_path, heaviest_dir):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "nas", "train-supernet", "digits", *FAST, "--steps-per-epoch", "3", "-b", "8", "--device", "cpu",
        "--teacher", str(heaviest_dir / "last.pth.tar"), "--output", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    # each rank checked, after the last step, that its parameters and buffers equal rank 0's bit for bit
    assert "rank 0: replicas identical" in log and "rank 1: replicas identical" in log
    d = run_dir(out)  # only rank 0 writes
    assert yaml.safe_load((d / "args.yaml").read_text())["world_size"] == 2
    assert len(summary(d)) == 1
    ckpt = load_checkpoint(d / "last.pth.tar")
    assert ckpt["kind"] == "supernet" and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
