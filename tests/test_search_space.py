"""The search space as data: keys per resolution, option order, choices <-> strings."""

from __future__ import annotations

import random

import pytest

from shared.arch_string import parse_arch
from shared.block_key import BlockKey, BlockKeyError
from shared.published import EXAMPLE_LARGE_SPACE, PUBLISHED
from shared.search_space import (
    HARDCORENAS,
    HARDCORENAS_EXTENDED,
    HARDCORENAS_LARGE,
    ArchChoice,
    SearchSpaceError,
)


def test_option_order_matches_spec() -> None:
    opts = HARDCORENAS.options
    assert len(opts) == 12
    assert [(o.exp_ratio, o.kernel, o.se_ratio) for o in opts[:4]] == [(3, 3, 0), (3, 3, 0.25), (3, 5, 0), (3, 5, 0.25)]
    assert (opts[4].exp_ratio, opts[4].kernel, opts[4].se_ratio) == (4, 3, 0)
    assert (opts[11].exp_ratio, opts[11].kernel, opts[11].se_ratio) == (6, 5, 0.25)
    for idx, o in enumerate(opts):
        assert idx == 4 * (3, 4, 6).index(o.exp_ratio) + 2 * (3, 5).index(o.kernel) + (0, 0.25).index(o.se_ratio)
    assert len(HARDCORENAS_EXTENDED.options) == 20
    assert HARDCORENAS_EXTENDED.options[2].exp_ratio == 2.0 and HARDCORENAS_EXTENDED.options[4].exp_ratio == 2.5


@pytest.mark.parametrize("resolution", [224, 128, 64])
def test_distinct_keys(resolution: int) -> None:
    searchable = HARDCORENAS.searchable_keys(resolution)
    assert len(searchable) == 120 == len(set(searchable))
    fixed = HARDCORENAS.fixed_keys(resolution)
    assert set(fixed) == {"stem", "first", "last", "head"}
    assert len(HARDCORENAS.all_keys(resolution)) == 124
    assert fixed["stem"].resolution == resolution
    assert fixed["first"].resolution == resolution // 2
    assert fixed["last"].resolution == resolution // 32
    for key in searchable:
        assert BlockKey.from_original(key.to_original()) == key
        assert BlockKey.parse(str(key)) == key
        assert BlockKey.from_dict(key.to_dict()) == key
    for key in fixed.values():
        assert BlockKey.parse(str(key)) == key


def test_keys_differ_between_resolutions() -> None:
    assert not set(HARDCORENAS.searchable_keys(224)) & set(HARDCORENAS.searchable_keys(128))


def test_geometry_at_224_matches_the_spec_table() -> None:
    geo = HARDCORENAS.geometry(224)
    rows = [(g[0].in_chs, g[0].out_chs, g[0].resolution, g[1].resolution, g[0].act) for g in geo]
    assert rows == [
        (16, 24, 112, 56, "relu"),
        (24, 40, 56, 28, "relu"),
        (40, 80, 28, 14, "hard_swish"),
        (80, 112, 14, 14, "hard_swish"),
        (112, 192, 14, 7, "hard_swish"),
    ]


@pytest.mark.parametrize("bad", [0, 100, 31, -32, 48, "224"])
def test_bad_resolution(bad: object) -> None:
    with pytest.raises(SearchSpaceError, match="multiple of 32"):
        HARDCORENAS.searchable_keys(bad)  # type: ignore[arg-type]


def test_original_key_format() -> None:
    key = BlockKey.from_original("in_channels_16_out_channels_24_stride_2_resolution_112_er_3_k_5_se_0.25_act_1")
    assert key == HARDCORENAS.block_key(0, 0, 3, 224)
    assert key.to_original() == "in_channels_16_out_channels_24_stride_2_resolution_112_er_3_k_5_se_0.25_act_1"
    assert BlockKey.from_original(HARDCORENAS_EXTENDED.block_key(1, 1, 4, 224).to_original()).exp_ratio == 2.5
    with pytest.raises(BlockKeyError):
        BlockKey.from_original("general")
    with pytest.raises(BlockKeyError):
        HARDCORENAS.fixed_keys()["stem"].to_original()


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "zz", "in_chs": 1, "out_chs": 1, "stride": 1, "resolution": 8},
        {"type": "ir", "in_chs": 0, "out_chs": 1, "stride": 1, "resolution": 8},
        {"type": "ir", "in_chs": 8, "out_chs": 8, "stride": 3, "resolution": 8},
        {"type": "ir", "in_chs": 8, "out_chs": 8, "stride": 1, "resolution": 8, "kernel": 4},
        {"type": "ir", "in_chs": 8, "out_chs": 8, "stride": 1, "resolution": 8, "act": "gelu"},
        {"type": "ir", "in_chs": 8, "out_chs": 8, "stride": 1, "resolution": 8, "bogus": 1},
        {"type": "ir", "in_chs": 8, "out_chs": 8, "stride": 1},
    ],
)
def test_bad_specs(spec: dict) -> None:
    with pytest.raises(BlockKeyError):
        BlockKey.from_dict(spec)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_choices_round_trip(name: str) -> None:
    arch = parse_arch(PUBLISHED[name].arch)
    assert HARDCORENAS.arch_from_choice(HARDCORENAS.choice_from_arch(arch)) == arch
    assert str(HARDCORENAS.arch_from_choice(HARDCORENAS.choice_from_arch(arch))) == PUBLISHED[name].arch


def test_large_space_example() -> None:
    choice = HARDCORENAS_LARGE.choice_from_arch(EXAMPLE_LARGE_SPACE)
    assert str(HARDCORENAS_LARGE.arch_from_choice(choice)) == EXAMPLE_LARGE_SPACE
    with pytest.raises(SearchSpaceError):
        HARDCORENAS.choice_from_arch(EXAMPLE_LARGE_SPACE)


def test_random_choices_round_trip() -> None:
    rng = random.Random(0)
    for _ in range(50):
        choice = ArchChoice(tuple(tuple(rng.randrange(12) for _ in range(rng.choice((2, 3, 4)))) for _ in range(5)))
        assert HARDCORENAS.choice_from_arch(str(HARDCORENAS.arch_from_choice(choice))) == choice
    assert HARDCORENAS.heaviest().depths == (4,) * 5 and HARDCORENAS.lightest().depths == (2,) * 5


def test_bad_choices() -> None:
    with pytest.raises(SearchSpaceError, match="depth"):
        HARDCORENAS.arch_from_choice(ArchChoice(((0,),) * 5))
    with pytest.raises(SearchSpaceError, match="option 12"):
        HARDCORENAS.arch_from_choice(ArchChoice(((0, 12),) * 5))
    with pytest.raises(SearchSpaceError):
        HARDCORENAS.choice_from_arch("[['ds_r1_k3_s1_e1_c16_nre'], ['cn_r1_k1_s1_c960']]")
