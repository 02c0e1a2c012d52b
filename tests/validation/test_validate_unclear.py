"""Validator.unclear: validate_many without a report for each clean record."""

from __future__ import annotations

from typing import Any

import pytest

from node.validation import RecordReport, get_validator


def _person(**extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": "p1", "type": "Person", "identityNumber": "11010519491231002X", "name": "张三",
                           "sex": "2", "ethnicity": "01", "birthDate": "1949-12-31", "householdDivision": "110000"}
    rec.update(extra)
    return {k: v for k, v in rec.items() if v is not ...}


RECORDS: list[Any] = [
    _person(), _person(id="p2"), _person(sex="7"), _person(sex="1"), _person(name=...), _person(type=...),
    _person(type="Organization"), _person(type=..., **{"@type": "Person"}), _person(birthDate="1949-02-30"),
    _person(extra=1.5), _person(identityNumber="110105194912310021"), {}, [], "text", None,
]


@pytest.mark.parametrize("record_type", ["Person", "LegalEntity"])
def test_unclear_leaves_out_only_clean_records(record_type: str) -> None:
    validator = get_validator("fast")
    reports = validator.validate_many(RECORDS, record_type)
    unclear = validator.unclear(RECORDS, record_type)
    assert unclear is not None
    for i, report in enumerate(reports):
        if i in unclear:
            assert unclear[i] == report
        else:
            rid = RECORDS[i].get("id")
            assert report == RecordReport(rid if isinstance(rid, str) else None, record_type, True)
    if record_type == "Person":
        assert 0 not in unclear and 2 in unclear
    else:  # every Person is unclear as another type
        assert sorted(unclear) == list(range(len(RECORDS)))


def test_unclear_needs_a_compiled_type() -> None:
    validator = get_validator("fast")
    assert validator.unclear(RECORDS, None) is None
    assert validator.unclear(RECORDS, "NoSuchType") is None


@pytest.mark.parametrize("record_type", ["Person", "LegalEntity", None, "NoSuchType"])
def test_clean_is_true_only_for_a_clean_report(record_type: str | None) -> None:
    validator = get_validator("fast")
    for record in RECORDS:
        if validator.clean(record, record_type):
            rid = record.get("id")
            assert validator.validate(record, record_type) == RecordReport(
                rid if isinstance(rid, str) else None, record_type, True)
    assert validator.clean(RECORDS[0], "Person") and not validator.clean(RECORDS[3], "Person")  # a warning
