"""The fast engine's shortcuts give what its general code gives.

``check`` (the generated common-case function: memoised value rules, inline SPARQL natives,
the id pattern matched on the id itself) must return exactly what ``full`` (every rule, in
order) returns; ``validate_many``'s inline loop must give ``validate``'s reports; the check
digit, the inline natives and the cheap valid report must equal what they replace.
"""

from __future__ import annotations

import random
import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_equivalence import records

from node.standard.model import RECORD_BASE, load_standard
from node.validation import RecordReport, get_validator
from node.validation._fast import _SAFE_ID, _id_pattern_on_value, compile_type
from node.validation._native import (
    NATIVE_FACTS,
    NATIVE_INLINE_ENV,
    NATIVE_SPARQL_INLINE,
    NATIVE_SPARQL_STR,
    _gb11643_digits_check,
    gb11643_check_char,
    gb32100_check_char,
)
from node.validation._report import valid_report

TYPES = ("Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                    HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])  # fmt: skip


@pytest.fixture(scope="module")
def compiled(full_standard: Path) -> dict[str, Any]:
    std = load_standard(full_standard)
    return {name: compile_type(std, rt) for name, rt in std.types.items()}


def _same(ct: Any, rec: dict[str, Any]) -> None:
    # twice: the second time the value memos answer
    assert ct.check(rec) == ct.full(rec), rec
    assert ct.check(rec) == ct.full(rec), rec


@pytest.mark.parametrize("record_type", TYPES)
@SETTINGS
@given(data=st.data())
def test_check_equals_full(compiled: dict[str, Any], record_type: str, data: st.DataObject) -> None:
    _same(compiled[record_type], data.draw(records(record_type)))


PERSON = {"id": "p-1", "identityNumber": "11010519491231002X", "name": "王秀英", "sex": "2", "ethnicity": "01",
          "birthDate": "1949-12-31", "householdDivision": "110105"}  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"type": "Person"},
        {"@type": "Person"},
        {"id": "a b"},
        {"id": "-x"},
        {"id": "x" * 129},
        {"id": "x\n"},
        {"birthDate": "1949-12-30"},
        {"birthDate": "1949-02-30"},
        {"birthDate": "1949-12-31\n"},
        {"sex": "1"},
        {"sex": "9"},
        {"identityNumber": "110105194912310021"},
        {"identityNumber": "11010519491231002x"},
        {"identityNumber": "110105194912310"},
        {"householdDivision": "999999"},
        {"householdDivision": "110105\n"},
        {"name": ""},
        {"name": None},
        {"ethnicity": 1},
        {"extra": "x"},
    ],
)
def test_check_equals_full_on_near_misses(compiled: dict[str, Any], change: dict[str, Any]) -> None:
    rec = {**PERSON, **change}
    _same(compiled["Person"], rec)
    if change in ({}, {"type": "Person"}, {"@type": "Person"}, {"sex": "9"}):
        assert _without_general_path(compiled["Person"], rec) == []


def test_memo_does_not_keep_failing_values(compiled: dict[str, Any]) -> None:
    ct = compiled["Person"]
    bad = {**PERSON, "birthDate": "1949-13-01"}
    assert ct.check(bad) == ct.full(bad) != []
    assert ct.check(PERSON) == []
    assert ct.check(bad) == ct.full(bad) != []


def test_validate_many_equals_validate(full_standard: Path) -> None:
    v = get_validator("fast", full_standard)
    recs: list[Any] = [PERSON, {**PERSON, "type": "Person"}, {**PERSON, "@type": "Person"},
                       {**PERSON, "type": "LegalEntity"}, {**PERSON, "type": 3}, {**PERSON, "type": None},
                       {**PERSON, "type": None, "@type": "LegalEntity"}, {**PERSON, "sex": "1"},
                       {**PERSON, "id": 5}, [1], "x", None]  # fmt: skip
    for record_type in ("Person", "LegalEntity", None, "Nope"):
        assert v.validate_many(recs, record_type) == [v.validate(r, record_type) for r in recs]


def test_valid_report_is_a_record_report() -> None:
    made = valid_report("p1", "Person")
    assert made == RecordReport("p1", "Person", True)
    assert hash(made) == hash(RecordReport("p1", "Person", True))
    assert (made.id, made.type, made.valid, made.violations, made.error) == ("p1", "Person", True, (), None)
    assert made.to_json() == RecordReport("p1", "Person", True).to_json()


def test_check_digit_by_base_13() -> None:
    rnd = random.Random(11643)
    for _ in range(20_000):
        first17 = "".join(rnd.choice(string.digits) for _ in range(17))
        assert _gb11643_digits_check(first17 + "0") == gb11643_check_char(first17)


identity_like = st.one_of(
    st.from_regex(r"\A[0-9]{17}[0-9X]\Z"),
    st.builds(lambda b: b + gb11643_check_char(b), st.from_regex(r"\A[0-9]{17}\Z")),
    st.text("0123456789X", min_size=16, max_size=19),
)
credit_like = st.one_of(
    st.builds(lambda b: b + gb32100_check_char(b), st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17)),
    st.text("0123456789ABCDEFGHJKLMNPQRTUWXYZ", min_size=17, max_size=19),
)
date_like = st.one_of(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"), st.sampled_from(["1991-01-01\n", "1-1-1"]))
value_like = st.one_of(identity_like, credit_like, date_like, st.sampled_from(["0", "1", "2", "9", "男", ""]))


@SETTINGS
@given(kind=st.sampled_from(sorted(NATIVE_SPARQL_INLINE)), v=value_like,
       others=st.fixed_dictionaries({}, optional={"identityNumber": identity_like, "validUntil": date_like}))  # fmt: skip
def test_inline_natives_equal_the_functions(kind: str, v: str, others: dict[str, str]) -> None:
    rec = {**others}
    local = {k: f"L_{k}" for k in ("identityNumber", "validUntil")}

    class Names(dict[str, Any]):
        def __missing__(self, key: str) -> Any:
            return _Ref(local.get(key) if key != "self" else "v")

    class _Ref:
        def __init__(self, var: str | None) -> None:
            self.var = var

        def __format__(self, spec: str) -> str:
            if self.var is None:
                return "None" if not spec else "False"
            if not spec:
                return self.var
            return f"({self.var} is not None and {NATIVE_FACTS[spec].format(self.var)})"

    expr = NATIVE_SPARQL_INLINE[kind].format_map(Names())
    env = {**NATIVE_INLINE_ENV, "v": v, **{var: rec.get(k) for k, var in local.items()}}
    assert bool(eval(expr, env)) == NATIVE_SPARQL_STR[kind](v, rec), (kind, v, rec)  # noqa: S307


ids = st.one_of(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._~-]{0,130}\Z"), st.text(max_size=10),
                st.sampled_from(["x\n", "-x", "", "a/b", "a%20b", "é"]))  # fmt: skip


@SETTINGS
@given(v=ids)
def test_id_pattern_on_the_id_itself(v: str) -> None:
    pattern = r"^https://w3id\.org/shulian/record/[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
    on_value = _id_pattern_on_value(pattern)
    assert on_value is not None
    expected = _SAFE_ID.match(v) is not None and re.search(pattern, RECORD_BASE + v) is not None
    assert (on_value.match(v) is not None) == expected


@pytest.mark.parametrize(
    "rest", [r"\bx", r"(?<=/)x", r"^x", r"(a)\1", r"(?i)x", r"\Ax", r"(?P<n>a)(?P=n)"]
)
def test_id_pattern_that_could_see_the_base_is_not_moved(rest: str) -> None:
    assert _id_pattern_on_value("^" + re.escape(RECORD_BASE) + rest) is None
    assert _id_pattern_on_value("^https://other/" + "x") is None


def _as_columns(recs: list[dict[str, Any]], keys: list[str]) -> dict[str, list[Any]]:
    return {k: [r.get(k) for r in recs] for k in keys}


@pytest.mark.parametrize("record_type", TYPES)
@SETTINGS
@given(data=st.data())
def test_unclear_rows_are_the_records_check_does_not_pass(full_standard: Path, compiled: dict[str, Any],
                                                          record_type: str, data: st.DataObject) -> None:  # fmt: skip
    """Column by column: the records ``check`` does not pass (exactly those, when every value is a
    string; a value of another type is always named), and every other record's report is a
    plain "valid"."""
    v = get_validator("fast", full_standard)
    recs = data.draw(st.lists(records(record_type), min_size=1, max_size=12))
    keys = sorted({"id", *compiled[record_type].rt.keys})
    # a record's keys, as columns hold them: None for a missing key (so no null values, no other keys)
    recs = [{k: x for k, x in r.items() if k in keys and x is not None} for r in recs]
    unclear = v.unclear_rows(record_type, _as_columns(recs, keys))
    assert unclear is not None
    strings = [all(x.__class__ is str for x in r.values()) for r in recs]
    assert [i for i in unclear if strings[i]] == [i for i, r in enumerate(recs) if strings[i] and compiled[record_type].check(r)]
    assert {i for i, r in enumerate(recs) if compiled[record_type].check(r)} <= set(unclear)
    for i, r in enumerate(recs):
        if i not in unclear:
            assert v.validate(r, record_type) == RecordReport(r["id"], record_type, True)


def test_unclear_rows_declines_what_it_cannot_check(full_standard: Path) -> None:
    v = get_validator("fast", full_standard)
    cols = _as_columns([PERSON, {**PERSON, "sex": "1"}], sorted(PERSON))
    assert v.unclear_rows("Person", cols) == [1]
    assert v.unclear_rows("Person", {**cols, "type": ["Person", "Person"]}) is None  # no type column
    assert v.unclear_rows("Person", {**cols, "nickname": ["a", "b"]}) is None  # a key the type does not have
    assert v.unclear_rows("Person", {**cols, "name": ["a"]}) is None  # columns of different lengths
    assert v.unclear_rows("Person", {k: c for k, c in cols.items() if k != "id"}) is None  # no id column
    assert v.unclear_rows("Nope", cols) is None
    assert get_validator("shacl", full_standard).unclear_rows("Person", cols) is None
    assert v.unclear_rows("Person", {"id": [], "name": []}) == []


def test_an_integer_amount_takes_the_string_path(full_standard: Path, compiled: dict[str, Any]) -> None:
    """An integer in a key with a coerced datatype is the literal of its digits: ``check`` settles it
    (no general evaluation), with the reference engine's verdict."""
    idn = "11010519491231002X"
    ct = compiled["SocialInsuranceEnrollment"]
    base = {"id": "s1", "identityNumber": idn, "insuranceType": "110", "enrollmentStatus": "1",
            "startDate": "2000-01-01"}  # fmt: skip
    for amount, valid in ((8000, True), ("8000", True), (0, True), (-1, False), (10**30, None), (True, None)):
        rec = {**base, "contributionBase": amount}
        _same(ct, rec)
        fast = get_validator("fast", full_standard).validate(rec, "SocialInsuranceEnrollment")
        ref = get_validator("shacl", full_standard).validate(rec, "SocialInsuranceEnrollment")
        assert (fast.valid, fast.keys) == (ref.valid, ref.keys), amount
        if valid is not None:
            assert fast.valid is valid
        if valid:
            assert _without_general_path(ct, rec) == []


def _without_general_path(ct: Any, rec: dict[str, Any]) -> list[Any]:
    """``ct.check(rec)``, failing if it asks the general evaluator."""
    namespace = ct.check.__globals__
    general = namespace["GEN"]

    def refuse(record: dict[str, Any]) -> list[Any]:
        raise AssertionError(f"the general path was asked about {record}")

    namespace["GEN"] = refuse
    try:
        result: list[Any] = ct.check(rec)
    finally:
        namespace["GEN"] = general
    return result


extra_keys = st.sampled_from(["foo", "xm", "identityNumber ", "@id", "a b", "", "%41", "名字", "creditCode", "holder"])
extra_values = st.one_of(
    st.none(), st.just([]), st.just([None]), st.text(max_size=3), st.integers(-(10**20), 10**20), st.floats(),
    st.booleans(), st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=2)), max_size=3),
    st.just({"a": 1}), st.just([["x"]]),
)  # fmt: skip


@pytest.mark.parametrize("record_type", TYPES)
@SETTINGS
@given(data=st.data())
def test_unknown_keys_are_the_general_evaluators_verdict(full_standard: Path, compiled: dict[str, Any],
                                                         record_type: str, data: st.DataObject) -> None:  # fmt: skip
    """A record with keys its type does not have: the same results as the general evaluator
    (which has the reference engine's semantics), whether ``full`` settles it or hands it over."""
    from node.validation._generic import GenericEvaluator

    std = load_standard(full_standard)
    general = GenericEvaluator(std.types[record_type], std.keys, std.coercions)
    rec = data.draw(records(record_type))
    for key, value in data.draw(st.lists(st.tuples(extra_keys, extra_values), min_size=1, max_size=3)):
        rec[key] = value
    ct = compiled[record_type]
    assert sorted(map(repr, ct.full(rec))) == sorted(map(repr, general.evaluate(rec))), rec
    assert ct.check(rec) == ct.full(rec)


def test_unknown_keys_with_plain_values_skip_the_general_evaluator(full_standard: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from node.validation import _fast
    from node.validation._generic import GenericEvaluator

    calls: list[dict[str, Any]] = []

    class Counting(GenericEvaluator):
        def evaluate(self, record: dict[str, Any]) -> list[Any]:
            calls.append(record)
            return super().evaluate(record)

    monkeypatch.setattr(_fast, "GenericEvaluator", Counting)
    std = load_standard(full_standard)
    ct = compile_type(std, std.types["Person"])
    general = GenericEvaluator(std.types["Person"], std.keys, std.coercions)
    rec = {**PERSON, "nickname": "x", "note": None, "tags": [], "n": [1, None]}
    found = ct.check(rec)
    assert not calls
    assert {(r.kind, r.path) for r in found} == {("Closed", "nickname"), ("Closed", "n")}
    assert sorted(map(repr, found)) == sorted(map(repr, general.evaluate(rec)))
    ct.check({**rec, "creditCode": "x"})  # a key another type declares: the general path
    assert calls
