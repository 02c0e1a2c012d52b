"""Spreadsheet import: encodings, headers, tolerance, and errors that name the row and column."""

from __future__ import annotations

import codecs
from datetime import date

import pytest

from node.errors import InputError
from node.policy import CsvImportError, MaskRule, SharingType, import_csv, load_list, parse_until

from .conftest import EXAMPLES, MZJ, PROVIDER, RSJ, YBJ

ZH_HEADER = "信息资源代码,信息资源名称,信息项,共享类型,共享条件,共享方式,使用部门/共享对象,使用用途,有效期至,依据,脱敏规则"


def _csv(*rows: str, header: str = ZH_HEADER, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode(encoding)


def _problems(data: bytes) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        import_csv(data)
    return [str(p) for p in caught.value.problems]


# ------------------------------------------------------------------ the examples


def test_both_example_spreadsheets_give_the_example_list():
    zh = import_csv(EXAMPLES / "list-zh-gb18030.csv", provider_code=PROVIDER)
    en = import_csv(EXAMPLES / "list-en-utf8.csv", provider_code=PROVIDER, title=zh.list.title)
    assert zh.encoding == "gb18030" and en.encoding == "utf-8"
    assert zh.list == en.list == load_list(EXAMPLES / "valid" / "list.ttl")
    assert zh.ignored_columns == ("备注",) and en.ignored_columns == ("remarks",)
    assert zh.list.title == "某市政务信息资源共享责任清单（示例）"  # the title row above the header
    assert zh.rows == 14 and en.rows == 8


def test_example_content():
    lst = import_csv(EXAMPLES / "list-zh-gb18030.csv").list
    person = lst.dataset("101/000001")
    assert person.sharing_type is SharingType.CONDITIONAL
    assert person.withheld == ("ethnicity",)
    assert person.label("identityNumber") == "身份证号"
    rsj = person.grants_for(RSJ)[0]
    assert rsj.items == ("birthDate", "identityNumber", "name")
    assert rsj.until == date(2026, 12, 31)
    assert rsj.masking_map == {"identityNumber": MaskRule.keep(6, 4)}
    mzj = person.grants_for(MZJ)[0]
    assert mzj.purposes == ("最低生活保障资格核查", "特困人员认定")  # two rows, purposes in another order
    assert mzj.masking_map == {"identityNumber": MaskRule.hash(), "name": MaskRule.keep(1, 0)}
    assert lst.dataset("102/000001").masking_map == {"legalRepresentative": MaskRule.keep(1, 0)}
    assert lst.dataset("105/000009").sharing_type is SharingType.NOT_SHARED


# ------------------------------------------------------------------ encodings and layout


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (lambda s: s.encode("gb18030"), "gb18030"),
        (lambda s: s.encode("utf-8"), "utf-8"),
        (lambda s: codecs.BOM_UTF8 + s.encode("utf-8"), "utf-8-sig"),
        (lambda s: s.encode("utf-16"), "utf-16"),
    ],
)
def test_encodings(encode, encoding):
    text = ZH_HEADER + "\n102/000001,法人单位基础信息,统一社会信用代码,无条件共享,,共享平台,,,,,\n"
    result = import_csv(encode(text))
    assert result.encoding == encoding
    assert result.list.dataset("102/000001").title == "法人单位基础信息"


def test_column_order_extra_columns_and_tabs():
    header = "备注\t有效期至\t信息项\t使用用途\t共享类型\t资源代码\t使用部门\t依据\t序号"
    row = f"x\t2026-01-01\t姓名\t核查\t2\tD1\t{RSJ}\t《条例》\t1"
    result = import_csv(f"{header}\n{row}\n".encode())
    assert result.ignored_columns == ("备注", "序号")
    grant = result.list.dataset("D1").grants[0]
    assert (grant.items, grant.purposes, grant.until) == (("name",), ("核查",), date(2026, 1, 1))


def test_english_headers_with_spaces_and_case():
    data = b"Resource Code,ITEM,Sharing_Type,Valid Until,Consumer,Purpose,Legal Basis\n"
    data += f"D1,name,conditional,2026-01-01,{RSJ},check,law\n".encode()
    assert import_csv(data).list.dataset("D1").grants[0].consumer_code == RSJ


def test_header_with_notes_in_brackets():
    data = "信息资源代码（必填）,共享类型(1/2/3),信息项\nD1,1,name\n".encode()
    assert import_csv(data).list.dataset("D1").items == ("name",)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        ("2026/1/2", date(2026, 1, 2)),
        ("2026.01.02", date(2026, 1, 2)),
        ("2026年1月2日", date(2026, 1, 2)),
        ("20260102", date(2026, 1, 2)),
        ("２０２６－０１－０２", date(2026, 1, 2)),
        ("2026-01-02 00:00:00", date(2026, 1, 2)),
        ("长期", None),
        ("长期有效", None),
    ],
)
def test_until_forms(cell, expected):
    assert parse_until(cell) == expected


def test_several_consumers_in_one_cell_and_labelled_items():
    row = f"D1,名称,身份证号(identityNumber)、姓名,2,,,人社局({RSJ})；医保局（{YBJ}）,核查,长期,《条例》,"
    lst = import_csv(_csv(row)).list
    grants = lst.dataset("D1").grants
    assert {g.consumer_code for g in grants} == {RSJ, YBJ}
    assert all(g.items == ("identityNumber", "name") and g.until is None for g in grants)
    assert lst.dataset("D1").label("name") == "姓名"


def test_masking_cell_forms():
    rows = [
        f"D1,,身份证号,2,,,{RSJ},核查,2026-01-01,《条例》,keep:6:4",
        f"D1,,姓名,2,,,{RSJ},核查,2026-01-01,《条例》,name=redact;id=hash",
    ]
    grant = import_csv(_csv(*rows)).list.dataset("D1").grants[0]
    assert grant.masking_map == {
        "identityNumber": MaskRule.keep(6, 4),
        "name": MaskRule.redact(),
        "id": MaskRule.hash(),
    }


def test_unconditional_consumer_cells_are_ignored_with_a_warning():
    result = import_csv(_csv(f"D1,,姓名,1,,,{RSJ},核查,2026-01-01,,"))
    assert result.list.dataset("D1").grants == ()
    assert any("row 2" in w and "ignored" in w for w in result.warnings)


def test_title_row_and_blank_rows_are_skipped():
    data = ("某清单,,,\n,,,\n" + ZH_HEADER + "\n,,,\nD1,,姓名,1,,,,,,,\n").encode()
    result = import_csv(data)
    assert result.rows == 1 and result.list.title == "某清单"


# ------------------------------------------------------------------ errors name row and column


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (["D1,,姓名,部分共享,,,,,,,"], "row 2, column 共享类型 (D): sharing type '部分共享' not understood"),
        (["D1,,姓名,,,,,,,,"], "row 2, column 共享类型 (D): the sharing type is empty"),
        ([",,姓名,1,,,,,,,"], "row 2, column 信息资源代码 (A): the resource code is empty"),
        (["人口/1,,姓名,1,,,,,,,"], "row 2, column 信息资源代码 (A): dataset id"),
        (
            ["D1,,身份证,1,,,,,,,"],
            "row 2, column 信息项 (C): item '身份证' is not a record property of the standard",
        ),
        ([f"D1,,姓名,2,,,{RSJ},核查,明年,《条例》,"], "row 2, column 有效期至 (I): not a date"),
        ([f"D1,,姓名,2,,,{RSJ},核查,2026-02-30,《条例》,"], "row 2, column 有效期至 (I): not a real date"),
        ([f"D1,,姓名,2,,,{RSJ},核查,,《条例》,"], "row 2, column 有效期至 (I): a grant needs an expiry date"),
        (
            [f"D1,,姓名,2,,,{RSJ},,2026-01-01,《条例》,"],
            "row 2, column 使用用途 (H): a grant needs the purpose",
        ),
        (
            ["D1,,姓名,2,,,市公安局,核查,2026-01-01,《条例》,"],
            "row 2, column 使用部门/共享对象 (G): '市公安局' must carry",
        ),
        (
            ["D1,,姓名,2,,,市公安局(91110000600037341X),核查,2026-01-01,《条例》,"],
            "row 2, column 使用部门/共享对象 (G): consumer '91110000600037341X' has a wrong check character",
        ),
        ([f"D1,,,2,,,{RSJ},核查,2026-01-01,《条例》,"], "row 2, column 信息项 (C): a grant needs the item"),
        (
            [f"D1,,姓名,2,,,{RSJ},核查,2026-01-01,《条例》,keep:x"],
            "row 2, column 脱敏规则 (K): masking rule 'keep:x'",
        ),
        (
            [f"D1,,姓名,2,,,{RSJ},核查,2026-01-01,《条例》,phone=redact"],
            "row 2, column 脱敏规则 (K): masking names item(s) phone not in this row's items",
        ),
        (
            ["D1,,姓名,2,,,,,,《条例》,redact"],
            "row 2, column 脱敏规则 (K): masking of a conditional item belongs",
        ),
        (["D1,,姓名,2,,,,,,,"], "row 2, column 依据 (J): resource D1 is 有条件共享 and must cite its basis"),
        (["D1,,,3,,,,,,,"], "row 2, column 依据 (J): resource D1 is 不予共享 and must cite its basis"),
        (["D1,,姓名,1,,,,,,,", "D1,,性别,3,,,,,,,"], "row 3, column 依据 (J): resource D1 withholds item(s)"),
        (
            [f"D1,,姓名,3,,,{RSJ},,,《法》,"],
            "row 2, column 使用部门/共享对象 (G): a not-shared (不予共享) item has no consumer",
        ),
        (["D1,,姓名,1,,,,,,,", "D1,,性别,2,,,,,,《条例》,"], "row 3, column 共享类型 (D): resource D1 mixes"),
        (
            ["D1,甲,姓名,1,,,,,,,", "D1,乙,性别,1,,,,,,,"],
            "row 3, column 信息资源名称 (B): resource D1 is named '甲' in row 2",
        ),
        (
            ["D1,,姓名,2,,,,,,《条例》,", "D1,,姓名,3,,,,,,《条例》,"],
            "row 3, column 信息项 (C): item name of D1 is 有条件共享 in row 2 and 不予共享 here",
        ),
        (
            [
                f"D1,,姓名,2,,,{RSJ},核查,2026-01-01,《条例》,keep:1:0",
                f"D1,,姓名,2,,,{RSJ},核查,2026-01-01,《条例》,redact",
            ],
            "row 3, column 脱敏规则 (K): item name has another masking rule",
        ),
        (
            ["D1,,民族,3,,,,,,《法》,", f"D1,,民族(ethnicity),2,,,{RSJ},核查,2026-01-01,《法》,"],
            "row 3, column 信息项 (C)",
        ),
    ],
)
def test_bad_rows_are_reported_with_row_and_column(rows, expected):
    problems = _problems(_csv(*rows))
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once():
    rows = ["D1,,姓名,部分共享,,,,,,,", "D2,,xm?,1,,,,,,,", f"D3,,姓名,2,,,{RSJ},核查,明年,《条例》,"]
    problems = _problems(_csv(*rows))
    assert [p.split(":")[0] for p in problems] == [
        "row 2, column 共享类型 (D)",
        "row 3, column 信息项 (C)",
        "row 4, column 有效期至 (I)",
    ]


def test_message_lists_problems_for_the_user():
    with pytest.raises(CsvImportError) as caught:
        import_csv(_csv("D1,,姓名,x,,,,,,,"), name="清单.csv")
    assert caught.value.message.startswith("清单.csv: 1 problem(s):")
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no header row"),
        ("信息资源名称,信息项\n人口,姓名\n".encode(), "no header row with the required columns"),
        ("信息资源代码,资源代码,共享类型\nD1,D1,1\n".encode(), "both mean 'code'"),
        ((ZH_HEADER + "\n").encode(), "no data rows"),
        (codecs.BOM_UTF8 + "代码".encode("gb18030"), "not UTF-8"),
    ],
)
def test_file_level_errors(data, message):
    with pytest.raises(InputError, match=message):
        import_csv(data)


def test_unreadable_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        import_csv(tmp_path / "missing.csv")


def test_bad_provider_code_is_reported():
    with pytest.raises(CsvImportError, match="provider"):
        import_csv(_csv("D1,,姓名,1,,,,,,,"), provider_code="12345")


def test_items_by_pinyin_synonym_and_case_folded_key():
    lst = import_csv(_csv("D1,,sfzh,1,,,,,,,", "D1,,IDENTITYNUMBER,1,,,,,,,", "D1,,性别,1,,,,,,,")).list
    assert lst.dataset("D1").items == ("identityNumber", "sex")
    assert lst.dataset("D1").item_labels == (("sex", "性别"),)


def test_sharing_methods_come_from_the_code_list():
    lst = import_csv(_csv("D1,,姓名,1,,系统对接、共享交换平台,,,,,")).list
    assert lst.dataset("D1").methods == ("interface", "platform")
    problems = _problems(_csv("D1,,姓名,1,,飞鸽传书,,,,,"))
    assert problems[0].startswith(
        "row 2, column 共享方式 (F): sharing method '飞鸽传书' is not in the sharing-method code list"
    )
