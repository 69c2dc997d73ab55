"""Architecture strings: parse the HardCoRe-NAS / timm arch-string grammar into typed data and back.

A network is written as a Python-style list of stages, each a list of quoted block strings::

    [['ds_r1_k3_s1_e1_c16_nre'], ['ir_r1_k5_s2_e3_c24_nre', 'ir_r1_k5_s1_e3_c24_nre_se0.25'], ...]

Block strings themselves are :mod:`shared.block_string` (re-exported here). Parsing never uses ``eval``; every
malformed input raises :class:`ArchStringError` naming the stage, the block and the offending token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.block_string import (
    ACTIVATIONS,
    BLOCK_TYPES,
    EXCERPT_CHARS,
    ArchStringError,
    BlockDef,
    excerpt,
    format_block,
    format_number,
    parse_block,
)

__all__ = [
    "ACTIVATIONS",
    "BLOCK_TYPES",
    "EXCERPT_CHARS",
    "ArchDef",
    "ArchStringError",
    "BlockDef",
    "excerpt",
    "format_arch",
    "format_block",
    "format_number",
    "parse_arch",
    "parse_block",
]


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
