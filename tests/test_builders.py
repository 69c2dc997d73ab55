"""The builders reproduce timm's hardcorenas_a..f exactly, block by block, and, with its stem and head, timm's
mobilenetv3_small_100 from its arch def."""

from __future__ import annotations

import pytest
import timm
import torch

from shared.builders import block_input, build_block, build_network
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS

#: timm's ``mobilenetv3_small_100``: its arch def as timm writes it (``_gen_mobilenet_v3``), stem and head widths
MOBILENETV3_SMALL_ARCH = (
    "[['ds_r1_k3_s2_e1_c16_se0.25_nre'], ['ir_r1_k3_s2_e4.5_c24_nre', 'ir_r1_k3_s1_e3.67_c24_nre'], "
    "['ir_r1_k5_s2_e4_c40_se0.25', 'ir_r2_k5_s1_e6_c40_se0.25'], ['ir_r2_k5_s1_e3_c48_se0.25'], "
    "['ir_r3_k5_s2_e6_c96_se0.25'], ['cn_r1_k1_s1_c576']]"
)
MOBILENETV3_SMALL_WIDTHS = {"stem_size": 16, "num_features": 1024}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_network_equals_timm(name: str) -> None:
    reference = timm.create_model(f"hardcorenas_{name.lower()}", pretrained=False).eval()
    ours = build_network(PUBLISHED[name].arch).eval()
    ref_sd, our_sd = reference.state_dict(), ours.state_dict()
    assert list(ref_sd) == list(our_sd)
    assert all(ref_sd[k].shape == our_sd[k].shape for k in ref_sd)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    ours.load_state_dict(ref_sd)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_mobilenetv3_small_from_its_arch_def_equals_timm() -> None:
    """The same class, squeeze-excite and default activation as hardcorenas_*: only the stem and head differ."""
    reference = timm.create_model("mobilenetv3_small_100", pretrained=False).eval()
    ours = build_network(MOBILENETV3_SMALL_ARCH, **MOBILENETV3_SMALL_WIDTHS).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    ref_sd, our_sd = reference.state_dict(), ours.state_dict()
    assert list(ref_sd) == list(our_sd) and all(ref_sd[k].shape == our_sd[k].shape for k in ref_sd)
    ours.load_state_dict(ref_sd)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def _copy_and_compare(block: torch.nn.Module, module: torch.nn.Module, x: torch.Tensor) -> None:
    module.load_state_dict(block.state_dict())
    block.eval()
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(module(x), block(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_block_equals_module_built_from_its_key(name: str) -> None:
    resolution = 64
    net = build_network(PUBLISHED[name].arch).eval()
    # randomise BN statistics so a wrong module could not match by accident
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    choice = HARDCORENAS.choice_from_arch(PUBLISHED[name].arch)
    for s, stage in enumerate(choice.options):
        for j, option in enumerate(stage):
            key = HARDCORENAS.block_key(s, j, option, resolution)
            _copy_and_compare(net.blocks[s + 1][j], build_block(key), block_input(key, 2))
    fixed = HARDCORENAS.fixed_keys(resolution)
    _copy_and_compare(net.blocks[0][0], build_block(fixed["first"]), block_input(fixed["first"], 2))
    _copy_and_compare(net.blocks[-1][0], build_block(fixed["last"]), block_input(fixed["last"], 2))
    stem = build_block(fixed["stem"])
    stem.load_state_dict({k: v for k, v in net.state_dict().items() if k.startswith(("conv_stem", "bn1"))})
    head = build_block(fixed["head"])
    head.load_state_dict({k: v for k, v in net.state_dict().items() if k.startswith(("conv_head", "classifier"))})
    x = torch.randn(2, 3, resolution, resolution)
    with torch.no_grad():
        whole = torch.nn.Sequential(stem.eval(), net.blocks, head.eval())
        torch.testing.assert_close(whole(x), net(x), rtol=0, atol=0)
