"""Architecture-string grammar: exact round trips and clear errors for malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.arch_string import ArchStringError, format_arch, format_block, parse_arch, parse_block
from shared.published import EXAMPLE_LARGE_SPACE, PUBLISHED


@pytest.mark.parametrize("text", [p.arch for p in PUBLISHED.values()] + [EXAMPLE_LARGE_SPACE])
def test_round_trip_is_exact(text: str) -> None:
    arch = parse_arch(text)
    assert format_arch(arch) == text
    assert parse_arch(format_arch(arch)) == arch


def test_typed_fields() -> None:
    block = parse_block("ir_r1_k5_s2_e3_c24_nre_se0.25")
    assert (block.type, block.repeats, block.kernel, block.stride) == ("ir", 1, (5,), 2)
    assert (block.exp_ratio, block.out_chs, block.se_ratio, block.act, block.noskip) == (3.0, 24, 0.25, "re", False)
    assert block.act_name == "relu"
    mixed = parse_block("ir_r2_k3.5_s1_e2.5_c40_noskip_nsw")
    assert mixed.kernel == (3, 5) and mixed.exp_ratio == 2.5 and mixed.noskip and mixed.act_name == "swish"
    assert format_block(mixed) == "ir_r2_k3.5_s1_e2.5_c40_noskip_nsw"


def test_option_order_is_kept_and_list_input_accepted() -> None:
    assert format_block(parse_block("ir_c24_e3_s2_k5_r1")) == "ir_c24_e3_s2_k5_r1"
    arch = parse_arch([["ds_r1_k3_s1_e1_c16_nre"], ["cn_r1_k1_s1_c960"]])
    assert format_arch(arch) == "[['ds_r1_k3_s1_e1_c16_nre'], ['cn_r1_k1_s1_c960']]"
    assert parse_arch('[["ds_r1_k3_s1_e1_c16_nre"]]') == parse_arch("[['ds_r1_k3_s1_e1_c16_nre']]")


GOOD = "ir_r1_k5_s2_e3_c24_nre"
# (malformed string, a token its error message must name)
MALFORMED: list[tuple[str, str]] = [
    ("[['xx_r1_k3_s1_c16']]", "'xx'"),
    ("[['ir_r1_k5_s2_e3_nre']]", "ir_r1_k5_s2_e3_nre"),  # missing channel count
    ("[['ir_r1_k5_s2_c24']]", "ir_r1_k5_s2_c24"),  # missing expansion
    ("[['ir_r2_k5_s3_e3_c24']]", "'s3'"),  # stride 3 in a repeated block
    ("[['ir_r1_k5_s3_e3_c24']]", "'s3'"),
    ("[['ir_r1_k5_s0_e3_c24']]", "'s0'"),
    ("[['ir_r1_kx_s2_e3_c24']]", "'kx'"),  # non-numeric kernel
    ("[['ir_r1_k4_s2_e3_c24']]", "'k4'"),  # even kernel
    ("[['ir_r1_k5_s2_ex_c24']]", "'ex'"),
    ("[['ir_r1_k5_s2_e3_cabc']]", "'cabc'"),
    ("[['ir_r1_k5_s2_e3_c24_se']]", "'se'"),  # missing SE value
    ("[['ir_r1_k5_s2_e3_c24_se1.5']]", "'se1.5'"),
    ("[['ir_r1_k5_s2_e3_c24_nxx']]", "'nxx'"),  # unknown activation
    ("[['ir_r1_k5_s2_e3_c24_nre_nhs']]", "'nhs'"),  # activation twice
    ("[['ir_r1_k5_k3_s2_e3_c24']]", "'k3'"),  # duplicate option
    ("[['ir_r1_k5_s2_e3_c24_z9']]", "'z9'"),  # unknown option
    ("[['ir_r1_k5_s2_e3_c24_']]", "ir_r1_k5_s2_e3_c24_"),  # trailing underscore
    ("[['ir__r1_k5_s2_e3_c24']]", "ir__r1_k5_s2_e3_c24"),
    ("[['ir_r0_k5_s2_e3_c24']]", "'r0'"),
    ("[['ir_k5_s2_e3_c24']]", "ir_k5_s2_e3_c24"),  # missing repeats
    ("[['']]", "stage 0"),  # empty block
    ("[['ir_r1_k5_s2_e3_c24_noskip_skip']]", "noskip_skip"),
    ("[['cn_r1_k3.5_s1_c960']]", "cn_r1_k3.5_s1_c960"),
    ("[['ir_r1_k5 _s2_e3_c24']]", "k5 _s2"),
    ("[[]]", "'[]'"),  # empty stage
    ("[['ds_r1_k3_s1_e1_c16_nre'], []]", "'[]'"),  # empty second stage
    ("[]", "'[]'"),  # no stages
    ("", "empty architecture"),
    (f"[['{GOOD}']", "end of input"),  # unbalanced: missing ]
    (f"[['{GOOD}']]]", "']'"),  # unbalanced: extra ]
    (f"[['{GOOD}'", "end of input"),
    (f"[[['{GOOD}']]]", "'['"),
    (f"[['{GOOD}' '{GOOD}']]", GOOD),  # missing comma
    (f"[['{GOOD}',]]", "','"),  # trailing comma
    (f"[['{GOOD}]]", "unterminated"),  # unterminated quote
    (f"[[{GOOD}]]", GOOD),  # unquoted
    (f"[['{GOOD}'], ['{GOOD}'] x]", "'x'"),
    (f"[['{GOOD}']], [['{GOOD}']]", "','"),
    ("__import__('os')", "__import__"),  # never eval'd
    ("[['ir_r1_k5_s2_e3_c-24']]", "'c-24'"),
    ("[['ir_r1_k5_s2_e3_c24_se0.25_se0.5']]", "'se0.5'"),
    ("[['ir_r1_k5_s2_e3_c24_se.25']]", "'se.25'"),
]


def test_corpus_is_large_enough() -> None:
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize(("text", "token"), MALFORMED)
def test_malformed_strings_raise_a_clear_error(text: str, token: str) -> None:
    with pytest.raises(ArchStringError) as info:
        parse_arch(text)
    message = str(info.value)
    assert token in message, message


def test_error_names_stage_and_block() -> None:
    with pytest.raises(ArchStringError) as info:
        parse_arch(f"[['ds_r1_k3_s1_e1_c16_nre'], ['{GOOD}', 'ir_r1_k5_s1_e3_c24_nfoo']]")
    assert info.value.stage == 1 and info.value.block == 1 and info.value.token == "nfoo"
    assert "stage 1, block 1" in str(info.value) and "expected" in str(info.value)


@given(st.text(alphabet="[]',_ irdscnkesr0123456789.", max_size=60))
def test_fuzzed_input_only_raises_the_project_error(text: str) -> None:
    try:
        arch = parse_arch(text)
    except ArchStringError:
        return
    assert parse_arch(format_arch(arch)) == arch
