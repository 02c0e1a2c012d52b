"""The kit's own references (masking rules, the batch digest, what a grant lets through) agree with the
standard's text as the node implements it; they are written independently, so each checks the other."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.fixture import default_fixture
from conformance.node_cases._support import (
    MaskSpec,
    batch_digest,
    expected_projection,
    parse_masking,
    projection_problems,
)
from node._generated.shulian.v1 import common_pb2
from node.policy import DatasetPolicy, Grant, MaskRule, ResponsibilityList, SharingType, decide
from node.service import batch_digest as node_batch_digest

_RULES = st.one_of(
    st.just("redact"),
    st.tuples(st.integers(0, 8), st.integers(0, 8)).filter(lambda t: sum(t) > 0).map(lambda t: f"keep:{t[0]}:{t[1]}"),
    st.integers(1, 8).map(lambda n: f"keep-first:{n}"),
    st.integers(1, 8).map(lambda n: f"keep-last:{n}"),
)


@settings(max_examples=200, deadline=None)
@given(rule=_RULES, value=st.one_of(st.none(), st.text(max_size=30), st.integers()))
def test_the_kits_masking_is_the_nodes(rule: str, value: object) -> None:
    kit = parse_masking(f"x={rule}")["x"]
    assert kit.apply(value) == MaskRule.parse(rule).compile()(value)


def test_masking_specs_parse_in_every_spelling() -> None:
    assert parse_masking("identityNumber=keep:6:4;name=keep-first:1") == {
        "identityNumber": MaskSpec("keep", 6, 4), "name": MaskSpec("keep", 1, 0)}
    assert parse_masking({"a": "keep-last:4", "b": "REDACT", "c": "hash"}) == {
        "a": MaskSpec("keep", 0, 4), "b": MaskSpec("redact"), "c": MaskSpec("hash")}


_RECORDS = st.lists(st.tuples(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,20}", fullmatch=True),
                              st.integers(0, 2**40), st.booleans(), st.binary(max_size=64)), max_size=6)


@settings(max_examples=100, deadline=None)
@given(dataset=st.text(min_size=1, max_size=20), records=_RECORDS)
def test_the_kits_batch_digest_is_the_nodes(dataset: str, records: list[tuple[str, int, bool, bytes]]) -> None:
    msgs = [common_pb2.Record(id=i, version=v, deleted=d, payload=p) for i, v, d, p in records]
    assert batch_digest(dataset, msgs) == node_batch_digest(dataset, records)


def _policy() -> tuple[ResponsibilityList, str]:
    fx = default_fixture()
    ds = fx.dataset("conditional")
    grants = tuple(Grant.create(dataset_id=ds.id, consumer_code=fx.consumer(g.consumer).code, items=g.items,
                                purposes=g.purposes, until=g.until,
                                masking={k: MaskRule.parse(v) for k, v in g.masking}) for g in ds.grants)
    return ResponsibilityList((DatasetPolicy(ds.id, SharingType.CONDITIONAL, basis=(ds.basis,), grants=grants),)), ds.id


def test_what_the_node_delivers_is_what_the_kit_expects() -> None:
    fx = default_fixture()
    policy, dataset = _policy()
    grant = fx.grant("granted")
    code = fx.consumer("granted").code
    decision = decide(policy, dataset, code, grant.purposes[0], dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                      federation_members={code})
    masking = parse_masking(dict(grant.masking))
    for record in fx.dataset("conditional").records:
        delivered = decision.apply(record)
        assert delivered == expected_projection(record, grant.items, masking)
        assert projection_problems(str(record["id"]), delivered, record, grant.items, masking) == []
        leaked = {**delivered, "identityNumber": record["identityNumber"], "ethnicity": record["ethnicity"]}
        problems = projection_problems(str(record["id"]), leaked, record, grant.items, masking)
        assert any("'ethnicity' was delivered but is not granted" in p for p in problems)
        assert any("'identityNumber' must be masked keep:6:4" in p for p in problems)
