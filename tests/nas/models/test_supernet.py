"""The elastic supernet: modes agree with each other and with extracted timm children."""

from __future__ import annotations

import random

import pytest
import torch

from nas.models.child import extract_child
from nas.models.supernet import ElasticSupernet
from shared.builders import build_network
from shared.search_space import HARDCORENAS, ArchChoice

RES = 32


def random_choice(rng: random.Random) -> ArchChoice:
    return ArchChoice(
        tuple(tuple(rng.randrange(12) for _ in range(rng.choice((2, 3, 4)))) for _ in range(HARDCORENAS.num_stages))
    )


def test_attributes():
    net = ElasticSupernet(num_classes=7)
    assert (net.num_stages, net.max_depth, net.num_options, net.num_depths) == (5, 4, 12, 3)
    assert net(torch.randn(2, 3, RES, RES)).shape == (2, 7)


def test_channel_table_stage1():
    """Spec 1.2 table: stage 1 block 0 mids 48/64/96, SE 16/16/24; blocks 1-3 mids 72/96/144, SE 24/24/40."""
    net = ElasticSupernet(num_classes=10)
    b0, b1 = net.blocks[1][0], net.blocks[1][1]
    assert (b0.mid_chs, b0.rd_chs) == ([48, 64, 96], [16, 16, 24])
    assert (b1.mid_chs, b1.rd_chs) == ([72, 96, 144], [24, 24, 40])
    assert b1.has_skip and not b0.has_skip
    assert len(b0.bn3) == 6 and len(b0.conv_dw) == 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_extracted_child_equals_supernet(trained_supernet, seed):
    choice = random_choice(random.Random(seed))
    child = extract_child(trained_supernet, choice).eval()
    trained_supernet.set_child(choice)
    x = torch.randn(4, 3, RES, RES)
    with torch.no_grad():
        torch.testing.assert_close(child(x), trained_supernet(x), rtol=1e-5, atol=1e-5)


def test_child_equality_at_224():
    """The same at the canonical resolution with a published network (HardCoRe-NAS A)."""
    from shared.published import PUBLISHED

    net = ElasticSupernet(num_classes=10).eval()
    choice = HARDCORENAS.choice_from_arch(PUBLISHED["A"].arch)
    child = extract_child(net, choice).eval()
    net.set_child(choice)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(child(x), net(x), rtol=1e-4, atol=1e-4)


def test_multipath_is_per_image_child(trained_supernet):
    """In eval mode, multipath image n equals the fixed child built from image n's draws."""
    net = trained_supernet
    options, depths = net.sample_paths(6)
    x = torch.randn(6, 3, RES, RES)
    with torch.no_grad():
        y = net.forward_paths(x, options, depths)
        for n in range(6):
            choice = ArchChoice(
                tuple(tuple(options[s, : HARDCORENAS.depths[depths[s, n]], n].tolist()) for s in range(5))
            )
            net.set_child(choice)
            torch.testing.assert_close(net(x[n : n + 1]), y[n : n + 1], rtol=1e-4, atol=1e-5)


def one_hot_weights(options: torch.Tensor, depths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    alpha = torch.nn.functional.one_hot(options, 12).permute(0, 1, 3, 2).float()  # [S, D, 12, B]
    beta = torch.nn.functional.one_hot(depths, 3).permute(0, 2, 1).float()  # [S, 3, B]
    return alpha, beta


def test_weighted_one_hot_matches_multipath_and_gives_gradients(trained_supernet):
    net = trained_supernet
    options, depths = net.sample_paths(4)
    x = torch.randn(4, 3, RES, RES)
    alpha, beta = one_hot_weights(options, depths)
    alpha.requires_grad_(True)
    beta.requires_grad_(True)
    y = net.forward_weighted(x, alpha, beta)
    with torch.no_grad():
        torch.testing.assert_close(y, net.forward_paths(x, options, depths), rtol=1e-4, atol=1e-5)
    y.logsumexp(1).sum().backward()
    assert alpha.grad.shape == alpha.shape and beta.grad.shape == beta.shape
    # every option gets a gradient (all run on the whole batch), even unselected ones
    assert (alpha.grad[0, 0].abs().sum(1) > 0).all()
    assert torch.isfinite(alpha.grad).all() and (beta.grad.abs().sum() > 0)


def test_weighted_gradient_is_directional_derivative(trained_supernet):
    """d loss / d alpha_i equals the finite-difference change when a little of option i is mixed in."""
    net = trained_supernet.double()
    try:
        options, depths = net.sample_paths(2)
        x = torch.randn(2, 3, RES, RES, dtype=torch.float64)
        alpha, beta = one_hot_weights(options, depths)
        alpha, beta = alpha.double().requires_grad_(True), beta.double()
        net.forward_weighted(x, alpha, beta).sum().backward()
        eps = 1e-6
        bumped = alpha.detach().clone()
        bumped[4, 1, 5, 0] += eps
        with torch.no_grad():
            fd = (net.forward_weighted(x, bumped, beta).sum() - net.forward_weighted(x, alpha, beta).sum()) / eps
        assert abs(fd.item() - alpha.grad[4, 1, 5, 0].item()) < 1e-4 * max(1.0, abs(fd.item()))
    finally:
        net.float()


def test_weighted_rejects_bad_shapes(trained_supernet):
    with pytest.raises(ValueError, match="alpha_w"):
        trained_supernet.forward_weighted(torch.randn(2, 3, RES, RES), torch.zeros(5, 4, 12, 3), torch.zeros(5, 3, 2))


def test_multipath_trains_all_options():
    """One multipath step on a batch gives gradients to both kernels and several bn3 copies."""
    net = ElasticSupernet(num_classes=10).train()
    net.set_multipath(torch.Generator().manual_seed(0))
    net(torch.randn(32, 3, RES, RES)).sum().backward()
    block = net.blocks[2][1]
    assert all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in block.conv_dw)
    assert sum(bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0 for bn in block.bn3) >= 4


def test_multipath_draws_follow_generator():
    net = ElasticSupernet(num_classes=10)
    net.set_multipath(torch.Generator().manual_seed(5))
    a = net.sample_paths(8)
    net.set_multipath(torch.Generator().manual_seed(5))
    b = net.sample_paths(8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (5, 4, 8) and a[1].shape == (5, 8) and int(a[0].max()) < 12


def test_set_child_training_updates_only_leading_bn_channels():
    net = ElasticSupernet(num_classes=10).train()
    choice = HARDCORENAS.lightest()  # er 3 -> 48 of 96 channels in stage 1 block 0
    net.set_child(choice)
    bn = net.blocks[1][0].bn1
    before = bn.running_mean.clone()
    net(torch.randn(4, 3, RES, RES))
    changed = (bn.running_mean != before).nonzero().flatten()
    assert changed.numel() > 0 and int(changed.max()) < 48


def test_load_heaviest_reproduces_teacher():
    space = HARDCORENAS
    teacher = build_network(space.arch_from_choice(space.heaviest()), num_classes=10)
    # non-trivial BN statistics
    teacher.train()
    with torch.no_grad():
        teacher(torch.randn(8, 3, RES, RES))
    teacher.eval()
    net = ElasticSupernet(num_classes=10)
    net.load_heaviest(teacher.state_dict())
    net.eval().set_child(space.heaviest())
    x = torch.randn(3, 3, RES, RES)
    with torch.no_grad():
        torch.testing.assert_close(net(x), teacher(x), rtol=1e-5, atol=1e-5)
    # the k=3 kernel is the centre of the k=5 kernel, not random
    blk = net.blocks[3][2]
    torch.testing.assert_close(blk.conv_dw[0].weight, blk.conv_dw[1].weight[..., 1:4, 1:4])
    torch.testing.assert_close(blk.bn3[0].weight, blk.bn3[5].weight)


def test_load_heaviest_rejects_other_state_dict():
    net = ElasticSupernet(num_classes=10)
    with pytest.raises(ValueError, match="missing"):
        net.load_heaviest({"conv_stem.weight": torch.zeros(1)})
    other = build_network(HARDCORENAS.arch_from_choice(HARDCORENAS.heaviest()), num_classes=5).state_dict()
    with pytest.raises(ValueError, match="shape mismatch"):
        net.load_heaviest(other)


def test_features_for_distillation():
    net = ElasticSupernet(num_classes=10).eval()
    logits, feats = net(torch.randn(2, 3, RES, RES), return_features=True)
    assert logits.shape == (2, 10) and len(feats) == 8
    assert [f.shape[1] for f in feats] == [32, 16, 24, 40, 80, 112, 192, 960]


def test_multipath_bn_copies_share_whole_batch_statistics():
    """Training: every present bn3 copy is updated with the statistics of the whole mixed batch (as the original)."""
    net = ElasticSupernet(num_classes=10).train()
    net.set_multipath(torch.Generator().manual_seed(1))
    with torch.no_grad():
        net(torch.randn(32, 3, RES, RES))
    block = net.blocks[2][2]
    updated = [bn for bn in block.bn3 if int(bn.num_batches_tracked) == 1]
    assert len(updated) >= 2
    for bn in updated[1:]:
        torch.testing.assert_close(bn.running_mean, updated[0].running_mean)
        torch.testing.assert_close(bn.running_var, updated[0].running_var)


def test_recalibrate_bn_matches_batch_statistics(trained_supernet):
    import copy

    from nas.training import recalibrate_bn

    net = copy.deepcopy(trained_supernet)
    choice = random_choice(random.Random(7))
    net.set_child(choice)
    x = torch.randn(64, 3, RES, RES)
    assert recalibrate_bn(net, [x]) == 1 and not net.training
    with torch.no_grad():
        torch.testing.assert_close(net.bn1.running_mean, net.conv_stem(x).mean((0, 2, 3)))
        eval_out, eval_feats = net(x, return_features=True)
        net.train()
        _, train_feats = net(x, return_features=True)  # batch statistics of the same batch
    # equal up to the unbiased-variance factor n/(n-1) of the running statistics, which compounds with depth
    for e, t in zip(eval_feats[:4], train_feats[:4], strict=True):
        assert (e - t).abs().mean() < 0.01 * t.abs().mean()
