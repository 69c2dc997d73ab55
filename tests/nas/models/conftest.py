"""Fixtures of the model tests: a small supernet after a few training steps."""

from __future__ import annotations

import pytest
import torch

from nas.models.supernet import ElasticSupernet

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
