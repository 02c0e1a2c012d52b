"""The list model's invariants and its grant / revoke operations."""

from __future__ import annotations

from datetime import date

import pytest

from node.errors import InputError, NotFound
from node.policy import DatasetPolicy, Grant, MaskRule, ResponsibilityList, SharingType

from .conftest import MZJ, RSJ, YBJ


def _grant(**kw):
    args = {
        "dataset_id": "101/000001",
        "consumer_code": YBJ,
        "items": ["name"],
        "purposes": ["医保待遇核查"],
        "until": date(2027, 6, 30),
    }
    args.update(kw)
    return Grant.create(**args)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("1", SharingType.UNCONDITIONAL),
        ("无条件共享", SharingType.UNCONDITIONAL),
        ("unconditional", SharingType.UNCONDITIONAL),
        ("２", SharingType.CONDITIONAL),
        (" 有条件 ", SharingType.CONDITIONAL),
        ("Conditional", SharingType.CONDITIONAL),
        ("3", SharingType.NOT_SHARED),
        ("不予共享", SharingType.NOT_SHARED),
        ("not shared", SharingType.NOT_SHARED),
        ("not_shared", SharingType.NOT_SHARED),
    ],
)
def test_sharing_type_parse(text, kind):
    assert SharingType.parse(text) is kind


def test_sharing_type_labels():
    assert [t.label_zh for t in SharingType] == ["无条件共享", "有条件共享", "不予共享"]
    with pytest.raises(ValueError, match="1/无条件共享"):
        SharingType.parse("部分共享")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"items": []}, "at least one item"),
        ({"purposes": [" "]}, "at least one purpose"),
        ({"consumer_code": "91110000600037341X"}, "check character"),
        ({"consumer_code": "市人社局"}, "unified social credit code"),
        ({"items": ["id"]}, "always delivered"),
        ({"items": ["bad key"]}, "not a record key"),
        ({"masking": {"sex": MaskRule.redact()}}, "does not cover"),
        ({"masking": {"id": MaskRule.redact()}}, "only be masked with hash"),
        ({"dataset_id": "人口/1"}, "dataset id"),
    ],
)
def test_grant_invariants(kwargs, message):
    with pytest.raises(InputError, match=message):
        _grant(**kwargs)


def test_grant_normalises_and_gets_a_stable_id():
    a = _grant(items=["name", "sex", "name"], purposes=["B", "A", "A"], consumer_code=YBJ.lower())
    b = _grant(items=["sex", "name"], purposes=["A", "B"])
    assert a.items == ("name", "sex") and a.purposes == ("A", "B") and a.consumer_code == YBJ
    assert a.grant_id == b.grant_id and a.grant_id.startswith(YBJ)
    assert a.grant_id != _grant(until=date(2028, 1, 1)).grant_id
    assert a.valid_on(date(2027, 6, 30)) and not a.valid_on(date(2027, 7, 1))
    assert _grant(until=None).valid_on(date(2999, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sharing_type": SharingType.CONDITIONAL}, "must cite its basis"),
        ({"sharing_type": SharingType.NOT_SHARED}, "must cite its basis"),
        ({"sharing_type": SharingType.UNCONDITIONAL, "withheld": ("sex",)}, "withheld .* must cite"),
        ({"sharing_type": SharingType.UNCONDITIONAL, "grants": "G"}, "only conditional"),
        ({"sharing_type": SharingType.NOT_SHARED, "basis": ("b",), "withheld": ("sex",)}, "shares nothing"),
        (
            {
                "sharing_type": SharingType.CONDITIONAL,
                "basis": ("b",),
                "masking": (("name", MaskRule.redact()),),
            },
            "masks per grant",
        ),
        (
            {"sharing_type": SharingType.CONDITIONAL, "basis": ("b",), "withheld": ("name",), "grants": "G"},
            "withheld",
        ),
        (
            {
                "sharing_type": SharingType.UNCONDITIONAL,
                "basis": ("b",),
                "withheld": ("name",),
                "masking": (("name", MaskRule.redact()),),
            },
            "cannot be masked",
        ),
        (
            {"sharing_type": SharingType.UNCONDITIONAL, "masking": (("id", MaskRule.keep(1, 0)),)},
            "only be masked",
        ),
    ],
)
def test_dataset_invariants(kwargs, message):
    if kwargs.get("grants") == "G":
        kwargs["grants"] = (_grant(),)
    with pytest.raises(InputError, match=message):
        DatasetPolicy("101/000001", **kwargs)


def test_dataset_collects_items_from_grants_withheld_and_masking():
    ds = DatasetPolicy(
        "101/000001",
        SharingType.CONDITIONAL,
        items=("sex",),
        withheld=("ethnicity",),
        basis=("b", "a", "b"),
        grants=(_grant(items=["name", "identityNumber"], masking={"id": MaskRule.hash()}),),
    )
    assert ds.items == ("ethnicity", "identityNumber", "name", "sex")
    assert ds.basis == ("a", "b") and ds.basis_text == "a；b"


def test_list_rejects_duplicate_datasets_and_bad_provider():
    ds = DatasetPolicy("D", SharingType.UNCONDITIONAL)
    with pytest.raises(InputError, match="listed twice"):
        ResponsibilityList((ds, ds))
    with pytest.raises(InputError, match="provider"):
        ResponsibilityList((ds,), provider_code="12345")


def test_with_grant_and_revoke(policy):
    new = _grant(items=["identityNumber", "sex"], masking={"identityNumber": MaskRule.keep(6, 4)})
    updated = policy.with_grant(new)
    assert new in updated.dataset("101/000001").grants
    assert new not in policy.dataset("101/000001").grants  # immutable
    assert "sex" in updated.dataset("101/000001").items
    # same id again replaces, not duplicates
    assert len(updated.with_grant(new).dataset("101/000001").grants) == 3
    revoked, removed = updated.revoke("101/000001", YBJ)
    assert removed == (new,)
    assert revoked.grants == policy.grants
    assert "sex" in revoked.dataset("101/000001").items  # the item stays declared
    with pytest.raises(NotFound):
        revoked.revoke("101/000001", YBJ)
    with pytest.raises(NotFound):
        policy.revoke("999/1", RSJ)


def test_revoke_removes_every_grant_of_the_consumer(policy):
    second = _grant(consumer_code=RSJ, purposes=["另一用途"])
    lst = policy.with_grant(second)
    assert len(lst.dataset("101/000001").grants_for(RSJ)) == 2
    after, removed = lst.revoke("101/000001", RSJ)
    assert len(removed) == 2 and after.dataset("101/000001").grants_for(RSJ) == ()
    assert after.dataset("101/000001").grants_for(MZJ)


@pytest.mark.parametrize(
    ("grant", "message"),
    [
        (_grant(dataset_id="102/000001"), "only to conditional"),
        (_grant(dataset_id="105/000009"), "only to conditional"),
        (_grant(items=["ethnicity"]), "withheld"),
    ],
)
def test_with_grant_refuses(policy, grant, message):
    with pytest.raises(InputError, match=message):
        policy.with_grant(grant)


def test_with_grant_unknown_dataset(policy):
    with pytest.raises(NotFound):
        policy.with_grant(_grant(dataset_id="999/000001"))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("phoneNumber", "not a record property of the standard"),
        ("identitynumber", "did you mean identityNumber"),
    ],
)
def test_items_must_be_record_properties_of_the_standard(key, message):
    """A typo must not silently withhold nothing (or grant nothing)."""
    with pytest.raises(InputError, match=message):
        DatasetPolicy("D", SharingType.UNCONDITIONAL, basis=("b",), withheld=(key,))
    with pytest.raises(InputError, match=message):
        _grant(items=[key])


def test_sharing_methods_are_code_list_notations():
    ds = DatasetPolicy("D", SharingType.UNCONDITIONAL, methods=("系统对接", "platform", "共享交换平台"))
    assert ds.methods == ("interface", "platform")
    with pytest.raises(InputError, match="sharing-method code list"):
        DatasetPolicy("D", SharingType.UNCONDITIONAL, methods=("飞鸽传书",))


def test_item_labels_fall_back_to_the_standard():
    ds = DatasetPolicy("D", SharingType.UNCONDITIONAL, items=("sex", "name"), item_labels=(("name", "姓名"),))
    assert ds.label("name") == "姓名" and ds.label("sex") == "性别"
