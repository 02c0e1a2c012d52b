"""The fast engine and the reference engine agree on generated records.

Records are generated around valid ones: fields dropped, duplicated, replaced
by other JSON types or by near-miss strings, unknown keys added. For each batch
the reference engine (pySHACL) runs once over all records; every record must
get the same verdict and the same set of (path, constraint) pairs.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.validation import get_validator
from node.validation._native import gb11643_check_char, gb32100_check_char

DIVISIONS = ["110105", "360426", "120103", "110000", "350203", "110108", "999999", "1101"]


@st.composite
def identity_numbers(draw: Any) -> str:
    div = draw(st.sampled_from(DIVISIONS[:6]))
    year = draw(st.integers(1900, 2020))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 31))
    seq = draw(st.integers(0, 999))
    body = f"{div}{year:04d}{month:02d}{day:02d}{seq:03d}"[:17].ljust(17, "0")
    good = gb11643_check_char(body)
    check = draw(st.sampled_from([good, good, good, "X", "0", "5"]))
    return body + check


@st.composite
def credit_codes(draw: Any) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    head = draw(st.text(alphabet, min_size=2, max_size=2))
    div = draw(st.sampled_from(DIVISIONS[:6]))
    org = draw(st.text(alphabet, min_size=9, max_size=9))
    body = head + div + org
    good = gb32100_check_char(body)
    return body + draw(st.sampled_from([good, good, "0", "Y"]))


dates = st.one_of(
    st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
    # Not generated: dates with a time zone ("1991-01-01Z"). The reference engine (pySHACL over an
    # oxigraph store) does not report the sh:pattern violation for them while the fast engine
    # does; see the note in node/validation/_shacl.py. The fast engine's verdict is the one the
    # standard intends (the pattern forbids a zone).
    st.sampled_from(["1991-02-30", "19910101", "1991-1-1", "2020-13-01", "1991-01-01\n", " 1991-01-01",
                     "-1991-01-01", "0000-01-01", "99999-01-01"]),
)
# Floats with a fraction (or beyond 1e21) are not drawn: JSON-LD writes them in the double's
# exponent form ("5.0E-1"), which oxigraph turns into its canonical form ("0.5") before pySHACL
# checks sh:pattern and lengths, so the engines see different strings: the divergence noted
# below under amounts. Whole floats are written as integers ("3") by both.
weird = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**20), st.integers(-10**15, 10**15).map(float),
    st.just({"a": 1}), st.lists(st.sampled_from(["1", "2", 3, None]), max_size=3), st.just([]),
    st.text(max_size=5), st.just("\n"), st.just("X" * 60),
)
amounts = st.one_of(
    st.decimals(min_value=-100, max_value=10**9, places=2, allow_nan=False).map(str),
    # Not generated: valid decimals in a non-canonical lexical form ("1e5", "+3", " 5", ".5"); the
    # reference engine checks sh:pattern against their canonical form, the fast engine against the
    # form sent (see node/validation/_shacl.py). "NaN" makes pySHACL's comparison raise.
    st.integers(-5, 10**13), st.sampled_from(["8000.00", "-1.00", "6,500", "abc", "007", "5.10"]),
)


def _base(draw: Any, record_type: str) -> dict[str, Any]:
    if record_type == "Person":
        idn = draw(identity_numbers())
        bd = f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}"
        return {
            "id": draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._~-]{0,10}\Z")),
            "identityNumber": idn,
            "name": draw(st.text(min_size=0, max_size=55)),
            "sex": draw(st.sampled_from(["0", "1", "2", "9", "3", "男"])),
            "ethnicity": draw(st.sampled_from(["01", "02", "56", "97", "98", "57", "1"])),
            "birthDate": draw(st.one_of(st.just(bd), dates)),
            "householdDivision": draw(st.sampled_from(DIVISIONS)),
        }
    if record_type == "LegalEntity":
        return {
            "id": "le1", "creditCode": draw(credit_codes()), "name": draw(st.text(max_size=5)),
            "legalRepresentative": draw(st.text(min_size=1, max_size=5)), "establishmentDate": draw(dates),
            "registrationDivision": draw(st.sampled_from(DIVISIONS)), "entityStatus": draw(st.sampled_from("12349x")),
        }
    if record_type == "SocialInsuranceEnrollment":
        return {
            "id": "s1", "identityNumber": draw(identity_numbers()),
            "insuranceType": draw(st.sampled_from(["110", "310", "999"])),
            "enrollmentStatus": draw(st.sampled_from(["1", "2", "3", "4"])), "startDate": draw(dates),
            "contributionBase": draw(amounts),
        }
    holder = draw(st.one_of(identity_numbers(), credit_codes(), st.text(string.ascii_uppercase, max_size=20)))
    return {
        "id": "e1", "licenseType": "营业执照", "licenseNumber": draw(st.text(min_size=0, max_size=3)),
        "holder": holder, "issuingDepartment": "某局", "issuingDepartmentCode": draw(credit_codes()),
        "validFrom": draw(dates), "validUntil": draw(dates),
    }


@st.composite
def records(draw: Any, record_type: str) -> dict[str, Any]:
    rec = _base(draw, record_type)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "weird", "list", "unknown", "id"]))
        key = draw(st.sampled_from(sorted(rec)))
        if action == "drop":
            rec.pop(key, None)
        elif action == "weird":
            rec[key] = draw(weird)
        elif action == "list" and key in rec:
            rec[key] = [rec[key], draw(weird)]
        elif action == "unknown":
            rec[draw(st.sampled_from(["foo", "xm", "identityNumber ", "creditCode", "@id", "a b", ""]))] = "x"
        else:
            rec["id"] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=140)))
    return rec


def _agree(std: Path, record_type: str, recs: list[dict[str, Any]]) -> None:
    fast = get_validator("fast", std).validate_many(recs, record_type)
    ref = get_validator("shacl", std).validate_many(recs, record_type)
    for rec, a, b in zip(recs, fast, ref, strict=True):
        assert (a.valid, a.keys) == (b.valid, b.keys), rec


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                    HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


@SETTINGS
@given(st.lists(records("Person"), min_size=1, max_size=10))
def test_person(full_standard: Path, recs: list[dict[str, Any]]) -> None:
    _agree(full_standard, "Person", recs)


@SETTINGS
@given(st.lists(records("LegalEntity"), min_size=1, max_size=10))
def test_legal_entity(full_standard: Path, recs: list[dict[str, Any]]) -> None:
    _agree(full_standard, "LegalEntity", recs)


@SETTINGS
@given(st.lists(records("SocialInsuranceEnrollment"), min_size=1, max_size=10))
def test_social_insurance(full_standard: Path, recs: list[dict[str, Any]]) -> None:
    _agree(full_standard, "SocialInsuranceEnrollment", recs)


@SETTINGS
@given(st.lists(records("ElectronicLicense"), min_size=1, max_size=10))
def test_electronic_license(full_standard: Path, recs: list[dict[str, Any]]) -> None:
    _agree(full_standard, "ElectronicLicense", recs)
