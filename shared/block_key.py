"""Block keys: the canonical, hashable name of one latency measurement (one block at one input size).

A key reads like ``ir:in16:out24:s2:res112:e3:k5:se0.25:relu``; fixed parts of the network have their own
types (``stem``, ``head``). Keys convert one-to-one to the original HardCoRe-NAS LUT key format
``in_channels_16_out_channels_24_stride_2_resolution_112_er_3_k_5_se_0.25_act_1`` (inverted residual
blocks with ReLU or h-swish, the only blocks that format can name).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from shared.block_string import ACTIVATIONS, excerpt, format_number

__all__ = ["BLOCK_KEY_TYPES", "KEY_ACTIVATIONS", "RATIO_DECIMALS", "BlockKey", "BlockKeyError"]

#: Types a key may have: arch-string block types plus the fixed stem and head.
BLOCK_KEY_TYPES = ("ir", "ds", "dsa", "cn", "stem", "head")
#: Activation names a key may carry (timm names).
KEY_ACTIVATIONS = tuple(ACTIVATIONS.values())
_ACT_CODE = {name: code for code, name in ACTIVATIONS.items()}
#: Decimals a key keeps of ``exp_ratio`` and ``se_ratio``.
RATIO_DECIMALS = 4
#: Per type, the fields its module does not read and the one value they take in a key (the stem is a conv,
#: the head pools to 1x1 before a 1x1 conv, ``ds``/``dsa`` never expand, ``cn`` has neither expansion nor SE;
#: only the head has classes). Every key of the search spaces already has these values.
_IGNORED: dict[str, dict[str, Any]] = {
    "stem": {"exp_ratio": 1.0, "se_ratio": 0.0, "num_classes": 0},
    "head": {"stride": 1, "kernel": 1, "exp_ratio": 1.0, "se_ratio": 0.0},
    "cn": {"exp_ratio": 1.0, "se_ratio": 0.0, "num_classes": 0},
    "ds": {"exp_ratio": 1.0, "num_classes": 0},
    "dsa": {"exp_ratio": 1.0, "num_classes": 0},
    "ir": {"num_classes": 0},
}

_ORIGINAL = re.compile(
    r"^in_channels_([0-9]+)_out_channels_([0-9]+)_stride_([0-9]+)_resolution_([0-9]+)"
    r"_er_([0-9]+(?:\.[0-9]+)?)_k_([0-9]+)_se_([0-9]+(?:\.[0-9]+)?)_act_([01])$"
)


class BlockKeyError(ValueError):
    """A block key or block spec that is malformed or cannot be expressed in the requested format."""


@dataclass(frozen=True, order=True)
class BlockKey:
    """One block measurement: geometry, options and activation.

    ``resolution`` is the block's *input* spatial size. ``num_classes`` matters for ``head`` keys only
    (the classifier's width) and is 0 elsewhere.
    """

    type: str
    in_chs: int
    out_chs: int
    stride: int
    resolution: int
    exp_ratio: float = 1.0
    kernel: int = 3
    se_ratio: float = 0.0
    act: str = "hard_swish"
    num_classes: int = 0

    def __post_init__(self) -> None:
        if self.type not in BLOCK_KEY_TYPES:
            raise BlockKeyError(f"type: unknown block type {excerpt(self.type)}, expected one of {BLOCK_KEY_TYPES}")
        # fields the block type's module ignores take one value, so equal modules have one key
        for name, value in _IGNORED.get(self.type, {}).items():
            object.__setattr__(self, name, value)
        for name in ("in_chs", "out_chs", "resolution", "kernel"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BlockKeyError(f"{name}: expected a positive integer, got {excerpt(value)}")
        if self.stride not in (1, 2):
            raise BlockKeyError(f"stride: expected 1 or 2, got {excerpt(self.stride)}")
        if self.kernel % 2 == 0:
            raise BlockKeyError(f"kernel: expected an odd size, got {self.kernel}")
        for name in ("exp_ratio", "se_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise BlockKeyError(f"{name}: expected a finite number, got {excerpt(value)}")
            # normalise numbers so equal keys hash equal (3 == 3.0) and print short (0.1 + 0.2 -> 0.3)
            object.__setattr__(self, name, round(float(value), RATIO_DECIMALS))
        if not self.exp_ratio > 0:
            raise BlockKeyError(f"exp_ratio: expected a positive number, got {excerpt(self.exp_ratio)}")
        if not 0 <= self.se_ratio <= 1:
            raise BlockKeyError(f"se_ratio: expected a number in [0, 1], got {excerpt(self.se_ratio)}")
        if self.act not in KEY_ACTIVATIONS:
            raise BlockKeyError(f"act: unknown activation {excerpt(self.act)}, expected one of {KEY_ACTIVATIONS}")
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) or self.num_classes < 0:
            raise BlockKeyError(f"num_classes: expected a non-negative integer, got {excerpt(self.num_classes)}")
        if self.type == "head" and self.num_classes <= 0:
            raise BlockKeyError("num_classes: a head key needs a positive class count")

    # -- canonical string ------------------------------------------------------------------------
    def __str__(self) -> str:
        parts = [
            self.type,
            f"in{self.in_chs}",
            f"out{self.out_chs}",
            f"s{self.stride}",
            f"res{self.resolution}",
            f"e{format_number(self.exp_ratio)}",
            f"k{self.kernel}",
            f"se{format_number(self.se_ratio)}",
            self.act,
        ]
        if self.type == "head":
            parts.append(f"cls{self.num_classes}")
        return ":".join(parts)

    @classmethod
    def parse(cls, text: str) -> BlockKey:
        """Inverse of ``str(key)``."""
        parts = text.split(":")
        if len(parts) not in (9, 10):
            raise BlockKeyError(f"malformed block key {excerpt(text)}: expected type:inN:outN:sN:resN:eX:kN:seX:act")
        prefixes = ("in", "out", "s", "res", "e", "k", "se")
        values: list[str] = []
        for part, prefix in zip(parts[1:8], prefixes, strict=True):
            if not part.startswith(prefix) or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", part[len(prefix) :]):
                raise BlockKeyError(
                    f"malformed block key {excerpt(text)}: bad field {excerpt(part)}, expected {prefix}<number>"
                )
            values.append(part[len(prefix) :])
        num_classes = 0
        if len(parts) == 10:
            if not re.fullmatch(r"cls[0-9]+", parts[9]):
                raise BlockKeyError(
                    f"malformed block key {excerpt(text)}: bad field {excerpt(parts[9])}, expected cls<number>"
                )
            num_classes = int(parts[9][3:])
        return cls(
            type=parts[0],
            in_chs=int(values[0]),
            out_chs=int(values[1]),
            stride=int(values[2]),
            resolution=int(values[3]),
            exp_ratio=float(values[4]),
            kernel=int(values[5]),
            se_ratio=float(values[6]),
            act=parts[8],
            num_classes=num_classes,
        )

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The block spec as JSON (the REST contract's block object)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlockKey:
        """Build from a block spec dict, with clear errors for missing or unknown fields."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise BlockKeyError(f"unknown field(s) {excerpt(sorted(unknown))}; allowed: {sorted(allowed)}")
        missing = {"type", "in_chs", "out_chs", "stride", "resolution"} - set(data)
        if missing:
            raise BlockKeyError(f"missing field(s) {sorted(missing)}")
        return cls(**data)

    # -- arch-string form --------------------------------------------------------------------------
    def block_string(self) -> str:
        """The timm block string that builds this block (``ir``/``ds``/``dsa``/``cn`` only)."""
        if self.type not in ("ir", "ds", "dsa", "cn"):
            raise BlockKeyError(f"a {self.type!r} key has no block string")
        text = f"{self.type}_r1_k{self.kernel}_s{self.stride}"
        if self.type in ("ir", "ds", "dsa"):
            text += f"_e{format_number(self.exp_ratio)}"
        text += f"_c{self.out_chs}_n{_ACT_CODE[self.act]}"
        if self.se_ratio and self.type != "cn":
            text += f"_se{format_number(self.se_ratio)}"
        return text

    # -- the original project's key format ------------------------------------------------------------
    def to_original(self) -> str:
        """The original HardCoRe-NAS LUT key (``act_1`` = ReLU, ``act_0`` = h-swish)."""
        if self.type != "ir" or self.act not in ("relu", "hard_swish"):
            raise BlockKeyError(
                f"only inverted-residual blocks with relu or hard_swish have an original key, not {self}"
            )
        return (
            f"in_channels_{self.in_chs}_out_channels_{self.out_chs}_stride_{self.stride}"
            f"_resolution_{self.resolution}_er_{format_number(self.exp_ratio)}_k_{self.kernel}"
            f"_se_{format_number(self.se_ratio)}_act_{1 if self.act == 'relu' else 0}"
        )

    @classmethod
    def from_original(cls, text: str) -> BlockKey:
        """Parse an original HardCoRe-NAS LUT key."""
        match = _ORIGINAL.match(text)
        if match is None:
            raise BlockKeyError(
                f"not an original LUT key: {excerpt(text)}; expected in_channels_N_out_channels_N_stride_N_"
                "resolution_N_er_X_k_N_se_X_act_0|1"
            )
        cin, cout, stride, res, er, k, se, act = match.groups()
        return cls(
            type="ir",
            in_chs=int(cin),
            out_chs=int(cout),
            stride=int(stride),
            resolution=int(res),
            exp_ratio=float(er),
            kernel=int(k),
            se_ratio=float(se),
            act="relu" if act == "1" else "hard_swish",
        )
