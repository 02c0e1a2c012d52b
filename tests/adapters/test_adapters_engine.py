"""The mapping run: field mappings, ids, rejects with reasons, validation, and rows that always add up."""

from __future__ import annotations

import csv
import hashlib
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.engine import REJECT_COLUMNS, MapReport, run_mapping
from adapters.mapping import load_mapping, parse_mapping
from node.errors import InputError


def read_out(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == REJECT_COLUMNS
        return list(reader)


def run(tmp_path: Path, mapping: Any, text: str, name: str = "in.csv", **kw: Any) -> tuple[MapReport, list[dict[str, Any]], list[dict[str, str]]]:  # fmt: skip
    src = tmp_path / name
    src.write_text(text, encoding="utf-8")
    if isinstance(mapping, dict):
        mapping = parse_mapping(mapping, base_dir=tmp_path)
    report = run_mapping(mapping, str(src), tmp_path / "out.jsonl", tmp_path / "rejects.csv", **kw)
    return report, read_out(tmp_path / "out.jsonl"), read_rejects(tmp_path / "rejects.csv")


def le(fields: dict[str, Any], id_spec: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"target": {"type": "LegalEntity"}, "id": id_spec or {"template": "le-{row}"}, "fields": fields, **extra}


def test_concat_split_constant_default_required(tmp_path: Path) -> None:
    mapping = le({
        "name": {"columns": ["a", "b"], "join": "·"},
        "legalRepresentative": {"column": "c", "split": "/", "index": -1},
        "entityStatus": {"value": "1"},
        "registrationDivision": {"column": "d", "default": "110000"},
        "creditCode": {"column": "e", "required": True, "normalise": ["credit_code"]},
    })  # fmt: skip
    report, out, rejects = run(tmp_path, mapping, "a,b,c,d,e\n甲, 乙 ,x/张三,,91110000600037341l\n,丙,y,110105,\n")
    assert out == [{"id": "le-2", "type": "LegalEntity", "name": "甲·乙", "legalRepresentative": "张三",
                    "entityStatus": "1", "registrationDivision": "110000", "creditCode": "91110000600037341L"}]  # fmt: skip
    assert [(r["row"], r["column"], r["property"], r["constraint"]) for r in rejects] == [
        ("3", "e", "creditCode", "missing")
    ]
    assert (report.rows_in, report.rows_out, report.rows_rejected) == (2, 1, 1)
    assert not report.validated


def test_fallback_null_values_and_regex(tmp_path: Path) -> None:
    mapping = {
        "source": {"null_values": ["无", "NULL"]},
        "target": {"type": "Person", "include_type": False},
        "id": {"template": "p-{row}"},
        "fields": {
            "identityNumber": {"column": "sfzh", "normalise": ["identity_number"]},
            "birthDate": {"column": "csrq", "normalise": ["date"],
                          "fallback": {"column": "sfzh", "normalise": ["identity_number", "identity_birth_date"]}},
            "name": {"column": "xm", "normalise": [{"name": "regex", "pattern": r"\(.*\)$", "replace": ""}]},
        },
    }  # fmt: skip
    text = "sfzh,csrq,xm\n110105491231002,无,张三(曾用名)\n11010519491231002X,1950.1.1,NULL\n"
    _, out, rejects = run(tmp_path, mapping, text)
    assert out == [
        {"id": "p-2", "identityNumber": "11010519491231002X", "birthDate": "1949-12-31", "name": "张三"},
        {"id": "p-3", "identityNumber": "11010519491231002X", "birthDate": "1950-01-01"},
    ]
    assert rejects == []


def test_every_broken_field_of_a_row_is_reported(tmp_path: Path) -> None:
    mapping = le({
        "establishmentDate": {"column": "d", "normalise": ["date"]},
        "entityStatus": {"column": "s", "crosswalk": {"map": {"存续": "1"}}},
        "creditCode": {"column": "c", "normalise": ["credit_code"]},
    })  # fmt: skip
    report, out, rejects = run(tmp_path, mapping, "d,s,c\n2020-02-30,歇业,123\n")
    assert out == []
    assert [(r["row"], r["column"], r["value"], r["stage"], r["constraint"]) for r in rejects] == [
        ("2", "d", "2020-02-30", "mapping", "date"),
        ("2", "s", "歇业", "mapping", "crosswalk"),
        ("2", "c", "123", "mapping", "credit-code"),
    ]
    assert all(r["reason"] and r["reason_zh"] for r in rejects)
    assert report.rows_rejected == 1 and report.reject_entries == 3
    assert report.to_dict()["rejects_by_column"] == {"c": 1, "d": 1, "s": 1}


def test_ids_by_property_hash_and_template(tmp_path: Path) -> None:
    fields = {"creditCode": {"column": "c"}, "name": {"column": "n"}}
    text = "c,n\n91110000600037341L,甲\n91110108551385082Q,乙\n"
    _, out, _ = run(tmp_path, le(fields, {"property": "creditCode", "prefix": "le-"}), text)
    assert [r["id"] for r in out] == ["le-91110000600037341L", "le-91110108551385082Q"]
    _, out, _ = run(tmp_path, le(fields, {"hash": ["creditCode", "name"], "length": 16}), text)
    expected = hashlib.sha256("91110000600037341L\x1f甲".encode()).hexdigest()[:16]
    assert out[0]["id"] == expected
    _, out, _ = run(tmp_path, le(fields, {"hash": ["creditCode"], "salt": "s", "prefix": "x."}), text)
    assert out[0]["id"] == "x." + hashlib.sha256(b"s91110000600037341L").hexdigest()[:20]
    _, out, _ = run(tmp_path, le(fields, {"template": "{creditCode}.{row}"}), text)
    assert [r["id"] for r in out] == ["91110000600037341L.2", "91110108551385082Q.3"]


def test_bad_and_duplicate_ids_are_rejects(tmp_path: Path) -> None:
    fields = {"name": {"column": "n"}, "creditCode": {"column": "c"}}
    text = "n,c\n甲,A1\n乙,A1\n丙,\n丁,B 2\n"
    _, out, rejects = run(tmp_path, le(fields, {"template": "le-{creditCode}"}), text)
    assert [r["id"] for r in out] == ["le-A1"]
    assert [(r["row"], r["stage"], r["constraint"], r["column"]) for r in rejects] == [
        ("3", "id", "duplicate-id", "c"),
        ("4", "id", "id", "c"),
        ("5", "id", "id", "c"),
    ]
    assert "row 2" in rejects[0]["reason"]
    _, out, rejects = run(tmp_path, le(fields, {"template": "le-{creditCode}", "duplicates": "keep"}), text)
    assert [r["id"] for r in out] == ["le-A1", "le-A1"]


def test_jsonl_values_and_structures(tmp_path: Path) -> None:
    mapping = {
        "target": {"type": "SocialInsuranceEnrollment"},
        "id": {"template": "sie-{row}"},
        "fields": {
            "contributionBase": {"column": "base", "normalise": [{"name": "amount", "unit": "万元"}]},
            "enrollmentStatus": {"column": "st"},
        },
    }
    text = '{"base": 0.8, "st": 1}\n{"base": {"v": 1}, "st": true}\n{"st": "2"}\n'
    report, out, rejects = run(tmp_path, mapping, text, "in.jsonl")
    assert out == [
        {"id": "sie-1", "type": "SocialInsuranceEnrollment", "contributionBase": "8000.00", "enrollmentStatus": "1"},
        {"id": "sie-3", "type": "SocialInsuranceEnrollment", "enrollmentStatus": "2"},
    ]
    assert [(r["row"], r["column"], r["constraint"]) for r in rejects] == [("2", "base", "structure")]
    assert report.source["format"] == "jsonl"


def test_validation_rejects_carry_the_standards_reasons(tmp_path: Path, validator: Any,
                                                        divisions_from_standard: Any) -> None:  # fmt: skip
    mapping = {
        "target": {"type": "Person"},
        "id": {"template": "p-{row}"},
        "fields": {
            "identityNumber": {"column": "sfzh", "normalise": ["identity_number"]},
            "name": {"column": "xm"},
            "sex": {"column": "xb", "crosswalk": {"map": {"男": "1", "女": "2"}}},
            "ethnicity": {"value": "01"},
            "birthDate": {"column": "csrq", "normalise": ["date"],
                          "fallback": {"column": "sfzh", "normalise": ["identity_number", "identity_birth_date"]}},
            "householdDivision": {"column": "hjdz", "normalise": ["division"]},
        },
    }  # fmt: skip
    ok = "360426199101010071"
    bad_check = ok[:-1] + "2"
    text = (
        "sfzh,xm,xb,csrq,hjdz\n"
        f"{ok},张三,男,1991-01-01,北京市朝阳区\n"
        f"{bad_check},李四,男,,北京市朝阳区\n"
        f"{ok[:6]}910101007,王五,男,1991/1/2,北京市朝阳区\n"  # 15 digits upgraded; birth date differs
        f"{ok},,男,1991-01-01,北京市朝阳区\n"
    )
    report, out, rejects = run(tmp_path, mapping, text, validator=validator, divisions=divisions_from_standard)
    assert [r["id"] for r in out] == ["p-2"]
    assert out[0]["householdDivision"] == "110105"
    by_row = {(r["row"], r["property"]): r for r in rejects}
    assert set(by_row) == {("3", "identityNumber"), ("4", "birthDate"), ("5", "name")}
    assert all(r["stage"] == "validation" for r in rejects)
    check = by_row[("3", "identityNumber")]
    assert check["column"] == "sfzh" and check["value"] == bad_check and check["reason_zh"]
    birth = by_row[("4", "birthDate")]
    assert birth["column"] == "csrq" and birth["value"] == "1991/1/2" and "1991-01-02" in birth["reason"]
    assert report.validated and report.balanced and report.rows_rejected == 3


def test_rejects_stay_in_row_order_when_validating(tmp_path: Path, validator: Any) -> None:
    mapping = {"target": {"type": "LegalEntity"}, "id": {"template": "le-{row}"},
               "fields": {"creditCode": {"column": "c", "normalise": ["credit_code"]}}}  # fmt: skip
    text = "c\n91110000600037341L\nshort\n91110000600037341M\nshort\n"
    _, _, rejects = run(tmp_path, mapping, text, validator=validator)
    assert [r["row"] for r in rejects] == sorted((r["row"] for r in rejects), key=int)
    assert {r["stage"] for r in rejects} == {"mapping", "validation"}


def test_an_input_error_leaves_no_half_written_files(tmp_path: Path) -> None:
    mapping = le({"name": {"column": "n"}}, source={"encoding": "utf-8"})
    src = tmp_path / "in.csv"
    src.write_bytes(b"n\n" + b"ok\n" * 5000 + "坏".encode("gb18030") + b"\n")
    with pytest.raises(InputError, match="line 5002"):
        run_mapping(parse_mapping(mapping), str(src), tmp_path / "out.jsonl", tmp_path / "rejects.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_progress_bar_renders_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = le({"name": {"column": "n"}})
    report, out, _ = run(tmp_path, mapping, "n\n" + "x\n" * 9000, progress=True)
    assert report.rows_out == 9000 and len(out) == 9000
    assert "in.csv" in capsys.readouterr().err


cells = st.sampled_from(["91110000600037341L", "91110108551385082q", "bad", "", "  ", "2020-01-02",
                         "2020年2月30日", "存续", "注销", "停业", "x,y", '"'])  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(cells, cells, cells), min_size=0, max_size=30), st.booleans())
def test_every_row_ends_in_exactly_one_place(tmp_path: Path, rows: list[tuple[str, str, str]], ragged: bool) -> None:
    mapping = le({
        "creditCode": {"column": "c", "normalise": ["credit_code"], "required": True},
        "establishmentDate": {"column": "d", "normalise": ["date"]},
        "entityStatus": {"column": "s", "crosswalk": {"map": {"存续": "1", "注销": "3"}}},
    })  # fmt: skip
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["c", "d", "s"])
        for i, row in enumerate(rows):
            w.writerow([*row, "extra"] if ragged and i % 7 == 3 else row)
    report = run_mapping(parse_mapping(mapping), str(src), tmp_path / "out.jsonl", tmp_path / "rejects.csv")
    out_rows = [int(r["id"].split("-")[1]) for r in read_out(tmp_path / "out.jsonl")]
    rejected_rows = {int(r["row"]) for r in read_rejects(tmp_path / "rejects.csv")}
    assert report.rows_in == len(rows)
    assert report.rows_in == report.rows_out + report.rows_rejected
    assert len(out_rows) == report.rows_out and len(rejected_rows) == report.rows_rejected
    assert not set(out_rows) & rejected_rows
    assert set(out_rows) | rejected_rows == set(range(2, len(rows) + 2))


def test_mapping_loaded_from_a_file_runs(tmp_path: Path, write_mapping: Callable[..., Path]) -> None:
    path = write_mapping('[target]\ntype = "LegalEntity"\n[id]\ntemplate = "le-{name}"\n[fields.name]\ncolumn = "n"\n')
    report, out, _ = run(tmp_path, load_mapping(path), "n\n" + "\n".join(string.ascii_lowercase) + "\n")
    assert report.exit_code == 0 and len(out) == 26 and report.mapping == str(path)


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_validation_in_worker_processes_gives_the_same_files(tmp_path: Path, validator: Any, full_standard: Path,
                                                             workers: int) -> None:  # fmt: skip
    """Many invalid records (large result frames, more than a pipe holds) and some valid ones."""
    from adapters.normalise import identity_check_char

    mapping = parse_mapping({
        "target": {"type": "Person"},
        "id": {"template": "p-{row}"},
        "fields": {
            "identityNumber": {"column": "sfzh", "normalise": ["identity_number"]},
            "name": {"column": "xm"}, "sex": {"value": "1"}, "ethnicity": {"value": "01"},
            "birthDate": {"column": "sfzh", "normalise": ["identity_number", "identity_birth_date"]},
            "householdDivision": {"value": "110105"},
        },
    })  # fmt: skip
    lines = ["sfzh,xm"]
    for i in range(5000):
        first17 = f"11010519{50 + i % 40:02d}0101{(2 * i + 1) % 1000:03d}"
        good = first17 + identity_check_char(first17)
        lines.append(f"{good if i % 3 == 0 else good[:-1] + ('0' if good[-1] != '0' else '1')},名{i}")
    src = tmp_path / "in.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outputs = {}
    for jobs in (0, workers):
        out, rej = tmp_path / f"out{jobs}.jsonl", tmp_path / f"rej{jobs}.csv"
        report = run_mapping(mapping, str(src), out, rej, validator=validator, workers=jobs, standard_dir=full_standard)
        outputs[jobs] = (out.read_bytes(), rej.read_bytes(), report.rows_out, report.rows_rejected)
    assert outputs[0] == outputs[workers]
    assert outputs[0][2] == 1667 and outputs[0][3] == 3333


@pytest.mark.integration
def test_a_worker_that_cannot_load_the_standard_is_a_named_error(tmp_path: Path, validator: Any) -> None:
    from node.errors import StandardError

    src = tmp_path / "in.csv"
    src.write_text("n\nx\n", encoding="utf-8")
    broken = tmp_path / "not-a-standard"
    broken.mkdir()
    with pytest.raises(StandardError, match="validation worker"):
        run_mapping(parse_mapping(le({"name": {"column": "n"}})), str(src), tmp_path / "o.jsonl", tmp_path / "r.csv",
                    validator=validator, workers=1, standard_dir=broken)  # fmt: skip
    assert not (tmp_path / "o.jsonl").exists()


def test_a_sql_source_maps_like_a_file(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "register.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE qy (dm TEXT, mc TEXT, clrq TEXT, zt INTEGER)")
        conn.executemany("INSERT INTO qy VALUES (?, ?, ?, ?)", [
            ("91110000600037341L", "甲公司", "2015-03-01", 1), ("91110108551385082Q", "乙公司", "20180705", 3),
            ("91110108551385082Q", "乙公司", "20180705", 3), (None, "丙", "2019/1/2", 9)])  # fmt: skip
    conn.close()
    mapping = {
        "source": {"reader": "sql", "query": "SELECT dm, mc, clrq, zt FROM qy ORDER BY rowid"},
        "target": {"type": "LegalEntity"},
        "id": {"template": "le-{creditCode}"},
        "fields": {
            "creditCode": {"column": "dm", "normalise": ["credit_code"], "required": True},
            "name": {"column": "mc"},
            "establishmentDate": {"column": "clrq", "normalise": ["date"]},
            "entityStatus": {"column": "zt", "crosswalk": {"map": {"1": "1", "3": "3"}}},
        },
    }
    report = run_mapping(parse_mapping(mapping), str(db), tmp_path / "o.jsonl", tmp_path / "r.csv")
    out = read_out(tmp_path / "o.jsonl")
    assert [r["id"] for r in out] == ["le-91110000600037341L", "le-91110108551385082Q"]
    assert out[1]["establishmentDate"] == "2018-07-05" and out[1]["entityStatus"] == "3"
    rejects = read_rejects(tmp_path / "r.csv")
    assert [(r["row"], r["constraint"]) for r in rejects] == [("3", "duplicate-id"), ("4", "missing"), ("4", "crosswalk")]
    assert report.source["format"] == "sql" and report.balanced and report.rows_in == 4


def test_no_worker_by_default_for_a_validator_that_checks_columns(tmp_path: Path, validator: Any) -> None:
    """The fast validator checks mapped columns in-process for less than feeding a worker costs."""
    from adapters.engine import auto_workers

    big = tmp_path / "big.csv"
    with big.open("wb") as fh:
        fh.truncate(64 << 20)
    assert auto_workers(str(big), validator) == 0
    assert auto_workers(str(tmp_path / "missing.csv")) == 0
