"""Channel reordering by Taylor importance: the heaviest network's function is unchanged, its sliceable channels
end sorted by importance, and train-supernet seeds from the reordered teacher."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from nas.cli import main
from nas.data import build_dataset, split_per_class
from nas.models.supernet import ElasticSupernet
from nas.training import load_checkpoint
from nas.training.reorder import block_channel_importance, permute_block_channels, reorder_by_importance
from shared.builders import build_network
from shared.search_space import HARDCORENAS

from ._helpers import FAST, run_dir

RES = 32


@pytest.fixture(scope="module")
def teacher_and_batches():
    """A heaviest network with non-trivial BN statistics and two batches of digits (scoring) plus a probe batch."""
    torch.manual_seed(0)
    net = build_network(HARDCORENAS.arch_from_choice(HARDCORENAS.heaviest()), num_classes=10)
    train = build_dataset("digits", "train", RES, train_transforms=False)
    scoring, rest = split_per_class(train, 10)
    net.train()
    with torch.no_grad():
        for x, _ in itertools.islice(DataLoader(rest, batch_size=32, shuffle=True), 2):
            net(x)
    net.eval()
    batches = list(itertools.islice(DataLoader(scoring, batch_size=16), 2))
    probe = next(iter(DataLoader(rest, batch_size=16)))[0]
    return net, batches, probe


def test_reordering_leaves_the_output_unchanged_and_sorts_the_channels(teacher_and_batches) -> None:
    net, batches, probe = teacher_and_batches
    net = _copy(net)
    before = net(probe).detach()
    weights_before = net.blocks[3][1].conv_pw.weight.detach().clone()
    assert reorder_by_importance(net, batches) == sum(len(y) for _, y in batches)
    after = net(probe).detach()
    assert torch.allclose(before, after, atol=1e-4 * before.abs().max().item(), rtol=0)
    assert not torch.equal(weights_before, net.blocks[3][1].conv_pw.weight)  # something moved
    assert all(not p.requires_grad or p.grad is None for p in net.parameters())
    # scored again, every block's channels now come in descending order of importance
    for p in net.parameters():
        p.grad = None
    for x, y in batches:
        torch.nn.functional.cross_entropy(net(x), y, reduction="sum").backward()
    for stage in list(net.blocks)[1:-1]:
        for block in stage:
            mid, hidden = block_channel_importance(block)
            assert torch.all(mid[:-1] >= mid[1:] * (1 - 1e-4) - 1e-12)
            assert torch.all(hidden[:-1] >= hidden[1:] * (1 - 1e-4) - 1e-12)


def test_a_permutation_that_misses_a_tensor_is_caught(teacher_and_batches, monkeypatch) -> None:
    """The output check is real: a permutation that forgets the projection's input channels changes the output."""
    net, batches, _ = teacher_and_batches
    net = _copy(net)

    def broken(block, mid_order, hidden_order=None):
        keep = block.conv_pwl.weight.detach().clone()
        permute_block_channels(block, mid_order, hidden_order)
        with torch.no_grad():
            block.conv_pwl.weight.copy_(keep)

    monkeypatch.setattr("nas.training.reorder.permute_block_channels", broken)
    with pytest.raises(RuntimeError, match="changed the network's output"):
        reorder_by_importance(net, batches)


def test_narrow_children_keep_the_important_channels(teacher_and_batches) -> None:
    """After reordering, the supernet's narrowest option at one block holds that block's highest-scored channels."""
    net, batches, _ = teacher_and_batches
    net = _copy(net)
    reorder_by_importance(net, batches)
    for p in net.parameters():
        p.grad = None
    for x, y in batches:
        torch.nn.functional.cross_entropy(net(x), y, reduction="sum").backward()
    mid, _ = block_channel_importance(net.blocks[2][0])
    supernet = ElasticSupernet(HARDCORENAS, num_classes=10)
    supernet.load_heaviest(net.state_dict())
    narrow = supernet.blocks[2][0].mid_chs[0]
    assert mid[:narrow].min() >= mid[narrow:].max() * (1 - 1e-4)


def test_train_supernet_can_skip_the_reordering(tmp_path, heaviest_dir, caplog) -> None:
    """On by default (the supernet fixture of the other tests reorders); --no-reorder-channels skips it."""
    teacher = str(heaviest_dir / "last.pth.tar")
    out = tmp_path / "plain"
    argv = ["train-supernet", "digits", *FAST, "--teacher", teacher, "--output", str(out), "--no-reorder-channels"]
    with caplog.at_level("INFO"):
        assert main(argv) == 0
    assert load_checkpoint(run_dir(out) / "last.pth.tar")["args"]["reorder_channels"] is False
    assert "reordered" not in caplog.text


def _copy(net):
    import copy

    return copy.deepcopy(net)
