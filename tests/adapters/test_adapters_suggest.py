"""``map suggest``: placing columns by name (labels, synonyms, pinyin) and by values, with confidences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.mapping import compile_mapping, load_mapping
from adapters.normalise import DivisionIndex, identity_check_char
from adapters.suggest import load_vocabulary, render_toml, suggest_mapping
from adapters.suggest._suggest import _similarity
from node.errors import InputError, StandardError

FIXTURE = Path(__file__).resolve().parent / "data" / "vocab-fixture"


def ident(birth: str, seq: int) -> str:
    first17 = f"130123{birth}{seq:03d}"
    return first17 + identity_check_char(first17)


@pytest.fixture(scope="module")
def vocabulary() -> Any:
    return load_vocabulary()  # the standard's own vocabulary (ontology/vocab/*.ttl)


def csv_file(tmp_path: Path, header: list[str], rows: list[list[str]], name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def placed(s: Any) -> dict[str, str | None]:
    return {c.column: c.property for c in s.columns}


def test_fixture_vocabulary_without_domains(tmp_path: Path) -> None:
    vocab = load_vocabulary(FIXTURE)
    assert set(vocab.properties) == {"identityNumber", "name", "sex", "birthDate"}
    assert vocab.properties["sex"].code_list == "sex"
    assert vocab.properties["birthDate"].range == "date"
    assert {p.name for p in vocab.for_type("LegalEntity")} == set(vocab.properties)  # no domains: all apply
    path = csv_file(tmp_path, ["xm", "sfzh", "xb", "csrq"], [["张三", ident("19850312", 11), "男", "1985-03-12"]])
    s = suggest_mapping(str(path), "Person", vocabulary=vocab)
    assert placed(s) == {"xm": "name", "sfzh": "identityNumber", "xb": "sex", "csrq": "birthDate"}


def test_real_vocabulary_knows_types_labels_and_code_lists(vocabulary: Any) -> None:
    person = {p.name for p in vocabulary.for_type("Person")}
    assert {"identityNumber", "name", "sex", "ethnicity", "birthDate", "householdDivision"} <= person
    assert "creditCode" not in person
    assert any(text == "sfzh" for text, _ in vocabulary.properties["identityNumber"].labels)
    assert vocabulary.code_lists["sex"].concepts["1"]
    assert "division" not in vocabulary.code_lists  # the large division list is indexed elsewhere


def test_columns_placed_by_values_alone(tmp_path: Path, vocabulary: Any, division_index: DivisionIndex) -> None:
    rows = [[ident(f"19{70 + i:02d}0101", i), f"19{70 + i:02d}-01-01", "男" if i % 2 else "女",
             "河北省石家庄市正定县", f"备注{i}"] for i in range(1, 12)]  # fmt: skip
    path = csv_file(tmp_path, ["c1", "c2", "c3", "c4", "c5"], rows)
    s = suggest_mapping(str(path), "Person", vocabulary=vocabulary, divisions=division_index)
    assert placed(s) == {"c1": "identityNumber", "c2": "birthDate", "c3": "sex", "c4": "householdDivision",
                         "c5": None}  # fmt: skip
    by_column = {c.column: c for c in s.columns}
    assert by_column["c1"].confidence >= 0.9 and "GB 11643" in by_column["c1"].why
    assert by_column["c3"].crosswalk is not None and by_column["c3"].crosswalk.table == {"男": "1", "女": "2"}
    assert by_column["c5"].notes and by_column["c5"].notes[0].startswith("not placed")


def test_values_that_contradict_the_name_lower_the_confidence(tmp_path: Path, vocabulary: Any) -> None:
    path = csv_file(tmp_path, ["sfzh", "xm"], [["张三", "李四"], ["王五", "赵六"]])
    s = suggest_mapping(str(path), "Person", vocabulary=vocabulary)
    by_column = {c.column: c for c in s.columns}
    assert by_column["sfzh"].property is None  # names are not identity numbers whatever the header says
    assert by_column["xm"].property == "name"


def test_english_keys_and_units(tmp_path: Path, vocabulary: Any) -> None:
    path = tmp_path / "feed.jsonl"
    number = ident("19850312", 11)
    path.write_text(
        f'{{"idNumber": "{number}", "InsuranceType": "110", "start-date": "20200101", '
        '"contribution_base_10k": 0.8, "status": "active"}\n',
        encoding="utf-8",
    )
    s = suggest_mapping(str(path), "SocialInsuranceEnrollment", vocabulary=vocabulary)
    assert placed(s) == {"idNumber": "identityNumber", "InsuranceType": "insuranceType", "start-date": "startDate",
                         "contribution_base_10k": "contributionBase", "status": "enrollmentStatus"}  # fmt: skip
    base = next(c for c in s.columns if c.column == "contribution_base_10k")
    assert base.normalise == [{"name": "amount", "unit": "万元"}]
    insurance = next(c for c in s.columns if c.column == "InsuranceType")
    assert insurance.crosswalk is None  # the values already are the standard's codes


def test_derived_properties_and_a_row_number_id(tmp_path: Path, vocabulary: Any) -> None:
    path = csv_file(tmp_path, ["身份证号码", "姓名"], [[ident("19850312", 11), "张三"]])
    s = suggest_mapping(str(path), "Person", vocabulary=vocabulary)
    assert [(d.property, d.column) for d in s.derived] == [("birthDate", "身份证号码"), ("sex", "身份证号码")]
    assert s.id == {"hash": ["identityNumber"], "prefix": "person-"}
    path = csv_file(tmp_path, ["企业名称"], [["甲公司"]], name="2024 企业.csv")
    s = suggest_mapping(str(path), "LegalEntity", vocabulary=vocabulary)
    assert s.id == {"template": "2024-{row}"} and "EDIT THIS" in s.id_note


def test_rendered_mapping_loads_and_compiles(tmp_path: Path, vocabulary: Any, division_index: DivisionIndex) -> None:
    rows = [[ident("19850312", 11), "张三", "男", "1985年3月12日", "汉", "正定县", "x"],
            [ident("19900101", 22), "李四", "女", "", "回族", "北京市朝阳区", "y"],
            [ident("19900101", 33), "王\"五", "不详", "1990.1.1", "苗", "河北正定县", "z"]]  # fmt: skip
    path = csv_file(tmp_path, ["sfzh", "xm", "xb", "csrq", "mz", "hjdz", "note"], rows)
    s = suggest_mapping(str(path), "Person", vocabulary=vocabulary, divisions=division_index)
    text = render_toml(s)
    out = tmp_path / "m.toml"
    out.write_text(text, encoding="utf-8")
    mapping = load_mapping(out)
    assert {f.property for f in mapping.fields} == {"identityNumber", "name", "sex", "birthDate", "ethnicity",
                                                    "householdDivision"}  # fmt: skip
    compile_mapping(mapping, ["sfzh", "xm", "xb", "csrq", "mz", "hjdz", "note"], lambda: division_index)
    assert '# "不详" = ""' in text  # an unknown local value is left for the editor, commented
    assert "confidence" in text and "column 'note'" in text


@pytest.mark.parametrize(
    ("column", "label", "at_least"),
    [("sfzh", "sfzh", 1.0), ("身份证号码", "身份证号码", 1.0), ("insurance_type", "insuranceType", 1.0),
     ("企业名称", "名称", 0.7), ("start_date", "start date", 1.0), ("缴费基数(万元)", "缴费基数", 1.0),
     ("contribution_base_wan", "contributionBase", 0.7)],
)  # fmt: skip
def test_name_similarity(column: str, label: str, at_least: float) -> None:
    assert _similarity(column, label) >= at_least


def test_name_similarity_does_not_invent_matches() -> None:
    assert _similarity("xb", "xbdm") == 0.0  # short ASCII abbreviations must match exactly
    assert _similarity("备注", "名称") == 0.0
    assert _similarity("name", "enrollmentStatus") == 0.0


def test_errors(tmp_path: Path, vocabulary: Any) -> None:
    path = csv_file(tmp_path, ["a"], [["1"]])
    with pytest.raises(InputError, match="Firm"):
        suggest_mapping(str(path), "Firm", vocabulary=vocabulary)
    (tmp_path / "std" / "vocab").mkdir(parents=True)
    with pytest.raises(StandardError, match="no .ttl"):
        load_vocabulary(tmp_path / "std")
