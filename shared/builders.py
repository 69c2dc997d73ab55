"""Torch modules from the shared vocabulary, built with timm's own classes and decoder.

``build_network`` turns an architecture string into a timm ``MobileNetV3`` configured exactly like timm's
``hardcorenas_*`` models (stem 32, 1280 features, h-swish default, SE with ReLU and hard-sigmoid gate). timm's
``mobilenetv3_*_100`` share all of it but the stem and head, so their arch defs with ``stem_size=16`` and their
``num_features`` (1024 for the small one) build the same networks.
``build_block`` turns one :class:`BlockKey` into the module that sits at that position of such a network, so
a latency table measures the very modules the network runs.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import SelectAdaptivePool2d, create_conv2d, get_act_layer, get_norm_act_layer
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import EfficientNetBuilder, decode_arch_def, round_channels
from timm.models.mobilenetv3 import MobileNetV3
from torch import nn

from shared.arch_string import ArchDef, parse_arch
from shared.block_key import BlockKey

__all__ = ["HeadBlock", "StemBlock", "build_block", "build_network", "hardcorenas_se_layer"]


def hardcorenas_se_layer() -> partial:
    """The squeeze-excite layer of HardCoRe-NAS networks (ReLU inside, hard-sigmoid gate, divisor 8)."""
    return partial(SqueezeExcite, gate_layer="hard_sigmoid", force_act_layer=nn.ReLU, rd_round_fn=round_channels)


def build_network(
    arch: ArchDef | str,
    *,
    num_classes: int = 1000,
    stem_size: int = 32,
    num_features: int = 1280,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    in_chans: int = 3,
) -> MobileNetV3:
    """A timm MobileNetV3 for an architecture string, configured like timm's ``hardcorenas_*`` (by default)."""
    if isinstance(arch, str):
        arch = parse_arch(arch)
    return MobileNetV3(
        block_args=decode_arch_def(arch.to_timm()),
        num_classes=num_classes,
        in_chans=in_chans,
        stem_size=stem_size,
        num_features=num_features,
        norm_layer=nn.BatchNorm2d,
        act_layer=get_act_layer("hard_swish"),
        se_layer=hardcorenas_se_layer(),
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )


class StemBlock(nn.Module):
    """The stem of a MobileNetV3 (``conv_stem`` + ``bn1`` with its activation), same parameter names."""

    def __init__(self, in_chs: int, out_chs: int, kernel: int = 3, stride: int = 2, act: str = "hard_swish"):
        super().__init__()
        self.conv_stem = create_conv2d(in_chs, out_chs, kernel, stride=stride)
        self.bn1 = get_norm_act_layer(nn.BatchNorm2d, get_act_layer(act))(out_chs, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn1(self.conv_stem(x))


class HeadBlock(nn.Module):
    """The head of a MobileNetV3 (pool, ``conv_head`` with bias, activation, ``classifier``), same names."""

    def __init__(self, in_chs: int, num_features: int, num_classes: int, act: str = "hard_swish"):
        super().__init__()
        self.global_pool = SelectAdaptivePool2d(pool_type="avg")
        self.conv_head = create_conv2d(in_chs, num_features, 1, bias=True)
        self.act2 = get_act_layer(act)(inplace=True)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv_head(self.global_pool(x)))
        return self.classifier(self.flatten(x))


def build_block(key: BlockKey) -> nn.Module:
    """The module measured under ``key``: the same class and configuration the network builder uses."""
    if key.type == "stem":
        return StemBlock(key.in_chs, key.out_chs, key.kernel, key.stride, key.act)
    if key.type == "head":
        return HeadBlock(key.in_chs, key.out_chs, key.num_classes, key.act)
    builder = EfficientNetBuilder(
        output_stride=32,
        round_chs_fn=round_channels,
        se_from_exp=True,
        act_layer=get_act_layer("hard_swish"),
        norm_layer=nn.BatchNorm2d,
        se_layer=hardcorenas_se_layer(),
    )
    stages = builder(key.in_chs, decode_arch_def([[key.block_string()]]))
    return stages[0][0]


def block_input(key: BlockKey, batch_size: int = 1) -> torch.Tensor:
    """A random input of the shape ``key``'s block expects."""
    return torch.randn(batch_size, key.in_chs, key.resolution, key.resolution)
