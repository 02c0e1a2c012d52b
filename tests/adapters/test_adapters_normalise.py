"""Normalisers: dates, text, identity numbers, credit codes, amounts and divisions, on concrete values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.normalise import (
    NORMALISERS,
    DivisionIndex,
    NormaliseError,
    OptionError,
    build_normaliser,
    credit_check_char,
    halfwidth,
    identity_birth_date,
    identity_check_char,
    identity_sex,
    is_valid_credit_code,
    is_valid_identity_number,
    load_division_csvs,
    normalise_amount,
    normalise_credit_code,
    normalise_date,
    normalise_identity_number,
    trim,
    upgrade_identity_number,
)
from node.errors import InputError


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2020-01-02", "2020-01-02"),
        ("2020-1-2", "2020-01-02"),
        ("20200102", "2020-01-02"),
        ("2020年1月2日", "2020-01-02"),
        ("2020年01月02日", "2020-01-02"),
        ("2020 年 1 月 2 日", "2020-01-02"),
        ("2020/1/2", "2020-01-02"),
        ("2020.01.02", "2020-01-02"),
        ("２０２０年１月２日", "2020-01-02"),
        ("２０２０－０１－０２", "2020-01-02"),
        ("2020-01-02 08:30:00", "2020-01-02"),
        ("2020-01-02T08:30:00+08:00", "2020-01-02"),
        ("2000-02-29", "2000-02-29"),
        ("20000229", "2000-02-29"),
    ],
)
def test_dates_in_local_forms_become_iso(raw: str, iso: str) -> None:
    assert normalise_date(raw) == iso


@pytest.mark.parametrize(
    "raw", ["2019-02-29", "1900-02-29", "20190229", "2020-13-01", "2020/0/5", "1976-13-45", "02-01-2020",
            "2020-01", "yesterday", "", "0999-01-01", "2020-01-02x"],
)  # fmt: skip
def test_non_dates_are_rejected_with_the_value(raw: str) -> None:
    with pytest.raises(NormaliseError) as caught:
        normalise_date(raw)
    assert caught.value.constraint == "date"
    assert repr(raw) in caught.value.reason


def test_text_trim_and_halfwidth() -> None:
    assert trim("\u3000刘洋 \u200b") == "刘洋"
    assert trim("\u00a0x\t") == "x"
    assert halfwidth("ＡＢＣ１２３，（）\u3000ｘ") == "ABC123,() x"
    assert halfwidth("张三") == "张三"
    assert halfwidth("abc") == "abc"


def test_identity_numbers_known_valid_examples() -> None:
    for number in ("11010519491231002X", "360426199101010071", "120103198806018241"):
        assert is_valid_identity_number(number)
        assert identity_check_char(number[:17]) == number[17]
    assert not is_valid_identity_number("110105194912310021")  # wrong check character
    assert not is_valid_identity_number("110105194913310023")  # month 13


def test_identity_upgrade_from_15_digits() -> None:
    # 110105491231002 is the old form of 11010519491231002X
    assert upgrade_identity_number("110105491231002") == "11010519491231002X"
    assert normalise_identity_number(" 110105491231002 ") == "11010519491231002X"
    with pytest.raises(NormaliseError, match="birth date"):
        upgrade_identity_number("110105491331002")
    with pytest.raises(NormaliseError, match="15 digits"):
        upgrade_identity_number("11010549123100A")


def test_identity_normalise_keeps_18_and_fixes_case_and_width() -> None:
    assert normalise_identity_number("11010519491231002x") == "11010519491231002X"
    assert normalise_identity_number("１１０１０５１９４９１２３１００２Ｘ") == "11010519491231002X"
    # a wrong check character is the standard's finding, not the normaliser's
    assert normalise_identity_number("110105194912310021") == "110105194912310021"
    with pytest.raises(NormaliseError) as caught:
        normalise_identity_number("1101051949123100")
    assert caught.value.constraint == "identity-number"
    assert "16" in caught.value.reason


def test_identity_derived_values() -> None:
    assert identity_birth_date("11010519491231002X") == "1949-12-31"
    assert identity_sex("11010519491231002X") == "2"  # sequence 002: even, female
    assert identity_sex("360426199101010071") == "1"
    with pytest.raises(NormaliseError):
        identity_birth_date("123")


def test_credit_codes() -> None:
    for code in ("91110000600037341L", "91110108551385082Q", "91350200MA2YJ1XR9G"):
        assert is_valid_credit_code(code)
        assert credit_check_char(code[:17]) == code[17]
    assert not is_valid_credit_code("91110000600037341M")
    assert not is_valid_credit_code("91110000600037341I")  # I is not in the alphabet
    assert normalise_credit_code(" 9111-0000 6000 3734 1l ") == "91110000600037341L"
    assert normalise_credit_code("９１１１００００６０００３７３４１Ｌ") == "91110000600037341L"
    with pytest.raises(NormaliseError, match="18 characters"):
        normalise_credit_code("9111000060003734")


@pytest.mark.parametrize(
    ("raw", "unit", "yuan"),
    [
        ("8000", "元", "8000.00"),
        ("0.8", "万元", "8000.00"),
        ("1.2345", "万元", "12345.00"),
        ("1,234.5", "元", "1234.50"),
        ("１２３４．５", "元", "1234.50"),
        ("0.8万元", "元", "8000.00"),  # a unit written in the value wins
        ("0.8万", "元", "8000.00"),
        ("8000元", "万元", "8000.00"),
        ("¥ 12.30", "元", "12.30"),
        ("0", "万元", "0.00"),
        ("-0.1", "万元", "-1000.00"),  # a negative amount is the standard's finding
        ("1E3", "元", "1000.00"),
    ],
)
def test_amounts_to_yuan(raw: str, unit: str, yuan: str) -> None:
    assert normalise_amount(raw, unit) == yuan


def test_amounts_never_round_silently() -> None:
    with pytest.raises(NormaliseError, match="more precise"):
        normalise_amount("1.2345678", "万元")
    assert normalise_amount("1.2345678", "万元", rounding="half_up") == "12345.68"
    assert normalise_amount("0.125", "元", rounding="half_even") == "0.12"
    with pytest.raises(NormaliseError, match="not a decimal"):
        normalise_amount("八千", "元")
    with pytest.raises(NormaliseError, match="finite"):
        normalise_amount("Infinity", "元")


def test_division_csv_loader_pads_codes_and_links_parents(division_csvs: list[Path]) -> None:
    entries = load_division_csvs(division_csvs)
    assert entries["110000"].name == "北京市" and entries["110000"].parent is None
    assert entries["110100"].parent == "110000"
    assert entries["110105"].name == "朝阳区" and entries["110105"].parent == "110100"
    assert len(entries) > 3300


def test_division_csv_loader_names_the_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.csv"):
        load_division_csvs([bad])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("北京市朝阳区", "110105"),
        ("北京朝阳区建国路88号", "110105"),
        ("河北省石家庄市正定县正定镇中山东路12号", "130123"),
        ("石家庄市正定县", "130123"),
        ("正定县新城铺镇", "130123"),  # unique county name alone
        ("河北正定县", "130123"),
        ("吉林省长春市朝阳区", "220104"),
        ("湖北省仙桃市", "429004"),  # under a 省直辖县级行政区划 placeholder
        ("仙桃市", "429004"),
        ("重庆市万州区", "500101"),
        ("内蒙古呼和浩特市", "150100"),
        ("北京市", "110000"),
        ("110105", "110105"),
        ("110105000000", "110105"),  # 12-digit statistical code
        ("13", "130000"),
        ("１１０１０５", "110105"),
        (" 北京市 朝阳区 ", "110105"),
    ],
)
def test_division_names_resolve(division_index: DivisionIndex, raw: str, code: str) -> None:
    assert division_index.resolve(raw) == code


def test_division_failures_say_why(division_index: DivisionIndex) -> None:
    with pytest.raises(NormaliseError, match="ambiguous.*110105.*220104"):
        division_index.resolve("朝阳区建国路")
    with pytest.raises(NormaliseError, match="no division"):
        division_index.resolve("火星市奥林匹斯山1号")
    with pytest.raises(NormaliseError, match="not in the division list"):
        division_index.resolve("999999")
    with pytest.raises(NormaliseError, match="not a county-level"):
        division_index.resolve("北京市", level="county")
    assert division_index.resolve("北京市朝阳区", level="county") == "110105"
    assert division_index.full_name("429004") == "湖北省仙桃市"


def test_division_index_reads_the_standards_imported_list(full_standard: Path) -> None:
    from adapters.normalise import load_standard_divisions

    index = DivisionIndex(load_standard_divisions(full_standard))
    assert index.resolve("北京市朝阳区建国路88号") == "110105"
    assert index.resolve("河北正定县") == "130123"
    assert index.full_name("130123") == "河北省石家庄市正定县"


def test_registry_builds_with_options_and_rejects_bad_ones(division_index: DivisionIndex) -> None:
    def divisions() -> DivisionIndex:
        return division_index

    amount = build_normaliser("amount", {"unit": "万元"}, divisions)
    assert amount("0.8") == "8000.00"
    county = build_normaliser("division", {"level": "county"}, divisions)
    with pytest.raises(NormaliseError):
        county("北京市")
    regex = build_normaliser("regex", {"pattern": r"^(\d+)号$", "group": 1}, divisions)
    assert regex("12号") == "12"
    sub = build_normaliser("regex", {"pattern": r"\s+", "replace": ""}, divisions)
    assert sub("a b  c") == "abc"
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("amount", {"unit": "美元"}, "unit"),
        ("amount", {"places": -1}, "places"),
        ("amount", {"rounding": "up"}, "rounding"),
        ("division", {"level": "town"}, "level"),
        ("regex", {"pattern": "("}, "pattern"),
        ("regex", {"pattern": "a", "replace": "b", "group": 1}, "replace"),
    ]
    for name, options, key in bad:
        with pytest.raises(OptionError) as caught:
            build_normaliser(name, options, divisions)
        assert caught.value.key == key
    assert {"date", "identity_number", "division", "amount", "trim", "halfwidth"} <= set(NORMALISERS)
