"""Hostile or broken input: a violation or a clear input error, never a crash or a hang."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InputError
from node.validation import decode_record, get_validator

PERSON = {"id": "p1", "identityNumber": "11010519491231002X", "name": "王秀英", "sex": "2", "ethnicity": "01",
          "birthDate": "1949-12-31", "householdDivision": "110000"}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"[1, 2]", "JSON object"),
        (b'"x"', "JSON object"),
        (b"null", "null"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"{" * 10_000 + b"}" * 10_000, "nested deeper"),
        (b"[" * 10_000, "nested deeper"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": ' + b"1" * 5000 + b"}", "not JSON"),
        (b'{"a": "\\ud800"}', "surrogate"),
        (b"{", "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_decode_errors_are_input_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(InputError) as exc:
        decode_record(data)
    assert fragment in exc.value.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes_never_crashes(data: bytes) -> None:
    try:
        rec = decode_record(data)
    except InputError:
        return
    assert isinstance(rec, dict)
    get_validator("fast").validate(rec, "Person")


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                    max_leaves=20))
def test_any_json_value_in_any_field_is_a_verdict(value: object) -> None:
    v = get_validator("fast")
    for key in ("name", "birthDate", "id", "unknown"):
        rep = v.validate({**PERSON, key: value}, "Person")
        assert rep.error is None
        assert isinstance(rep.valid, bool)


def test_big_string_and_nul_are_violations_not_crashes() -> None:
    v = get_validator("fast")
    rep = v.validate({**PERSON, "name": "张" * 10_000_000}, "Person")
    assert ("name", "MaxLength") in rep.keys
    rep = v.validate({**PERSON, "name": "a\x00b"}, "Person")
    assert rep.valid
    rep = v.validate({**PERSON, "sex": "\x00"}, "Person")
    assert ("sex", "In") in rep.keys


def test_non_object_and_unknown_type_are_reported_errors() -> None:
    v = get_validator("fast")
    assert v.validate([1, 2], "Person").error == "a record must be a JSON object, not an array"
    assert "unknown record type" in (v.validate({**PERSON, "type": "Dog"}).error or "")
    assert "declares type" in (v.validate({**PERSON, "type": "LegalEntity"}, "Person").error or "")
    assert "no \"type\"" in (v.validate(PERSON).error or "")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_cli_reports_bad_lines_and_goes_on(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    lines = [json.dumps(PERSON), "not json {", json.dumps({**PERSON, "id": "p2", "sex": "7"}), "[1]",
             "{" * 10_000]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = _cli("validate", str(f), "--type", "Person", "--report", "json", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["valid"] is True
    assert rows[1]["error"].startswith("not JSON")
    assert rows[2]["valid"] is False and rows[2]["violations"][0]["path"] == "sex"
    assert rows[2]["violations"][0]["message"]["zh"] and rows[2]["violations"][0]["message"]["en"]
    assert "JSON object" in rows[3]["error"]
    assert "nested deeper" in rows[4]["error"]


def test_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps([PERSON]), encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**PERSON, "birthDate": "1949-12-30"}) + "\n", encoding="utf-8")
    assert _cli("validate", str(good), "--type", "Person", cwd=tmp_path).returncode == 0
    r = _cli("validate", str(bad), "--type", "Person", cwd=tmp_path)
    assert r.returncode == 1
    assert "BirthDateMatchesId" in r.stdout
    r = _cli("validate", str(tmp_path / "missing.jsonl"), cwd=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = _cli("validate", str(good), "--type", "Dog", cwd=tmp_path)
    assert r.returncode == 2 and "unknown --type" in r.stderr
    r = _cli("validate", str(bad), "--type", "Person", "--engine", "shacl", cwd=tmp_path)
    assert r.returncode == 1 and "BirthDateMatchesId" in r.stdout
