"""Block strings, one block of an architecture string: ``ir_r1_k5_s2_e3_c24_nre_se0.25`` into typed data and back.

A block string is a type (``ir``, ``ds``, ``dsa``, ``er``, ``cn``) followed by ``_``-separated options:
``r`` repeats, ``k`` kernel (``3.5`` = mixed), ``s`` stride, ``e`` expansion, ``c`` out channels,
``se`` squeeze-excite ratio, ``a``/``p`` expansion/projection kernels, ``n<act>`` activation
(``re``, ``r6``, ``hs``, ``sw``) and ``noskip``/``skip``. Parsing never uses ``eval``; every malformed
input raises :class:`ArchStringError` naming the stage, the block and the offending token (quoting at most an
excerpt of it). The list syntax around block strings lives in :mod:`shared.arch_string`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

__all__ = [
    "ACTIVATIONS",
    "BLOCK_TYPES",
    "EXCERPT_CHARS",
    "ArchStringError",
    "BlockDef",
    "excerpt",
    "format_block",
    "format_number",
    "parse_block",
]

BLOCK_TYPES: dict[str, str] = {
    "ir": "inverted residual",
    "ds": "depthwise-separable",
    "dsa": "depthwise-separable with pointwise activation",
    "er": "edge residual",
    "cn": "conv + BN + activation",
}
#: Arch-string activation codes -> timm activation names.
ACTIVATIONS: dict[str, str] = {"re": "relu", "r6": "relu6", "hs": "hard_swish", "sw": "swish"}

_REQUIRED: dict[str, tuple[str, ...]] = {
    "ir": ("r", "k", "s", "e", "c"),
    "ds": ("r", "k", "s", "c"),
    "dsa": ("r", "k", "s", "c"),
    "er": ("r", "k", "s", "e", "c"),
    "cn": ("r", "k", "s", "c"),
}
_OPTION_NAMES = {
    "r": "a repeat count",
    "k": "a kernel size",
    "s": "a stride",
    "e": "an expansion ratio",
    "c": "an output channel count",
    "se": "a squeeze-excite ratio",
    "a": "an expansion kernel size",
    "p": "a projection kernel size",
}
_NUMERIC_KEY = re.compile(r"^([a-z]+)(.*)$")
#: ASCII digits only: ``str.isdigit`` and ``\\d`` also accept superscripts and other scripts' digits
_INT = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
#: the most characters a numeric option may have (a value beyond any limit, and never a huge int)
_MAX_NUMBER_CHARS = 9
#: the longest piece of the input an error message repeats
EXCERPT_CHARS = 40


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of ``text`` cut to ``limit`` characters (error messages never echo long input)."""
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


class ArchStringError(ValueError):
    """A malformed architecture or block string; the message names stage, block and token."""

    def __init__(
        self,
        message: str,
        *,
        token: str | None = None,
        stage: int | None = None,
        block: int | None = None,
    ) -> None:
        self.token = token
        self.stage = stage
        self.block = block
        self.reason = message
        where = []
        if stage is not None:
            where.append(f"stage {stage}")
        if block is not None:
            where.append(f"block {block}")
        prefix = ", ".join(where)
        text = f"{prefix}: {message}" if prefix else message
        if token is not None:
            text += f" (offending token: {excerpt(token)})"
        super().__init__(text)


def format_number(value: float) -> str:
    """Write a number the way the arch strings do: ``3`` for 3.0, ``2.5``, ``0.25`` (never an exponent)."""
    if float(value).is_integer():
        return str(int(value))
    text = repr(float(value))
    # repr switches to exponents below 1e-4 and above 1e16, which the grammar cannot read back
    return format(Decimal(text), "f") if "e" in text else text


@dataclass(frozen=True)
class BlockDef:
    """One block string, typed. ``None`` means the option is absent from the string."""

    type: str
    repeats: int = 1
    kernel: tuple[int, ...] = (3,)
    stride: int = 1
    exp_ratio: float | None = None
    out_chs: int | None = None
    se_ratio: float | None = None
    act: str | None = None  # arch-string code: re, r6, hs, sw; None = model default (h-swish)
    noskip: bool = False
    skip: bool = False
    exp_kernel: int | None = None
    pw_kernel: int | None = None
    extra_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def act_name(self) -> str | None:
        """timm activation name (``relu``, ``hard_swish``...), ``None`` for the model default."""
        return ACTIVATIONS[self.act] if self.act else None

    @property
    def has_se(self) -> bool:
        return bool(self.se_ratio)

    def with_(self, **changes: object) -> BlockDef:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return format_block(self)


# ----------------------------------------------------------------------------------------------
# Block strings
# ----------------------------------------------------------------------------------------------


def _parse_number(value: str, key: str, token: str, fail: Callable[..., ArchStringError]) -> float:
    """The value of option ``key``: a positive integer, or for ``e`` and ``se`` a decimal."""
    if not value:
        raise fail(f"missing value after '{key}': expected {_OPTION_NAMES[key]}", token=token)
    decimal = key in ("e", "se")
    if not (_DECIMAL if decimal else _INT).fullmatch(value):
        expected = "such as 3, 2.5 or 0.25" if decimal else "(a positive integer)"
        raise fail(f"non-numeric value {excerpt(value)} for '{key}': expected {_OPTION_NAMES[key]} {expected}",
                   token=token)
    if len(value) > _MAX_NUMBER_CHARS:
        raise fail(f"value of '{key}' too long: expected {_OPTION_NAMES[key]} of at most {_MAX_NUMBER_CHARS} "
                   "characters", token=token)
    if decimal:
        return float(value)
    if int(value) <= 0:
        raise fail(f"'{key}' must be positive: expected {_OPTION_NAMES[key]} >= 1", token=token)
    return int(value)


def _parse_option(token: str, fail: Callable[..., ArchStringError]) -> tuple[str, object]:
    """One ``_``-separated option: its key and value."""
    if token in ("noskip", "skip"):
        return token, True
    if token.startswith("n") and not _INT.match(token[1:2]):
        if token[1:] not in ACTIVATIONS:
            raise fail(f"unknown activation {excerpt(token[1:])}: expected n followed by one of "
                       f"{', '.join(ACTIVATIONS)}", token=token)
        return "n", token[1:]
    match = _NUMERIC_KEY.match(token)
    if match is None:
        raise fail("option without a name: expected a letter key such as k, s, e, c", token=token)
    key, raw = match.groups()
    if key not in _OPTION_NAMES:
        raise fail(f"unknown option {excerpt(key)}: expected one of r, k, s, e, c, se, a, p, n<act>, noskip",
                   token=token)
    if key != "k":
        return key, _parse_number(raw, key, token, fail)
    if not raw:
        raise fail("missing value after 'k': expected a kernel size", token=token)
    kernel = tuple(int(_parse_number(v, "k", token, fail)) for v in raw.split("."))
    for size in kernel:
        if size % 2 == 0:
            raise fail(f"kernel size {size} is even: expected an odd kernel size such as 3 or 5", token=token)
    return key, kernel


def parse_block(text: str, *, stage: int | None = None, block: int | None = None) -> BlockDef:
    """Parse one block string such as ``ir_r1_k5_s2_e3_c24_nre_se0.25``."""
    fail = functools.partial(ArchStringError, stage=stage, block=block)
    if not isinstance(text, str):
        raise fail(f"a block must be a string, got {type(text).__name__}")
    if not text:
        raise fail("empty block string: expected a block type such as 'ir'")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise fail("whitespace inside a block string", token=text)
    btype, *options = text.split("_")
    if btype not in BLOCK_TYPES:
        raise fail(f"unknown block type {excerpt(btype)}: expected one of {', '.join(BLOCK_TYPES)}", token=btype)
    values: dict[str, object] = {}
    order: list[str] = []
    for token in options:
        if token == "":
            raise fail("empty option (double or trailing '_')", token=text)
        key, value = _parse_option(token, fail)
        if key == "n" and key in values:
            raise fail("activation given twice", token=token)
        if key in values and key not in ("noskip", "skip"):
            raise fail(f"option '{key}' given twice", token=token)
        values[key] = value
        order.append(key)
    for key in _REQUIRED[btype]:
        if key not in values:
            raise fail(f"missing {_OPTION_NAMES[key]} ('{key}<number>') in a '{btype}' block", token=text)
    stride = int(values["s"])  # type: ignore[arg-type]
    if stride not in (1, 2):
        what = " in a repeated block" if int(values["r"]) > 1 else ""  # type: ignore[arg-type]
        raise fail(f"stride {stride}{what}: expected stride 1 or 2", token=f"s{stride}")
    if values.get("noskip") and values.get("skip"):
        raise fail("both 'skip' and 'noskip' given", token=text)
    exp_ratio = values.get("e")
    if exp_ratio is not None and float(exp_ratio) <= 0:  # type: ignore[arg-type]
        raise fail("expansion ratio must be positive", token=f"e{exp_ratio}")
    se_ratio = values.get("se")
    if se_ratio is not None and not 0 < float(se_ratio) <= 1:  # type: ignore[arg-type]
        raise fail("squeeze-excite ratio must be in (0, 1]", token=f"se{format_number(se_ratio)}")  # type: ignore[arg-type]
    if btype == "cn" and len(values["k"]) != 1:  # type: ignore[arg-type]
        raise fail("a 'cn' block takes a single kernel size", token=text)
    return BlockDef(
        type=btype,
        repeats=int(values["r"]),  # type: ignore[arg-type]
        kernel=values["k"],  # type: ignore[arg-type]
        stride=stride,
        exp_ratio=exp_ratio,  # type: ignore[arg-type]
        out_chs=values.get("c"),  # type: ignore[arg-type]
        se_ratio=se_ratio,  # type: ignore[arg-type]
        act=values.get("n"),  # type: ignore[arg-type]
        noskip=bool(values.get("noskip", False)),
        skip=bool(values.get("skip", False)),
        exp_kernel=values.get("a"),  # type: ignore[arg-type]
        pw_kernel=values.get("p"),  # type: ignore[arg-type]
        extra_order=tuple(order),
    )


_CANONICAL_ORDER = ("r", "k", "a", "p", "s", "e", "c", "noskip", "skip", "n", "se")


def format_block(block: BlockDef) -> str:
    """Write a block back as a string (options in the published order: r k s e c [noskip] [n] [se])."""
    fields: dict[str, str | None] = {
        "r": f"r{block.repeats}",
        "k": "k" + ".".join(str(k) for k in block.kernel),
        "a": None if block.exp_kernel is None else f"a{block.exp_kernel}",
        "p": None if block.pw_kernel is None else f"p{block.pw_kernel}",
        "s": f"s{block.stride}",
        "e": None if block.exp_ratio is None else "e" + format_number(block.exp_ratio),
        "c": None if block.out_chs is None else f"c{block.out_chs}",
        "noskip": "noskip" if block.noskip else None,
        "skip": "skip" if block.skip else None,
        "n": None if block.act is None else f"n{block.act}",
        "se": None if block.se_ratio is None else "se" + format_number(block.se_ratio),
    }
    # keep the order the block was written in (exact round trip), then add anything new canonically
    order = [k for k in block.extra_order if fields.get(k)]
    order += [k for k in _CANONICAL_ORDER if fields.get(k) and k not in order]
    return "_".join([block.type] + [fields[k] for k in order])  # type: ignore[misc]
