"""The decision table: every rule of decide(), and what Decision.apply delivers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import ConfigError, PolicyDenied
from node.policy import (
    REDACTED,
    DatasetPolicy,
    Grant,
    MaskRule,
    ReasonCode,
    ResponsibilityList,
    SharingType,
    decide,
)
from node.policy.masking import consumer_hash_key

from .conftest import KEY, MEMBERS, MZJ, NOW, OUTSIDER, PERSON, RSJ, YBJ


def _decide(policy, dataset, consumer, purpose="社会保险参保资格审核", now=NOW, items=None, **kw):
    return decide(policy, dataset, consumer, purpose, now, items, federation_members=MEMBERS, **kw)


# ------------------------------------------------------------------ the table

TABLE = [
    # dataset, consumer, purpose, requested items, now, allowed, reason
    ("103/000001", YBJ, None, None, NOW, True, ReasonCode.UNCONDITIONAL),
    ("103/000001", OUTSIDER, None, None, NOW, False, ReasonCode.NOT_A_MEMBER),
    ("102/000001", RSJ, "任意用途", None, NOW, True, ReasonCode.UNCONDITIONAL),
    ("102/000001", RSJ, None, ["registrationDivision"], NOW, False, ReasonCode.ITEM_NOT_GRANTED),
    ("101/000001", RSJ, "社会保险参保资格审核", None, NOW, True, ReasonCode.GRANTED),
    ("101/000001", RSJ, "养老金发放", ["name"], NOW, True, ReasonCode.GRANTED),
    ("101/000001", YBJ, "社会保险参保资格审核", None, NOW, False, ReasonCode.NO_GRANT),
    ("101/000001", OUTSIDER, "社会保险参保资格审核", None, NOW, False, ReasonCode.NOT_A_MEMBER),
    ("101/000001", RSJ, "商业营销", None, NOW, False, ReasonCode.PURPOSE_NOT_COVERED),
    ("101/000001", RSJ, None, None, NOW, False, ReasonCode.PURPOSE_NOT_COVERED),
    ("101/000001", RSJ, "", None, NOW, False, ReasonCode.PURPOSE_NOT_COVERED),
    ("101/000001", MZJ, "最低生活保障资格核查", None, NOW, False, ReasonCode.GRANT_EXPIRED),
    (
        "101/000001",
        RSJ,
        "社会保险参保资格审核",
        ["identityNumber", "sex"],
        NOW,
        False,
        ReasonCode.ITEM_NOT_GRANTED,
    ),
    ("101/000001", RSJ, "社会保险参保资格审核", ["ethnicity"], NOW, False, ReasonCode.ITEM_NOT_GRANTED),
    ("105/000009", RSJ, "社会保险参保资格审核", None, NOW, False, ReasonCode.NOT_SHARED),
    ("999/000001", RSJ, "社会保险参保资格审核", None, NOW, False, ReasonCode.UNKNOWN_DATASET),
]


@pytest.mark.parametrize(("dataset", "consumer", "purpose", "items", "now", "allowed", "reason"), TABLE)
def test_decision_table(policy, dataset, consumer, purpose, items, now, allowed, reason):
    d = decide(policy, dataset, consumer, purpose, now, items, federation_members=MEMBERS)
    assert (d.allowed, d.reason_code) == (allowed, reason)
    assert d.reason_code.allowed is allowed
    assert d.dataset_id == dataset and d.consumer_code == consumer


def test_not_shared_carries_its_basis(policy):
    d = _decide(policy, "105/000009", RSJ)
    assert d.basis == "《保守国家秘密法》"
    err = d.error()
    assert isinstance(err, PolicyDenied)
    assert err.reason == "NOT_SHARED"
    assert "《保守国家秘密法》" in err.message
    with pytest.raises(PolicyDenied) as caught:
        d.raise_if_denied()
    assert caught.value.reason == "NOT_SHARED"


@pytest.mark.parametrize(
    ("dataset", "consumer", "purpose", "reason"),
    [
        ("101/000001", YBJ, "社会保险参保资格审核", "NO_GRANT"),
        ("101/000001", RSJ, "商业营销", "PURPOSE_NOT_COVERED"),
        ("101/000001", MZJ, "最低生活保障资格核查", "GRANT_EXPIRED"),
    ],
)
def test_conditional_denials_carry_the_dataset_basis(policy, dataset, consumer, purpose, reason):
    d = _decide(policy, dataset, consumer, purpose)
    assert d.reason_code.value == reason
    assert d.basis == "《个人信息保护法》第三十四条"
    with pytest.raises(PolicyDenied) as caught:
        d.apply(PERSON)
    assert caught.value.reason == reason


def test_denied_decision_never_returns_data(policy):
    d = _decide(policy, "101/000001", YBJ)
    with pytest.raises(PolicyDenied):
        d.apply(PERSON)
    with pytest.raises(PolicyDenied):
        _ = d.projector
    with pytest.raises(PolicyDenied):
        list(d.apply_many([PERSON]))


def test_expiry_is_inclusive_in_china_time(policy):
    # 2026-12-31 23:30 CST is 15:30 UTC: still in force; 2027-01-01 00:30 CST (16:30 UTC) is not
    last_evening = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    next_morning = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert _decide(policy, "101/000001", RSJ, now=last_evening).allowed
    late = _decide(policy, "101/000001", RSJ, now=next_morning)
    assert late.reason_code is ReasonCode.GRANT_EXPIRED
    assert "2026-12-31" in late.message
    # naive datetimes are read as China time
    assert _decide(policy, "101/000001", RSJ, now=datetime(2026, 12, 31, 23, 59)).allowed
    # another zone, same instant
    tokyo = timezone(timedelta(hours=9))
    assert not _decide(policy, "101/000001", RSJ, now=datetime(2027, 1, 1, 1, 30, tzinfo=tokyo)).allowed


def test_purpose_is_compared_after_normalisation(policy):
    assert _decide(policy, "101/000001", RSJ, purpose="  社会保险参保资格审核 ").allowed
    assert _decide(policy, "101/000001", RSJ.lower()).allowed  # codes are case-folded


# ------------------------------------------------------------------ projection and masking


def test_conditional_projects_granted_items_and_masks_exactly(policy):
    d = _decide(policy, "101/000001", RSJ)
    out = d.apply(PERSON)
    assert out == {
        "id": "p-0001",
        "type": "Person",
        "identityNumber": "110105********002X",
        "name": "张三丰",
        "birthDate": "1949-12-31",
    }
    assert list(out) == ["id", "type", "birthDate", "identityNumber", "name"]
    assert d.items == frozenset({"identityNumber", "name", "birthDate"})
    assert {k: r.spec for k, r in d.maskers.items()} == {"identityNumber": "keep:6:4"}
    assert d.basis == "《社会保险法》"
    assert PERSON["identityNumber"] == "11010519491231002X"  # the input is untouched


def test_requested_items_narrow_the_projection(policy):
    d = _decide(policy, "101/000001", RSJ, items=["name", "id"])
    assert d.items == frozenset({"name"})
    assert d.apply(PERSON) == {"id": "p-0001", "type": "Person", "name": "张三丰"}


@pytest.mark.parametrize("empty", [None, [], (), iter(())])
def test_no_requested_items_means_everything_granted(policy, empty):
    assert _decide(policy, "101/000001", RSJ, items=empty).items == frozenset(
        {"identityNumber", "name", "birthDate"}
    )


def test_asking_only_for_the_id_gives_only_id_and_type(policy):
    assert _decide(policy, "101/000001", RSJ, items=iter(["id"])).apply(PERSON) == {
        "id": "p-0001",
        "type": "Person",
    }


def test_requested_item_not_granted_names_it(policy):
    d = _decide(policy, "101/000001", RSJ, items=["name", "sex"])
    assert d.reason_code is ReasonCode.ITEM_NOT_GRANTED
    assert "item(s) sex of" in d.message


def test_unconditional_drops_withheld_and_masks_for_everyone(policy):
    record = {
        "id": "e1",
        "creditCode": "91110000600037341L",
        "legalRepresentative": "李四",
        "registrationDivision": "110108",
        "name": "某公司",
    }
    out = _decide(policy, "102/000001", YBJ, purpose=None).apply(record)
    assert out == {
        "id": "e1",
        "creditCode": "91110000600037341L",
        "legalRepresentative": "李*",
        "name": "某公司",
    }


def test_unconditional_with_requested_items(policy):
    record = {"id": "e1", "creditCode": "91110000600037341L", "legalRepresentative": "李四", "name": "某公司"}
    d = _decide(policy, "102/000001", YBJ, items=["creditCode"])
    assert d.apply(record) == {"id": "e1", "creditCode": "91110000600037341L"}
    assert d.maskers == {}


def test_unconditional_without_rules_copies_the_record(policy):
    d = _decide(policy, "103/000001", YBJ)
    record = {"id": "x", "a": 1}
    out = d.apply(record)
    assert out == record and out is not record


def test_missing_keys_are_not_invented(policy):
    d = _decide(policy, "101/000001", RSJ)
    assert d.apply({"id": "p2", "name": None}) == {"id": "p2", "name": None}
    assert d.apply({}) == {}


def test_two_grants_union_items_and_stricter_masking_wins():
    g1 = Grant.create(
        dataset_id="D",
        consumer_code=RSJ,
        items=["identityNumber", "name"],
        purposes=["P"],
        until=None,
    )
    g2 = Grant.create(
        dataset_id="D",
        consumer_code=RSJ,
        items=["identityNumber", "sex"],
        purposes=["P", "Q"],
        until=date(2030, 1, 1),
        masking={"identityNumber": MaskRule.keep(6, 4)},
    )
    lst = ResponsibilityList((DatasetPolicy("D", SharingType.CONDITIONAL, basis=("b",), grants=(g1, g2)),))
    d = _decide(lst, "D", RSJ, purpose="P")
    assert d.items == frozenset({"identityNumber", "name", "sex"})
    assert d.apply(PERSON)["identityNumber"] == "110105********002X"
    assert set(d.grant_ids) == {g1.grant_id, g2.grant_id}
    only_q = _decide(lst, "D", RSJ, purpose="Q")
    assert only_q.items == frozenset({"identityNumber", "sex"})


def test_id_hash_keeps_the_id_unique_and_per_consumer():
    def policy_for(consumer):
        g = Grant.create(
            dataset_id="D",
            consumer_code=consumer,
            items=["name"],
            purposes=["P"],
            until=None,
            masking={"id": MaskRule.hash(), "name": MaskRule.redact()},
        )
        return ResponsibilityList((DatasetPolicy("D", SharingType.CONDITIONAL, basis=("b",), grants=(g,)),))

    a = _decide(policy_for(RSJ), "D", RSJ, purpose="P", hash_key=KEY)
    b = _decide(policy_for(YBJ), "D", YBJ, purpose="P", hash_key=KEY)
    out_a1, out_a2 = a.apply({"id": "p1", "name": "张三"}), a.apply({"id": "p2", "name": "张三"})
    assert out_a1["name"] == REDACTED
    assert out_a1["id"] != out_a2["id"]  # still unique
    assert a.apply({"id": "p1"})["id"] == out_a1["id"]  # stable for the consumer
    assert b.apply({"id": "p1"})["id"] != out_a1["id"]  # not joinable across consumers
    expected = MaskRule.hash().compile(consumer_hash_key(KEY, RSJ))("p1")
    assert out_a1["id"] == expected and len(expected) == 64


def test_hash_masking_without_a_key_is_a_config_error():
    g = Grant.create(
        dataset_id="D",
        consumer_code=RSJ,
        items=["name"],
        purposes=["P"],
        until=None,
        masking={"name": MaskRule.hash()},
    )
    lst = ResponsibilityList((DatasetPolicy("D", SharingType.CONDITIONAL, basis=("b",), grants=(g,)),))
    with pytest.raises(ConfigError):
        _decide(lst, "D", RSJ, purpose="P")


def test_decision_summary_for_the_evidence_log(policy):
    summary = _decide(policy, "101/000001", RSJ).to_dict()
    assert summary["allowed"] is True and summary["reason"] == "GRANTED"
    assert summary["items"] == ["birthDate", "identityNumber", "name"]
    assert summary["masking"] == {"identityNumber": "keep:6:4"}
    assert summary["date"] == "2026-06-01"
    denied = _decide(policy, "105/000009", RSJ).to_dict()
    assert denied["allowed"] is False and denied["reason"] == "NOT_SHARED" and denied["basis"]


def test_apply_many_streams(policy):
    d = _decide(policy, "101/000001", RSJ, items=["name"])
    records = [dict(PERSON, id=f"p{i}") for i in range(1000)]
    out = list(d.apply_many(records))
    assert len(out) == 1000 and all(set(r) == {"id", "type", "name"} for r in out)


# ------------------------------------------------------------------ property: never an ungranted key

KEYS = [
    "identityNumber",
    "name",
    "sex",
    "ethnicity",
    "birthDate",
    "householdDivision",
    "creditCode",
    "startDate",
]
_key = st.sampled_from(KEYS)
_value = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats(allow_nan=False), st.booleans())
_rule = st.one_of(
    st.just(MaskRule.redact()),
    st.builds(MaskRule.keep, st.integers(0, 8), st.integers(1, 8)),
    st.just(MaskRule.hash()),
)


@st.composite
def _case(draw):
    granted = draw(st.sets(_key, min_size=1, max_size=5))
    masked = draw(st.dictionaries(st.sampled_from(sorted(granted)), _rule, max_size=3))
    grant = Grant.create(
        dataset_id="D", consumer_code=RSJ, items=granted, purposes=["P"], until=None, masking=masked
    )
    withheld = draw(
        st.sets(st.sampled_from([k for k in KEYS if k not in granted] or ["validFrom"]), max_size=2)
    )
    record = draw(st.dictionaries(st.one_of(_key, st.text(min_size=1, max_size=8)), _value, max_size=12))
    record["id"] = draw(st.text(min_size=1, max_size=10))
    requested = draw(st.one_of(st.none(), st.sets(st.sampled_from(sorted(granted)), min_size=1)))
    return grant, frozenset(withheld), record, requested


@settings(max_examples=150, deadline=None)
@given(_case())
def test_projection_never_contains_an_ungranted_key(case):
    grant, withheld, record, requested = case
    lst = ResponsibilityList(
        (
            DatasetPolicy(
                "D", SharingType.CONDITIONAL, basis=("b",), withheld=tuple(withheld), grants=(grant,)
            ),
            DatasetPolicy("U", SharingType.UNCONDITIONAL, basis=("b",), withheld=tuple(withheld)),
        )
    )
    d = _decide(lst, "D", RSJ, purpose="P", items=requested, hash_key=KEY)
    out = d.apply(record)
    allowed = set(requested or grant.items) | {"id", "type"}
    assert set(out) <= allowed
    assert set(out) == allowed & set(record)
    hash_key = consumer_hash_key(KEY, RSJ)
    for key, rule in grant.masking:  # every masked key delivered is masked exactly by its rule
        if key in out:
            assert out[key] == rule.compile(hash_key)(record[key])
    u = _decide(lst, "U", RSJ, purpose=None, hash_key=KEY).apply(record)
    assert not set(u) & withheld
    assert set(u) == set(record) - withheld


def test_mutating_the_output_does_not_touch_the_input(policy):
    d = _decide(policy, "103/000001", YBJ)
    record = {"id": "x", "a": "1"}
    d.apply(record)["a"] = "2"
    assert record["a"] == "1"


def test_naive_and_aware_now_agree(policy):
    aware = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    naive_cst = datetime(2026, 6, 1, 20, 0)
    assert (
        _decide(policy, "101/000001", RSJ, now=aware).decided_on
        == _decide(policy, "101/000001", RSJ, now=naive_cst).decided_on
    )
