"""Masking rules: parsing, canonical form and the per-value functions, edge cases included."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.policy import REDACTED, MaskMethod, MaskRule, parse_mask_assignments


@pytest.mark.parametrize(
    ("spec", "rule", "canonical"),
    [
        ("redact", MaskRule.redact(), "redact"),
        ("hash", MaskRule.hash(), "hash"),
        ("keep:6:4", MaskRule.keep(6, 4), "keep:6:4"),
        ("KEEP: 6 : 4".replace(" ", ""), MaskRule.keep(6, 4), "keep:6:4"),
        ("keep-first:3", MaskRule.keep(3, 0), "keep-first:3"),
        ("keep-last:4", MaskRule.keep(0, 4), "keep-last:4"),
        ("keep:0:4", MaskRule.keep(0, 4), "keep-last:4"),
        ("保留前6位后4位", MaskRule.keep(6, 4), "keep:6:4"),
        ("保留前６位，后４位", MaskRule.keep(6, 4), "keep:6:4"),  # full-width digits and comma
        ("保留前1位", MaskRule.keep(1, 0), "keep-first:1"),
        ("保留后4位", MaskRule.keep(0, 4), "keep-last:4"),
        ("全部遮盖", MaskRule.redact(), "redact"),
        ("哈希", MaskRule.hash(), "hash"),
    ],
)
def test_parse_and_canonical_spec(spec, rule, canonical):
    parsed = MaskRule.parse(spec)
    assert parsed == rule
    assert parsed.spec == canonical == str(parsed)
    assert MaskRule.parse(parsed.spec) == parsed


@pytest.mark.parametrize(
    "spec", ["", "keep", "keep:0:0", "keep:a:b", "keep:-1:2", "scramble", "keep:6", "保留中间"]
)
def test_bad_specs_are_refused_with_a_hint(spec):
    with pytest.raises(ValueError, match=r"redact|keep|nothing"):
        MaskRule.parse(spec)


def test_constructor_invariants():
    with pytest.raises(ValueError):
        MaskRule(MaskMethod.REDACT, 1, 0)
    with pytest.raises(ValueError):
        MaskRule(MaskMethod.KEEP, 0, 0)
    with pytest.raises(ValueError):
        MaskRule(MaskMethod.KEEP, -1, 3)


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        (MaskRule.keep(6, 4), "11010519491231002X", "110105********002X"),
        (MaskRule.keep(1, 0), "张三丰", "张**"),
        (MaskRule.keep(0, 4), "13800001234", "*******1234"),
        (MaskRule.keep(3, 4), "13800001234", "138****1234"),
        # too short to hide anything: masked entirely, never revealed
        (MaskRule.keep(6, 4), "1101051949", "**********"),
        (MaskRule.keep(6, 4), "12345", "*****"),
        (MaskRule.keep(1, 0), "张", "*"),
        (MaskRule.keep(1, 1), "张三", "**"),
        (MaskRule.keep(1, 1), "张三丰", "张*丰"),
        (MaskRule.keep(6, 4), "", ""),
        # None stays None for every rule
        (MaskRule.keep(6, 4), None, None),
        (MaskRule.redact(), None, None),
        # non-strings are masked on their text and come out as strings
        (MaskRule.keep(0, 2), 8000, "**00"),
        (MaskRule.keep(1, 0), 8000.5, "8*****"),
        (MaskRule.keep(0, 1), Decimal("12.50"), "****0"),
        (MaskRule.keep(1, 0), True, "T***"),
        (MaskRule.redact(), "anything at all", REDACTED),
        (MaskRule.redact(), "", REDACTED),
        (MaskRule.redact(), 0, REDACTED),
        (MaskRule.redact(), False, REDACTED),
    ],
)
def test_masker_values(rule, value, expected):
    assert rule.compile(b"k").__call__(value) == expected


def test_hash_is_hmac_sha256_of_the_text_and_needs_a_key():
    key = b"consumer-key"
    fn = MaskRule.hash().compile(key)
    assert fn("11010519491231002X") == hmac.new(key, b"11010519491231002X", hashlib.sha256).hexdigest()
    assert fn(8000) == fn("8000")
    assert fn(None) is None
    assert fn("a") != MaskRule.hash().compile(b"other-key")("a")
    with pytest.raises(ValueError, match="key"):
        MaskRule.hash().compile(None)


def test_strictness_order():
    order = [MaskRule.keep(6, 4), MaskRule.keep(1, 0), MaskRule.hash(), MaskRule.redact()]
    assert sorted(reversed(order), key=lambda r: r.strictness) == order


def test_parse_mask_assignments():
    rules = parse_mask_assignments(["identityNumber=keep:6:4", "name=keep-first:1; phone=redact"])
    assert {k: r.spec for k, r in rules.items()} == {
        "identityNumber": "keep:6:4",
        "name": "keep-first:1",
        "phone": "redact",
    }
    with pytest.raises(ValueError, match="item=rule"):
        parse_mask_assignments(["keep:6:4"])
    with pytest.raises(ValueError, match="two masking rules"):
        parse_mask_assignments(["a=redact", "a=hash"])


@given(st.text(max_size=40), st.integers(0, 10), st.integers(0, 10))
def test_keep_never_reveals_a_whole_value(value, first, last):
    if first + last == 0:
        return
    out = MaskRule.keep(first, last).compile()(value)
    assert len(out) == len(value)
    # what the rule hides: the middle, or everything when the value is too short to keep both ends
    hidden = value[first : len(value) - last] if len(value) > first + last else value
    if hidden and set(hidden) != {"*"}:  # hiding "*" behind "*" cannot change the text
        assert out != value
    if len(value) > first + last:
        assert out[:first] == value[:first] and out[len(out) - last :] == value[len(value) - last :]
