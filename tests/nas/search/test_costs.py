"""Per-option parameter and MAC counts (shared/costs.py) against whole networks built by timm."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from shared.builders import build_network
from shared.costs import count_macs, count_params, space_costs
from shared.published import EXAMPLE_LARGE_SPACE, PUBLISHED
from shared.search_space import HARDCORENAS, HARDCORENAS_LARGE


def _networks(space, seed: int, count: int) -> list:
    rng = random.Random(seed)
    choices = [space.random_choice(rng) for _ in range(count)] + [space.lightest(), space.heaviest()]
    return choices


def _whole_network_macs(net: nn.Module, resolution: int) -> int:
    with torch.device("meta"):
        x = torch.empty(1, 3, resolution, resolution)
    return count_macs(net.to("meta"), x)


@pytest.mark.parametrize("num_classes", [1000, 10])
def test_additive_params_equal_timm_exactly_on_random_and_published_networks(num_classes: int) -> None:
    space = HARDCORENAS.with_classes(num_classes)
    costs = space_costs(space, 224)
    choices = _networks(space, seed=num_classes, count=4)
    choices += [space.choice_from_arch(p.arch) for p in PUBLISHED.values()]
    for choice in choices:
        net = build_network(str(space.arch_from_choice(choice)), num_classes=num_classes)
        assert costs.params_of(choice) == sum(p.numel() for p in net.parameters())


def test_additive_params_and_macs_on_the_large_space() -> None:
    costs = space_costs(HARDCORENAS_LARGE, 224)
    choice = HARDCORENAS_LARGE.choice_from_arch(EXAMPLE_LARGE_SPACE)
    net = build_network(EXAMPLE_LARGE_SPACE, stem_size=HARDCORENAS_LARGE.stem_chs)
    assert costs.params_of(choice) == count_params(net)
    assert costs.macs_of(choice) == pytest.approx(_whole_network_macs(net, 224), rel=0.01)


@pytest.mark.parametrize("resolution", [32, 224])
def test_additive_macs_match_a_whole_network_count_within_one_percent(resolution: int) -> None:
    costs = space_costs(HARDCORENAS, resolution)
    choices = _networks(HARDCORENAS, seed=resolution, count=3)
    choices += [HARDCORENAS.choice_from_arch(PUBLISHED["A"].arch)]
    for choice in choices:
        net = build_network(str(HARDCORENAS.arch_from_choice(choice)))
        whole = _whole_network_macs(net, resolution)
        assert costs.macs_of(choice) == pytest.approx(whole, rel=0.01)
        assert costs.macs_of(choice) == whole  # in fact exact: nothing outside the blocks is counted


def test_the_meta_count_is_the_real_forward_count_and_the_formula() -> None:
    """The hook counter on real tensors agrees with the meta-device count, and with the formula on one conv."""
    net = build_network(PUBLISHED["C"].arch, num_classes=10)
    real = count_macs(net, torch.randn(1, 3, 64, 64))
    assert real == _whole_network_macs(net, 64)
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)
    assert count_macs(conv, torch.randn(1, 8, 10, 10)) == 3 * 3 * 8 // 2 * 16 * 5 * 5
    assert count_macs(nn.Linear(7, 5), torch.randn(1, 7)) == 35


def test_params_do_not_depend_on_the_resolution_and_macs_scale_with_it() -> None:
    small, large = space_costs(HARDCORENAS, 32), space_costs(HARDCORENAS, 224)
    assert (small.params == large.params).all() and small.fixed_params == large.fixed_params
    assert (large.macs > small.macs).all()
