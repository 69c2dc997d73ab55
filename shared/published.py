"""The published HardCoRe-NAS architectures A-F and their reported figures (arXiv:2102.11646).

Latency: Intel Xeon CPU, batch size 1, milliseconds. Top-1: ImageNet validation, percent (red = from scratch,
green = long fine-tune, blue = short fine-tune, kd = with knowledge distillation). The strings are the same
networks as timm's ``hardcorenas_a`` ... ``hardcorenas_f``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXAMPLE_LARGE_SPACE", "PUBLISHED", "PublishedArch"]


@dataclass(frozen=True)
class PublishedArch:
    """One published network: its string, reported latency and top-1 figures."""

    name: str
    arch: str
    latency_ms: float
    top1_red: float
    top1_green: float
    top1_blue: float
    top1_kd: float | None


PUBLISHED: dict[str, PublishedArch] = {
    "A": PublishedArch(
        name="A",
        arch=(
            "[['ds_r1_k3_s1_e1_c16_nre'], ["
            "'ir_r1_k5_s2_e3_c24_nre', 'ir_r1_k5_s1_e3_c24_nre_se0.25'], ["
            "'ir_r1_k5_s2_e3_c40_nre', 'ir_r1_k5_s1_e6_c40_nre_se0.25'], ["
            "'ir_r1_k5_s2_e6_c80_se0.25', 'ir_r1_k5_s1_e6_c80_se0.25'], ["
            "'ir_r1_k5_s1_e6_c112_se0.25', 'ir_r1_k5_s1_e6_c112_se0.25'], ["
            "'ir_r1_k5_s2_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25'], ["
            "'cn_r1_k1_s1_c960']]"
        ),
        latency_ms=38,
        top1_red=75.3,
        top1_green=75.9,
        top1_blue=75.4,
        top1_kd=78.3,
    ),
    "B": PublishedArch(
        name="B",
        arch=(
            "[['ds_r1_k3_s1_e1_c16_nre'], ["
            "'ir_r1_k5_s2_e3_c24_nre', 'ir_r1_k5_s1_e3_c24_nre_se0.25', 'ir_r1_k3_s1_e3_c24_nre'], ["
            "'ir_r1_k5_s2_e3_c40_nre', 'ir_r1_k5_s1_e3_c40_nre', 'ir_r1_k5_s1_e3_c40_nre'], ["
            "'ir_r1_k5_s2_e3_c80', 'ir_r1_k5_s1_e3_c80', 'ir_r1_k3_s1_e3_c80', 'ir_r1_k3_s1_e3_c80'], ["
            "'ir_r1_k5_s1_e3_c112', 'ir_r1_k3_s1_e3_c112', 'ir_r1_k3_s1_e3_c112', 'ir_r1_k3_s1_e3_c112'], ["
            "'ir_r1_k5_s2_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25', 'ir_r1_k3_s1_e3_c192_se0.25'], ["
            "'cn_r1_k1_s1_c960']]"
        ),
        latency_ms=40,
        top1_red=75.8,
        top1_green=76.5,
        top1_blue=75.9,
        top1_kd=78.8,
    ),
    "C": PublishedArch(
        name="C",
        arch=(
            "[['ds_r1_k3_s1_e1_c16_nre'], ["
            "'ir_r1_k5_s2_e3_c24_nre', 'ir_r1_k5_s1_e3_c24_nre_se0.25'], ["
            "'ir_r1_k5_s2_e3_c40_nre', 'ir_r1_k5_s1_e3_c40_nre', 'ir_r1_k5_s1_e3_c40_nre', 'ir_r1_k5_s1_e3_c40_nre'], ["
            "'ir_r1_k5_s2_e4_c80', 'ir_r1_k5_s1_e6_c80_se0.25', 'ir_r1_k3_s1_e3_c80', 'ir_r1_k3_s1_e3_c80'], ["
            "'ir_r1_k5_s1_e6_c112_se0.25', 'ir_r1_k3_s1_e3_c112', 'ir_r1_k3_s1_e3_c112', 'ir_r1_k3_s1_e3_c112'], ["
            "'ir_r1_k5_s2_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25', 'ir_r1_k3_s1_e3_c192_se0.25'], ["
            "'cn_r1_k1_s1_c960']]"
        ),
        latency_ms=44,
        top1_red=76.4,
        top1_green=77.1,
        top1_blue=76.6,
        top1_kd=78.9,
    ),
    "D": PublishedArch(
        name="D",
        arch=(
            "[['ds_r1_k3_s1_e1_c16_nre'], ["
            "'ir_r1_k5_s2_e3_c24_nre_se0.25', 'ir_r1_k5_s1_e3_c24_nre_se0.25'], ["
            "'ir_r1_k5_s2_e3_c40_nre_se0.25', 'ir_r1_k5_s1_e4_c40_nre_se0.25', 'ir_r1_k3_s1_e3_c40_nre_se0.25'], ["
            "'ir_r1_k5_s2_e4_c80_se0.25', 'ir_r1_k3_s1_e3_c80_se0.25', 'ir_r1_k3_s1_e3_c80_se0.25', 'ir_r1_k3_s1_e3_c80_se0.25'], ["
            "'ir_r1_k3_s1_e4_c112_se0.25', 'ir_r1_k5_s1_e4_c112_se0.25', 'ir_r1_k3_s1_e3_c112_se0.25', 'ir_r1_k5_s1_e3_c112_se0.25'], ["
            "'ir_r1_k5_s2_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25', 'ir_r1_k3_s1_e6_c192_se0.25'], ["
            "'cn_r1_k1_s1_c960']]"
        ),
        latency_ms=50,
        top1_red=77.1,
        top1_green=77.4,
        top1_blue=77.0,
        top1_kd=79.5,
    ),
    "E": PublishedArch(
        name="E",
        arch=(
            "[['ds_r1_k3_s1_e1_c16_nre'], ["
            "'ir_r1_k5_s2_e3_c24_nre_se0.25', 'ir_r1_k5_s1_e3_c24_nre_se0.25'], ["
            "'ir_r1_k5_s2_e6_c40_nre_se0.25', 'ir_r1_k5_s1_e4_c40_nre_se0.25', 'ir_r1_k5_s1_e4_c40_nre_se0.25', 'ir_r1_k3_s1_e3_c40_nre_se0.25'], ["
            "'ir_r1_k5_s2_e4_c80_se0.25', 'ir_r1_k3_s1_e6_c80_se0.25'], ["
            "'ir_r1_k5_s1_e6_c112_se0.25', 'ir_r1_k5_s1_e6_c112_se0.25', 'ir_r1_k5_s1_e6_c112_se0.25', 'ir_r1_k5_s1_e3_c112_se0.25'], ["
            "'ir_r1_k5_s2_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25', 'ir_r1_k3_s1_e6_c192_se0.25'], ["
            "'cn_r1_k1_s1_c960']]"
        ),
        latency_ms=55,
        top1_red=77.6,
        top1_green=77.9,
        top1_blue=77.4,
        top1_kd=80.1,
    ),
    "F": PublishedArch(
        name="F",
        arch=(
            "[['ds_r1_k3_s1_e1_c16_nre'], ["
            "'ir_r1_k5_s2_e3_c24_nre_se0.25', 'ir_r1_k5_s1_e3_c24_nre_se0.25'], ["
            "'ir_r1_k5_s2_e6_c40_nre_se0.25', 'ir_r1_k5_s1_e6_c40_nre_se0.25'], ["
            "'ir_r1_k5_s2_e6_c80_se0.25', 'ir_r1_k5_s1_e6_c80_se0.25', 'ir_r1_k3_s1_e3_c80_se0.25', 'ir_r1_k3_s1_e3_c80_se0.25'], ["
            "'ir_r1_k3_s1_e6_c112_se0.25', 'ir_r1_k5_s1_e6_c112_se0.25', 'ir_r1_k5_s1_e6_c112_se0.25', 'ir_r1_k3_s1_e3_c112_se0.25'], ["
            "'ir_r1_k5_s2_e6_c192_se0.25', 'ir_r1_k5_s1_e6_c192_se0.25', 'ir_r1_k3_s1_e6_c192_se0.25', 'ir_r1_k3_s1_e6_c192_se0.25'], ["
            "'cn_r1_k1_s1_c960']]"
        ),
        latency_ms=60,
        top1_red=78.0,
        top1_green=78.1,
        top1_blue=78.1,
        top1_kd=None,
    ),
}

#: The example string of the x1.2 "large" space.
EXAMPLE_LARGE_SPACE = (
    "[['ds_r1_k3_s1_e1_c24_nre'], ["
    "'ir_r1_k5_s2_e3_c32_nre_se0.25', 'ir_r1_k5_s1_e6_c32_nre_se0.25'], ["
    "'ir_r1_k5_s2_e6_c48_nre_se0.25', 'ir_r1_k5_s1_e6_c48_nre_se0.25', 'ir_r1_k5_s1_e6_c48_nre_se0.25', 'ir_r1_k3_s1_e3_c48_nre_se0.25'], ["
    "'ir_r1_k5_s2_e6_c96_se0.25', 'ir_r1_k5_s1_e6_c96_se0.25', 'ir_r1_k3_s1_e3_c96_se0.25', 'ir_r1_k3_s1_e3_c96_se0.25'], ["
    "'ir_r1_k5_s1_e6_c136_se0.25', 'ir_r1_k3_s1_e6_c136_se0.25', 'ir_r1_k3_s1_e3_c136_se0.25', 'ir_r1_k5_s1_e3_c136_se0.25'], ["
    "'ir_r1_k5_s2_e6_c232_se0.25', 'ir_r1_k5_s1_e6_c232_se0.25'], ["
    "'cn_r1_k1_s1_c1152']]"
)
