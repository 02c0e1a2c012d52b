"""The shipped examples: each mapping reproduces its expected output and rejects, and ``map suggest``
places every column that has a property in the standard."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from node.cli import cli

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "adapters" / "examples"

# example folder, input file, record type, the property each column should be placed on (None: no property)
EXAMPLES: list[tuple[str, str, str, dict[str, str | None]]] = [
    ("county-household", "households.csv", "Person", {
        "xh": None, "xm": "name", "sfzh": "identityNumber", "xb": "sex", "csrq": "birthDate", "mz": "ethnicity",
        "hjdz": "householdDivision", "lxdh": None}),
    ("city-enterprise", "enterprises.xlsx", "LegalEntity", {
        "序号": None, "统一社会信用代码": "creditCode", "企业名称": "name", "法定代表人": "legalRepresentative",
        "成立日期": "establishmentDate", "登记机关": "registrationDivision", "住所": None, "注册资本（万元）": None,
        "登记状态": "entityStatus"}),
    ("provincial-insurance", "enrollments.jsonl", "SocialInsuranceEnrollment", {
        "record_no": None, "id_number": "identityNumber", "name": None, "insurance_type": "insuranceType",
        "status": "enrollmentStatus", "start_date": "startDate", "contribution_base_wan": "contributionBase",
        "employer": None, "region_code": None}),
]  # fmt: skip
IDS = [e[0] for e in EXAMPLES]
KEY = ("row", "column", "value", "property", "stage", "constraint")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def map_example(folder: str, name: str, tmp_path: Path, standard: Path, mapping: Path | None = None) -> Any:
    here = EXAMPLES_DIR / folder
    args = ["map", "--mapping", str(mapping or here / "mapping.toml"), str(here / name), "-o",
            str(tmp_path / "out.jsonl"), "--rejects", str(tmp_path / "rejects.csv"), "--report",
            str(tmp_path / "report.json"), "--standard", str(standard)]  # fmt: skip
    return CliRunner().invoke(cli, args, catch_exceptions=False)


@pytest.mark.parametrize(("folder", "name", "record_type", "placement"), EXAMPLES, ids=IDS)
def test_example_maps_to_its_expected_output(tmp_path: Path, full_standard: Path, folder: str, name: str,
                                             record_type: str, placement: dict[str, str | None]) -> None:  # fmt: skip
    result = map_example(folder, name, tmp_path, full_standard)
    assert result.exit_code == 1, result.output  # every example has rows that must be rejected
    here = EXAMPLES_DIR / folder
    assert lines(tmp_path / "out.jsonl") == lines(here / "expected.jsonl")
    got = rejects(tmp_path / "rejects.csv")
    want = rejects(here / "expected-rejects.csv")
    assert [tuple(r[k] for k in KEY) for r in got] == [tuple(r[k] for k in KEY) for r in want]
    assert all(r["reason"] and r["reason_zh"] for r in got)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["balanced"] and report["validated"]
    assert report["rows_in"] == report["rows_out"] + report["rows_rejected"]
    assert report["rows_out"] == len(lines(here / "expected.jsonl"))
    assert report["rows_rejected"] == len({r["row"] for r in want})
    assert {r["type"] for r in lines(here / "expected.jsonl")} == {record_type}


# Independent re-implementations of the check characters, so the expected files are not
# checked only against the code that produced them.
def _id_ok(n: str) -> bool:
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return len(n) == 18 and "10X98765432"[sum(int(a) * b for a, b in zip(n[:17], w, strict=True)) % 11] == n[17]


def _credit_ok(c: str) -> bool:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    w = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(alphabet.index(a) * b for a, b in zip(c[:17], w, strict=True))
    return alphabet[(31 - total % 31) % 31] == c[17]


def test_expected_records_are_really_valid(shared_data: Path) -> None:
    areas = {r["code"] for r in csv.DictReader((shared_data / "divisions" / "areas.csv").open(encoding="utf-8"))}
    cities = {r["code"] + "00" for r in csv.DictReader((shared_data / "divisions" / "cities.csv").open(encoding="utf-8"))}
    provinces = {r["code"] + "0000" for r in csv.DictReader((shared_data / "divisions" / "provinces.csv").open(encoding="utf-8"))}  # fmt: skip
    people = lines(EXAMPLES_DIR / "county-household" / "expected.jsonl")
    for p in people:
        assert _id_ok(p["identityNumber"])
        assert p["birthDate"].replace("-", "") == p["identityNumber"][6:14]
        assert p["sex"] == ("1" if int(p["identityNumber"][16]) % 2 else "2")
        assert p["householdDivision"] in areas
        assert p["id"] == "person-" + hashlib.sha256(p["identityNumber"].encode()).hexdigest()[:20]
    assert {p["identityNumber"] for p in people} >= {"13012319760704022X", "13012319680915057X"}  # upgraded
    for e in lines(EXAMPLES_DIR / "city-enterprise" / "expected.jsonl"):
        assert _credit_ok(e["creditCode"]) and e["id"] == "le-" + e["creditCode"]
        assert e["registrationDivision"] in areas | cities | provinces
    for s in lines(EXAMPLES_DIR / "provincial-insurance" / "expected.jsonl"):
        assert _id_ok(s["identityNumber"])
        material = "\x1f".join([s["identityNumber"], s["insuranceType"], s["startDate"]])
        assert s["id"] == "sie-" + hashlib.sha256(material.encode()).hexdigest()[:20]


@pytest.mark.parametrize(("folder", "name", "record_type", "placement"), EXAMPLES, ids=IDS)
def test_suggest_places_every_column_that_has_a_property(tmp_path: Path, full_standard: Path, folder: str,
                                                         name: str, record_type: str,
                                                         placement: dict[str, str | None]) -> None:  # fmt: skip
    here = EXAMPLES_DIR / folder
    suggested = tmp_path / "suggested.toml"
    runner = CliRunner()
    result = runner.invoke(cli, ["map", "suggest", str(here / name), "--type", record_type, "-o", str(suggested),
                                 "--standard", str(full_standard), "--json"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert {c["column"]: c["property"] for c in found["columns"]} == placement
    for c in found["columns"]:
        if c["property"] is not None:
            assert 0.5 <= c["confidence"] <= 1.0
        else:
            assert c["notes"] and c["notes"][0].startswith("not placed")
    text = suggested.read_text(encoding="utf-8")
    for column in placement:
        assert column in text  # placed with a confidence, or commented on
    # the suggestion is a mapping ready to run: every record it writes is one the hand-written mapping writes
    result = map_example(folder, name, tmp_path, full_standard, mapping=suggested)
    assert result.exit_code in (0, 1), result.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["balanced"]
    expected = lines(here / "expected.jsonl")
    for record in lines(tmp_path / "out.jsonl"):
        assert record in expected


def test_the_generator_reproduces_the_committed_inputs(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from adapters.examples import make_examples as gen

    gen.write_households(tmp_path / "households.csv")
    gen.write_enrollments(tmp_path / "enrollments.jsonl")
    gen.write_enterprises(tmp_path / "enterprises.xlsx")
    assert (tmp_path / "households.csv").read_bytes() == (EXAMPLES_DIR / "county-household" / "households.csv").read_bytes()
    assert (tmp_path / "enrollments.jsonl").read_bytes() == (
        EXAMPLES_DIR / "provincial-insurance" / "enrollments.jsonl").read_bytes()  # fmt: skip

    def cells(path: Path) -> list[tuple[Any, ...]]:
        wb = load_workbook(path, read_only=True)
        try:
            return [tuple(row) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)]
        finally:
            wb.close()

    assert cells(tmp_path / "enterprises.xlsx") == cells(EXAMPLES_DIR / "city-enterprise" / "enterprises.xlsx")
    assert (EXAMPLES_DIR / "county-household" / "households.csv").read_bytes().decode("gb18030").startswith("xh,xm,sfzh")
