"""Block keys are canonical, and every key the search spaces generate stays byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.arch_string import ArchStringError, format_number, parse_block
from shared.block_key import BlockKey, BlockKeyError
from shared.search_space import SPACES

#: Every key of every space's 224 px table, and its original-format key: stored tables, shipped LUT files and the
#: original-pickle import depend on them (written from the code before keys became canonical).
PINNED = Path(__file__).with_name("table_keys_224.txt")


def test_the_224_tables_keys_are_pinned() -> None:
    lines = []
    for name in sorted(SPACES):
        for key in SPACES[name].all_keys(224):
            original = key.to_original() if key.type == "ir" and key.act in ("relu", "hard_swish") else "-"
            lines.append(f"{name} 224 {key} {original}")
            assert BlockKey.parse(str(key)) == key and BlockKey.from_dict(key.to_dict()) == key
    assert "\n".join(lines) + "\n" == PINNED.read_text()
    assert sum(line.startswith("hardcorenas 224 ") for line in lines) == 124


@pytest.mark.parametrize(("spec", "canonical"), [
    ({"type": "cn", "exp_ratio": 3, "se_ratio": 0.25, "num_classes": 7}, {"exp_ratio": 1.0, "se_ratio": 0.0}),
    ({"type": "ds", "exp_ratio": 6, "num_classes": 3}, {"exp_ratio": 1.0, "num_classes": 0}),
    ({"type": "dsa", "exp_ratio": 2.5}, {"exp_ratio": 1.0}),
    ({"type": "stem", "exp_ratio": 4, "se_ratio": 0.5}, {"exp_ratio": 1.0, "se_ratio": 0.0}),
    ({"type": "head", "stride": 2, "kernel": 5, "exp_ratio": 6, "num_classes": 10},
     {"stride": 1, "kernel": 1, "exp_ratio": 1.0, "num_classes": 10}),
    ({"type": "ir", "num_classes": 9, "exp_ratio": 0.1 + 0.2}, {"num_classes": 0, "exp_ratio": 0.3}),
])
def test_fields_a_block_type_ignores_are_not_part_of_its_key(spec: dict, canonical: dict) -> None:
    base = {"in_chs": 16, "out_chs": 24, "stride": 1, "resolution": 8, "kernel": 3}
    key = BlockKey.from_dict({**base, **spec})
    plain = BlockKey.from_dict({**base, "type": spec["type"], **canonical,
                                **({"num_classes": spec["num_classes"]} if spec["type"] == "head" else {})})
    assert key == plain and str(key) == str(plain) and key.to_dict() == plain.to_dict()
    assert {name: key.to_dict()[name] for name in canonical} == canonical


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_keys_refuse_non_finite_ratios(value: float) -> None:
    for name in ("exp_ratio", "se_ratio"):
        with pytest.raises(BlockKeyError, match=name):
            BlockKey("ir", 16, 24, 1, 8, **{name: value})


def test_numbers_never_print_an_exponent_and_digits_are_ascii() -> None:
    assert format_number(1e-05) == "0.00001" and format_number(2.5) == "2.5" and format_number(1e16) == "1" + "0" * 16
    assert format_number(1.5e16 + 0.5) == "15000000000000000" and format_number(1.25e-7) == "0.000000125"
    key = BlockKey("ir", 16, 24, 1, 8, exp_ratio=0.0001)
    assert BlockKey.parse(str(key)) == key
    for digit in ("\u00b2", "\u0663", "\uff13"):
        with pytest.raises(ArchStringError, match="non-numeric"):
            parse_block(f"ir_r1_k3_s1_e3_c1{digit}")
        with pytest.raises(BlockKeyError, match="malformed"):
            BlockKey.parse(f"ir:in1{digit}:out24:s1:res8:e3:k3:se0:relu")
    with pytest.raises(ArchStringError, match="too long"):
        parse_block("ir_r1_k3_s1_e3_c" + "9" * 400)
