"""Block keys: the canonical, hashable name of one latency measurement (one block at one input size).

A key reads like ``ir:in16:out24:s2:res112:e3:k5:se0.25:relu``; fixed parts of the network have their own
types (``stem``, ``head``). Keys convert one-to-one to the original HardCoRe-NAS LUT key format
``in_channels_16_out_channels_24_stride_2_resolution_112_er_3_k_5_se_0.25_act_1`` (inverted residual
blocks with ReLU or h-swish, the only blocks that format can name).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from shared.arch_string import ACTIVATIONS, format_number

__all__ = ["BLOCK_KEY_TYPES", "KEY_ACTIVATIONS", "BlockKey", "BlockKeyError"]

#: Types a key may have: arch-string block types plus the fixed stem and head.
BLOCK_KEY_TYPES = ("ir", "ds", "dsa", "cn", "stem", "head")
#: Activation names a key may carry (timm names).
KEY_ACTIVATIONS = tuple(ACTIVATIONS.values())
_ACT_CODE = {name: code for code, name in ACTIVATIONS.items()}

_ORIGINAL = re.compile(
    r"^in_channels_(\d+)_out_channels_(\d+)_stride_(\d+)_resolution_(\d+)"
    r"_er_(\d+(?:\.\d+)?)_k_(\d+)_se_(\d+(?:\.\d+)?)_act_([01])$"
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
            raise BlockKeyError(f"type: unknown block type {self.type!r}, expected one of {BLOCK_KEY_TYPES}")
        for name in ("in_chs", "out_chs", "resolution", "kernel"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BlockKeyError(f"{name}: expected a positive integer, got {value!r}")
        if self.stride not in (1, 2):
            raise BlockKeyError(f"stride: expected 1 or 2, got {self.stride!r}")
        if self.kernel % 2 == 0:
            raise BlockKeyError(f"kernel: expected an odd size, got {self.kernel}")
        if not self.exp_ratio > 0:
            raise BlockKeyError(f"exp_ratio: expected a positive number, got {self.exp_ratio!r}")
        if not 0 <= self.se_ratio <= 1:
            raise BlockKeyError(f"se_ratio: expected a number in [0, 1], got {self.se_ratio!r}")
        if self.act not in KEY_ACTIVATIONS:
            raise BlockKeyError(f"act: unknown activation {self.act!r}, expected one of {KEY_ACTIVATIONS}")
        if self.type == "head" and self.num_classes <= 0:
            raise BlockKeyError("num_classes: a head key needs a positive class count")
        # normalise numbers so equal keys hash equal (3 == 3.0)
        object.__setattr__(self, "exp_ratio", float(self.exp_ratio))
        object.__setattr__(self, "se_ratio", float(self.se_ratio))

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
            raise BlockKeyError(f"malformed block key {text!r}: expected type:inN:outN:sN:resN:eX:kN:seX:act")
        prefixes = ("in", "out", "s", "res", "e", "k", "se")
        values: list[str] = []
        for part, prefix in zip(parts[1:8], prefixes, strict=True):
            if not part.startswith(prefix) or not re.fullmatch(r"\d+(\.\d+)?", part[len(prefix) :]):
                raise BlockKeyError(f"malformed block key {text!r}: bad field {part!r}, expected {prefix}<number>")
            values.append(part[len(prefix) :])
        num_classes = 0
        if len(parts) == 10:
            if not re.fullmatch(r"cls\d+", parts[9]):
                raise BlockKeyError(f"malformed block key {text!r}: bad field {parts[9]!r}, expected cls<number>")
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
            raise BlockKeyError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
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
                f"not an original LUT key: {text!r}; expected in_channels_N_out_channels_N_stride_N_"
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
