"""Architecture strings: parse the HardCoRe-NAS / timm arch-string grammar into typed data and back.

A network is written as a Python-style list of stages, each a list of quoted block strings::

    [['ds_r1_k3_s1_e1_c16_nre'], ['ir_r1_k5_s2_e3_c24_nre', 'ir_r1_k5_s1_e3_c24_nre_se0.25'], ...]

A block string is a type (``ir``, ``ds``, ``dsa``, ``er``, ``cn``) followed by ``_``-separated options:
``r`` repeats, ``k`` kernel (``3.5`` = mixed), ``s`` stride, ``e`` expansion, ``c`` out channels,
``se`` squeeze-excite ratio, ``a``/``p`` expansion/projection kernels, ``n<act>`` activation
(``re``, ``r6``, ``hs``, ``sw``) and ``noskip``/``skip``. Parsing never uses ``eval``; every malformed
input raises :class:`ArchStringError` naming the stage, the block and the offending token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

__all__ = [
    "ACTIVATIONS",
    "EXCERPT_CHARS",
    "BLOCK_TYPES",
    "ArchDef",
    "ArchStringError",
    "BlockDef",
    "format_arch",
    "format_block",
    "excerpt",
    "format_number",
    "parse_arch",
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


@dataclass(frozen=True)
class ArchDef:
    """A whole architecture: a tuple of stages, each a tuple of blocks."""

    stages: tuple[tuple[BlockDef, ...], ...]

    def __iter__(self):
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, idx: int) -> tuple[BlockDef, ...]:
        return self.stages[idx]

    def to_timm(self) -> list[list[str]]:
        """The ``arch_def`` list that timm's ``decode_arch_def`` takes."""
        return [[format_block(b) for b in stage] for stage in self.stages]

    def __str__(self) -> str:
        return format_arch(self)


# ----------------------------------------------------------------------------------------------
# Block strings
# ----------------------------------------------------------------------------------------------


def _check_length(value: str, key: str, token: str, stage: int | None, block: int | None) -> None:
    if len(value) > _MAX_NUMBER_CHARS:
        raise ArchStringError(f"value of '{key}' too long: expected {_OPTION_NAMES[key]} of at most "
                              f"{_MAX_NUMBER_CHARS} characters", token=token, stage=stage, block=block)


def _parse_int(value: str, key: str, token: str, stage: int | None, block: int | None) -> int:
    if not value:
        raise ArchStringError(
            f"missing value after '{key}': expected {_OPTION_NAMES[key]}", token=token, stage=stage, block=block
        )
    if not _INT.fullmatch(value):
        raise ArchStringError(
            f"non-numeric value {excerpt(value)} for '{key}': expected {_OPTION_NAMES[key]} (a positive integer)",
            token=token,
            stage=stage,
            block=block,
        )
    _check_length(value, key, token, stage, block)
    number = int(value)
    if number <= 0:
        raise ArchStringError(
            f"'{key}' must be positive: expected {_OPTION_NAMES[key]} >= 1", token=token, stage=stage, block=block
        )
    return number


def _parse_float(value: str, key: str, token: str, stage: int | None, block: int | None) -> float:
    if not value:
        raise ArchStringError(
            f"missing value after '{key}': expected {_OPTION_NAMES[key]}", token=token, stage=stage, block=block
        )
    if not _DECIMAL.fullmatch(value):
        raise ArchStringError(
            f"non-numeric value {excerpt(value)} for '{key}': expected {_OPTION_NAMES[key]} such as 3, 2.5 or 0.25",
            token=token,
            stage=stage,
            block=block,
        )
    _check_length(value, key, token, stage, block)
    return float(value)


def parse_block(text: str, *, stage: int | None = None, block: int | None = None) -> BlockDef:
    """Parse one block string such as ``ir_r1_k5_s2_e3_c24_nre_se0.25``."""
    if not isinstance(text, str):
        raise ArchStringError(f"a block must be a string, got {type(text).__name__}", stage=stage, block=block)
    if not text:
        raise ArchStringError("empty block string: expected a block type such as 'ir'", stage=stage, block=block)
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise ArchStringError("whitespace inside a block string", token=text, stage=stage, block=block)
    parts = text.split("_")
    btype, options = parts[0], parts[1:]
    if btype not in BLOCK_TYPES:
        raise ArchStringError(
            f"unknown block type {excerpt(btype)}: expected one of {', '.join(BLOCK_TYPES)}",
            token=btype,
            stage=stage,
            block=block,
        )
    values: dict[str, object] = {}
    order: list[str] = []
    for token in options:
        if token == "":
            raise ArchStringError("empty option (double or trailing '_')", token=text, stage=stage, block=block)
        if token in ("noskip", "skip"):
            key = token
            values[key] = True
        elif token.startswith("n") and not _INT.match(token[1:2]):
            key = "n"
            code = token[1:]
            if code not in ACTIVATIONS:
                raise ArchStringError(
                    f"unknown activation {excerpt(code)}: expected n followed by one of {', '.join(ACTIVATIONS)}",
                    token=token,
                    stage=stage,
                    block=block,
                )
            value: object = code
            if key in values:
                raise ArchStringError("activation given twice", token=token, stage=stage, block=block)
            values[key] = value
        else:
            match = _NUMERIC_KEY.match(token)
            if match is None:
                raise ArchStringError(
                    "option without a name: expected a letter key such as k, s, e, c",
                    token=token,
                    stage=stage,
                    block=block,
                )
            key, raw = match.groups()
            if key not in _OPTION_NAMES:
                raise ArchStringError(
                    f"unknown option {excerpt(key)}: expected one of r, k, s, e, c, se, a, p, n<act>, noskip",
                    token=token,
                    stage=stage,
                    block=block,
                )
            if key in values:
                raise ArchStringError(f"option '{key}' given twice", token=token, stage=stage, block=block)
            if key == "k":
                if not raw:
                    raise ArchStringError(
                        "missing value after 'k': expected a kernel size", token=token, stage=stage, block=block
                    )
                kernel = tuple(_parse_int(v, "k", token, stage, block) for v in raw.split("."))
                for size in kernel:
                    if size % 2 == 0:
                        raise ArchStringError(
                            f"kernel size {size} is even: expected an odd kernel size such as 3 or 5",
                            token=token,
                            stage=stage,
                            block=block,
                        )
                values[key] = kernel
            elif key in ("e", "se"):
                values[key] = _parse_float(raw, key, token, stage, block)
            else:
                values[key] = _parse_int(raw, key, token, stage, block)
        order.append(key)

    for key in _REQUIRED[btype]:
        if key not in values:
            raise ArchStringError(
                f"missing {_OPTION_NAMES[key]} ('{key}<number>') in a '{btype}' block",
                token=text,
                stage=stage,
                block=block,
            )
    stride = int(values["s"])  # type: ignore[arg-type]
    if stride not in (1, 2):
        repeated = int(values["r"]) > 1  # type: ignore[arg-type]
        what = " in a repeated block" if repeated else ""
        raise ArchStringError(
            f"stride {stride}{what}: expected stride 1 or 2", token=f"s{stride}", stage=stage, block=block
        )
    if values.get("noskip") and values.get("skip"):
        raise ArchStringError("both 'skip' and 'noskip' given", token=text, stage=stage, block=block)
    exp_ratio = values.get("e")
    if exp_ratio is not None and float(exp_ratio) <= 0:  # type: ignore[arg-type]
        raise ArchStringError("expansion ratio must be positive", token=f"e{exp_ratio}", stage=stage, block=block)
    se_ratio = values.get("se")
    if se_ratio is not None and not 0 < float(se_ratio) <= 1:  # type: ignore[arg-type]
        raise ArchStringError(
            "squeeze-excite ratio must be in (0, 1]",
            token=f"se{format_number(se_ratio)}",  # type: ignore[arg-type]
            stage=stage,
            block=block,
        )
    if btype == "cn" and len(values["k"]) != 1:  # type: ignore[arg-type]
        raise ArchStringError("a 'cn' block takes a single kernel size", token=text, stage=stage, block=block)
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


# ----------------------------------------------------------------------------------------------
# Whole architectures: a small tokenizer + recursive-descent parser for the list syntax
# ----------------------------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str  # '[', ']', ',', 'str'
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "[],":
            tokens.append(_Tok(ch, ch, i))
            i += 1
        elif ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                raise ArchStringError(
                    f"unterminated quote starting at character {i}: expected a closing {ch}", token=text[i : i + 30]
                )
            tokens.append(_Tok("str", text[i + 1 : end], i))
            i = end + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "[],'\"":
                j += 1
            raise ArchStringError(
                f"unexpected text at character {i}: expected a quoted block string, '[', ']' or ','",
                token=text[i:j],
            )
    return tokens


def _where(tok: _Tok | None) -> str:
    return "end of input" if tok is None else f"{excerpt(tok.text)} at character {tok.pos}"


def parse_arch(text: str | Sequence[Sequence[str]]) -> ArchDef:
    """Parse an architecture string (or a list of lists of block strings) into an :class:`ArchDef`."""
    if not isinstance(text, str):
        if isinstance(text, Sequence) and all(
            isinstance(stage, Sequence) and not isinstance(stage, str) for stage in text
        ):
            return _build_arch([list(stage) for stage in text])
        raise ArchStringError("an architecture must be a string or a list of lists of block strings")
    if not text.strip():
        raise ArchStringError("empty architecture string: expected [[...], ...]")
    tokens = _tokenize(text)
    pos = 0

    def peek() -> _Tok | None:
        return tokens[pos] if pos < len(tokens) else None

    def expect(kind: str, what: str, stage: int | None = None, block: int | None = None) -> _Tok:
        nonlocal pos
        tok = peek()
        if tok is None or tok.kind != kind:
            raise ArchStringError(
                f"expected {what}, found {_where(tok)}",
                token=None if tok is None else tok.text,
                stage=stage,
                block=block,
            )
        pos += 1
        return tok

    expect("[", "'[' opening the list of stages")
    stages: list[list[str]] = []
    while True:
        stage_idx = len(stages)
        tok = peek()
        if tok is not None and tok.kind == "]" and not stages:
            raise ArchStringError("no stages: expected at least one stage '[...]'", token="[]")
        expect("[", "'[' opening a stage", stage=stage_idx)
        blocks: list[str] = []
        while True:
            tok = peek()
            if tok is not None and tok.kind == "]":
                if not blocks:
                    raise ArchStringError(
                        "empty stage: expected at least one block string", token="[]", stage=stage_idx
                    )
                pos += 1
                break
            if tok is not None and tok.kind == "[":
                raise ArchStringError(
                    "unbalanced brackets: a '[' inside a stage, expected a quoted block string",
                    token="[",
                    stage=stage_idx,
                    block=len(blocks),
                )
            blk = expect("str", "a quoted block string", stage=stage_idx, block=len(blocks))
            blocks.append(blk.text)
            tok = peek()
            if tok is not None and tok.kind == ",":
                pos += 1
                nxt = peek()
                if nxt is not None and nxt.kind == "]":
                    raise ArchStringError("trailing ',' before ']'", token=",", stage=stage_idx, block=len(blocks))
            elif tok is None or tok.kind != "]":
                raise ArchStringError(
                    f"unbalanced brackets: expected ',' or ']' after a block, found {_where(tok)}",
                    token=None if tok is None else tok.text,
                    stage=stage_idx,
                    block=len(blocks) - 1,
                )
        stages.append(blocks)
        tok = peek()
        if tok is not None and tok.kind == ",":
            pos += 1
            continue
        if tok is not None and tok.kind == "]":
            pos += 1
            break
        raise ArchStringError(
            f"unbalanced brackets: expected ',' or ']' after a stage, found {_where(tok)}",
            token=None if tok is None else tok.text,
            stage=stage_idx,
        )
    if pos != len(tokens):
        raise ArchStringError(
            f"unbalanced brackets: unexpected {_where(tokens[pos])} after the last ']'", token=tokens[pos].text
        )
    return _build_arch(stages)


def _build_arch(stages: list[list[str]]) -> ArchDef:
    if not stages:
        raise ArchStringError("no stages: expected at least one stage")
    parsed: list[tuple[BlockDef, ...]] = []
    for s, blocks in enumerate(stages):
        if not blocks:
            raise ArchStringError("empty stage: expected at least one block string", token="[]", stage=s)
        parsed.append(tuple(parse_block(b, stage=s, block=j) for j, b in enumerate(blocks)))
    return ArchDef(tuple(parsed))


def format_arch(arch: ArchDef) -> str:
    """Write an architecture as the Python-repr string the published networks use."""
    return "[" + ", ".join("[" + ", ".join(f"'{format_block(b)}'" for b in stage) + "]" for stage in arch) + "]"
