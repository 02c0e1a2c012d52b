"""A decimal spelled NaN: both engines report it (the reference engine used to stop with
decimal.InvalidOperation inside pySHACL's sh:minInclusive, found by test_equivalence)."""

from __future__ import annotations

import pytest

from node.validation import get_validator

RECORD = {"id": "s1", "identityNumber": "110105190001010001", "insuranceType": "110", "enrollmentStatus": "1",
          "startDate": "1991-02-01", "contributionBase": "0.00"}


@pytest.mark.parametrize("value", ["NAN", "nan", "NaN", "-NaN", "sNaN", "-sNaN", "NaN12", "Infinity", "-inf", "0.00"])
def test_both_engines_agree_on_nan_and_infinite_decimals(value: str) -> None:
    record = {**RECORD, "contributionBase": value}
    fast = get_validator("fast").validate(record, "SocialInsuranceEnrollment")
    ref = get_validator("shacl").validate(record, "SocialInsuranceEnrollment")  # no exception
    assert (ref.valid, sorted((v.path, v.constraint) for v in ref.violations)) == (
        fast.valid, sorted((v.path, v.constraint) for v in fast.violations))
    if "nan" in value.lower():
        assert ("contributionBase", "MinInclusive") in {(v.path, v.constraint) for v in ref.violations}
        assert not ref.valid


def test_a_batch_with_a_nan_record_is_validated_whole() -> None:
    records = [{**RECORD, "id": f"s{i}"} for i in range(3)] + [{**RECORD, "id": "s9", "contributionBase": "NAN"}]
    reports = get_validator("shacl").validate_many(records, "SocialInsuranceEnrollment")
    assert [r.valid for r in reports] == [True, True, True, False]
