"""Fixtures of the training tests: a small supernet and the digits data at a tiny resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas.cli import main
from nas.models.supernet import ElasticSupernet

from ._helpers import FAST, run_dir

RES = 32


@pytest.fixture(scope="module")
def trained_supernet() -> ElasticSupernet:
    """A 10-class supernet after a few multipath training steps (non-trivial BN statistics), in eval mode."""
    torch.manual_seed(0)
    net = ElasticSupernet(num_classes=10)
    net.train()
    net.set_multipath(torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(net.parameters(), lr=0.005)
    for _ in range(3):
        x = torch.randn(16, 3, RES, RES)
        loss = torch.nn.functional.cross_entropy(net(x), torch.randint(0, 10, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="session")
def heaviest_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("heaviest")
    assert main(["train-heaviest", "digits", *FAST, "--output", str(out)]) == 0
    return run_dir(out)


@pytest.fixture(scope="session")
def supernet_dir(tmp_path_factory, heaviest_dir) -> Path:
    out = tmp_path_factory.mktemp("supernet")
    teacher = str(heaviest_dir / "last.pth.tar")
    assert main(["train-supernet", "digits", *FAST, "--teacher", teacher, "--output", str(out)]) == 0
    return run_dir(out)
