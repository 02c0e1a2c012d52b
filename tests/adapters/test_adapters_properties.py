"""Property tests (hypothesis) for the normalisers: dates, full-width text, identity numbers, amounts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from adapters.normalise import (
    NormaliseError,
    credit_check_char,
    downgrade_identity_number,
    halfwidth,
    identity_birth_date,
    identity_check_char,
    is_valid_credit_code,
    is_valid_identity_number,
    normalise_amount,
    normalise_date,
    normalise_identity_number,
    upgrade_identity_number,
)

_FW = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}


def fullwidth(text: str) -> str:
    return "".join(_FW.get(c, "\u3000" if c == " " else c) for c in text)


dates = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31))


def forms(d: dt.date) -> list[str]:
    y, m, dd = d.year, d.month, d.day
    return [
        d.isoformat(),
        f"{y:04d}{m:02d}{dd:02d}",
        f"{y}年{m}月{dd}日",
        f"{y:04d}年{m:02d}月{dd:02d}日",
        f"{y}/{m}/{dd}",
        f"{y}-{m}-{dd}",
        f"{y:04d}.{m:02d}.{dd:02d}",
        f"{y}.{m}.{dd}",
        f"{d.isoformat()} 23:59:59",
        f"{d.isoformat()}T00:00:00Z",
    ]


@given(dates, st.integers(min_value=0, max_value=9), st.booleans())
def test_every_date_form_reads_back_as_the_same_iso_date(d: dt.date, which: int, wide: bool) -> None:
    text = forms(d)[which]
    if wide:
        text = fullwidth(text)
    assert normalise_date(text) == d.isoformat()


@given(st.text(max_size=40))
def test_date_normaliser_returns_iso_or_raises(text: str) -> None:
    try:
        out = normalise_date(text)
    except NormaliseError as exc:
        assert exc.constraint == "date"
    else:
        assert dt.date.fromisoformat(out).isoformat() == out


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60))
def test_halfwidth_undoes_fullwidth(text: str) -> None:
    assert halfwidth(fullwidth(text)) == text


@given(st.text(max_size=60))
def test_halfwidth_is_idempotent_and_keeps_other_characters(text: str) -> None:
    once = halfwidth(text)
    assert halfwidth(once) == once
    assert len(once) == len(text)
    for a, b in zip(text, once, strict=True):
        assert a == b or 0xFF01 <= ord(a) <= 0xFF5E or a == "\u3000"


addresses = st.from_regex(r"[1-6][0-9]{5}", fullmatch=True)
births_19xx = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31))
sequences = st.integers(min_value=0, max_value=999)


@given(addresses, births_19xx, sequences)
def test_identity_number_upgrade_round_trip(address: str, birth: dt.date, seq: int) -> None:
    first17 = f"{address}{birth:%Y%m%d}{seq:03d}"
    number = first17 + identity_check_char(first17)
    assert is_valid_identity_number(number)
    old = downgrade_identity_number(number)
    assert len(old) == 15
    assert upgrade_identity_number(old) == number
    assert normalise_identity_number(old) == number
    assert normalise_identity_number(fullwidth(number.lower())) == number
    assert identity_birth_date(number) == birth.isoformat()


@given(addresses, births_19xx, sequences, st.integers(min_value=0, max_value=16), st.integers(1, 9))
def test_identity_check_catches_any_single_digit_change(address: str, birth: dt.date, seq: int, pos: int,
                                                         delta: int) -> None:  # fmt: skip
    first17 = f"{address}{birth:%Y%m%d}{seq:03d}"
    number = first17 + identity_check_char(first17)
    changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    assert identity_check_char(changed[:17]) != changed[17]


_CREDIT = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@given(st.text(alphabet=_CREDIT, min_size=17, max_size=17), st.integers(0, 16), st.integers(1, 30))
def test_credit_check_catches_any_single_character_change(first17: str, pos: int, delta: int) -> None:
    code = first17 + credit_check_char(first17)
    assert is_valid_credit_code(code)
    swapped = _CREDIT[(_CREDIT.index(code[pos]) + delta) % 31]
    changed = code[:pos] + swapped + code[pos + 1 :]
    assert not is_valid_credit_code(changed)


@given(st.decimals(min_value=0, max_value=10**8, places=6, allow_nan=False, allow_infinity=False))
def test_amounts_in_wan_are_exact_yuan_or_refused(wan: Decimal) -> None:
    text = format(wan, "f")
    yuan = wan * 10000
    try:
        out = normalise_amount(text, "万元")
    except NormaliseError as exc:
        assert exc.constraint == "amount"
        assert yuan != yuan.quantize(Decimal("0.01"))
    else:
        assert Decimal(out) == yuan
        assert out == f"{yuan.quantize(Decimal('0.01')):f}"
