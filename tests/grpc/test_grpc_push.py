"""Push: each record validated at the boundary; valid ones stored, invalid ones rejected, never the batch."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc_testkit as kit
import pytest

from node.errors import InputError, NotFound, PolicyDenied
from node.evidence import EvidenceLog
from node.pki import load_signing_key
from node.store import Store

pytestmark = pytest.mark.integration


def push(fed: kit.Federation, who: str, dataset: str, records: list[Any], batch_size: int = 500) -> Any:
    async def main() -> Any:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with kit.client_for(fed.nodes[who], node.address) as client:
                return await client.push(dataset, records, batch_size=batch_size, keep_ids=True)

    return asyncio.run(main())


def test_mixed_batch_stores_the_valid_and_rejects_the_invalid(fed: kit.Federation) -> None:
    good = [kit.person(i, "in") for i in range(10)]
    wrong_sex = dict(kit.person(100, "in"), sex="7")
    bad_number = dict(kit.person(101, "in"), identityNumber="110105194912310021")  # wrong check digit
    records: list[Any] = [*good[:5], wrong_sex, *good[5:], bad_number]
    records.append(("in-notjson", b'{"id": "in-notjson", "name": '))  # truncated JSON
    records.append(("in-mismatch", json.dumps(kit.person(102, "in")).encode()))  # payload id differs
    records.append(("bad id!", json.dumps(dict(kit.person(103), id="bad id!")).encode()))
    records.append(("in-array", b"[1, 2]"))
    summary = push(fed, "consumer", "inbox", records, batch_size=8)

    assert summary.batches == 2 and summary.accepted == 10 and summary.rejected == 6
    assert sorted(summary.acknowledged) == sorted(r["id"] for r in good)
    rejected = {r.id: r for r in summary.rejections}
    assert set(rejected) == {"in0000100", "in0000101", "in-notjson", "in-mismatch", "bad id!", "in-array"}
    sex = rejected["in0000100"].violations
    assert [(v["path"], v["severity"]) for v in sex] == [("sex", "Violation")]
    assert sex[0]["message_zh"] and sex[0]["message_en"] and sex[0]["constraint"]
    assert any(v["path"] == "identityNumber" for v in rejected["in0000101"].violations)
    assert "not JSON" in rejected["in-notjson"].error
    assert "differs" in rejected["in-mismatch"].error
    assert "bad record id" in rejected["bad id!"].error
    assert "JSON object" in rejected["in-array"].error

    cfg = fed.provider.config()
    with Store(cfg.store) as store:
        stored = {r.id: r.data for r in store.iter_records("inbox")}
        assert stored == {r["id"]: r for r in good}
        entries = list(EvidenceLog(store, load_signing_key(cfg.signing_key)).entries())
    kinds = [(e.kind, e.details.get("count")) for e in entries]
    assert kinds == [("push.accepted", 7), ("push.rejected", 1), ("push.accepted", 3), ("push.rejected", 5)]
    first_rejects = entries[1].details["rejected"]
    assert first_rejects[0]["id"] == "in0000100" and first_rejects[0]["violations"][0].startswith("sex: ")
    assert entries[0].details["records"] == [[r["id"], 1] for r in good[:7]]
    assert all(e.actor == kit.CONSUMER for e in entries)


def test_pushing_the_same_records_again_changes_nothing(fed: kit.Federation) -> None:
    records = [kit.person(i, "dup") for i in range(3)]
    first = push(fed, "consumer", "inbox", records)
    again = push(fed, "consumer", "inbox", records + [dict(kit.person(0, "dup"), name="李秀兰")])
    assert first.accepted == 3 and again.accepted == 4 and again.rejected == 0
    with Store(fed.provider.config().store) as store:
        versions = {r.id: r.version for r in store.iter_records("inbox")}
    assert versions == {"dup0000000": 2, "dup0000001": 1, "dup0000002": 1}


def test_only_the_node_itself_and_its_peers_may_push(fed: kit.Federation) -> None:
    with pytest.raises(PolicyDenied) as info:
        push(fed, "expired", "inbox", [kit.person(1)])  # a member, but not a configured peer
    assert info.value.reason == "PUSH_NOT_ALLOWED"
    own = push(fed, "provider", "inbox", [kit.person(1, "own")])  # the node's own certificate
    assert own.accepted == 1


def test_push_to_an_unknown_dataset_is_not_found(fed: kit.Federation) -> None:
    with pytest.raises(NotFound) as info:
        push(fed, "consumer", "nowhere", [kit.person(1)])
    assert info.value.reason == "UNKNOWN_DATASET"


def test_a_stream_carries_one_dataset(fed: kit.Federation) -> None:
    async def main() -> Any:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                from node._generated.shulian.v1 import common_pb2, records_pb2

                def requests() -> Any:
                    yield records_pb2.PushRequest(dataset="inbox", records=[
                        common_pb2.Record(id="a0000001", payload=json.dumps(kit.person(1, "a")).encode())])
                    yield records_pb2.PushRequest(dataset="population", records=[])

                call = client._push(requests())
                answers = []
                with pytest.raises(Exception) as info:
                    async for answer in call:
                        answers.append(answer)
                return answers, info.value

    answers, err = asyncio.run(main())
    assert len(answers) == 1 and answers[0].results[0].id == "a0000001"
    assert err.code().name == "INVALID_ARGUMENT"
    assert dict(err.trailing_metadata())["shulian-reason"] == "BAD_REQUEST"


def test_record_without_id_field_takes_the_payload_id(fed: kit.Federation) -> None:
    rec = kit.person(7, "noid")
    summary = push(fed, "consumer", "inbox", [("", json.dumps(rec, ensure_ascii=False).encode())])
    assert summary.acknowledged == ["noid0000007"]


def test_client_rejects_bad_batch_size(fed: kit.Federation) -> None:
    with pytest.raises(InputError):
        push(fed, "consumer", "inbox", [kit.person(1)], batch_size=0)
