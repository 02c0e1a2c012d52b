"""The provider's outbox publisher and the consumer's boundary, on real stores, keys and directory.

No broker here: the publisher's prepared messages are handed to the consumer's
receiver as Kafka would deliver them. The broker tests are in test_kafka_exchange.py.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka_testkit import Federation, Node, person

from node.config import NodeConfig, Subscription
from node.evidence import RECORDS_DELIVERED, RECORDS_QUARANTINED, RECORDS_RECEIVED, EvidenceLog
from node.federation import FederationDirectory, load_node_directory
from node.pki import load_encryption_key, load_signing_key
from node.policy import DatasetPolicy, Grant, MaskRule, ResponsibilityList, SharingType
from node.store import Store
from node.transport.kafka import (
    H_PROOF,
    H_SIGNATURE,
    Incoming,
    Receiver,
    consumer_topic,
    leaf_hash,
    local_dataset_id,
    merkle_sign,
    received_version,
    shared_topic,
)
from node.transport.kafka._inbox import ensure_inbox
from node.transport.kafka._publisher import Outgoing, Publisher
from node.transport.kafka._routes import RoutePlanner
from node.validation import get_validator

BASIS = "《中华人民共和国个人信息保护法》第三十四条"


@dataclass
class Side:
    node: Node
    cfg: NodeConfig
    store: Store
    evidence: EvidenceLog


def _open(node: Node) -> Side:
    node.write_config()
    cfg = node.load()
    store = Store(cfg.store)
    return Side(node, cfg, store, EvidenceLog(store, load_signing_key(cfg.signing_key)))


def policy_for(provider: Node, granted: Node, *, until: dt.date | None = None) -> ResponsibilityList:
    return ResponsibilityList(datasets=(
        DatasetPolicy("open", SharingType.UNCONDITIONAL),
        DatasetPolicy("population", SharingType.CONDITIONAL, basis=(BASIS,), withheld=("ethnicity",), grants=(
            Grant.create(dataset_id="population", consumer_code=granted.code,
                         items=["name", "birthDate", "identityNumber"], purposes=["社会保险参保资格审核"],
                         until=until, masking={"identityNumber": MaskRule.keep(6, 4)}),)),
    ), provider_code=provider.code)


@dataclass
class World:
    fed: Federation
    p: Side
    a: Side  # holds a grant on population
    b: Side  # no grant
    directory: FederationDirectory
    policy: ResponsibilityList

    def publisher(self) -> Publisher:
        planner = RoutePlanner(self.p.cfg, lambda: self.policy, lambda: self.directory)
        return Publisher(cfg=self.p.cfg, store=self.p.store, evidence=self.p.evidence,
                         signing_key=load_signing_key(self.p.cfg.signing_key), planner=planner)

    def receiver(self, side: Side, subscriptions: list[Subscription] | None = None) -> Receiver:
        ensure_inbox(side.store)
        subs = subscriptions if subscriptions is not None else list(side.cfg.kafka.subscriptions if side.cfg.kafka
                                                                     else ())
        return Receiver(node_code=side.cfg.department.code, subscriptions=subs, store=side.store,
                        evidence=side.evidence, validator=get_validator("fast"), directory=lambda: self.directory,
                        encryption_key=load_encryption_key(side.cfg.encryption_key) if side.cfg.encryption_key
                        else None)

    def publish(self) -> list[Outgoing]:
        pub = self.publisher()
        out: list[Outgoing] = []
        while (batch := pub.prepare(500)) is not None:
            out += batch.messages
            pub.finish(batch)
        return out


_offsets: dict[str, int] = {}


def delivered(msgs: list[Outgoing], topic: str | None = None) -> list[Incoming]:
    """As the broker hands them out: topic, partition 0, increasing offsets."""
    out = []
    for m in msgs:
        t = topic or m.topic
        off = _offsets[t] = _offsets.get(t, -1) + 1
        out.append(Incoming(t, 0, off, m.key, m.value, tuple(m.headers)))
    return out


def resign(msg: Incoming, signer: Any, **changes: Any) -> Incoming:
    """A message changed and signed again (alone) by ``signer``, at a fresh offset."""
    headers = [h for h in msg.headers if h[0] not in (H_SIGNATURE, H_PROOF)]
    replace = changes.pop("headers", {})
    headers = [(n, replace.get(n, v)) for n, v in headers] + [(n, v) for n, v in replace.items()
                                                            if n not in dict(headers)]
    value = changes.get("value", msg.value)
    mkey = changes.get("key", msg.key)
    _root, sig, _proofs = merkle_sign(signer, [leaf_hash(mkey, value, headers)])
    headers += [(H_SIGNATURE, base64.b64encode(sig)), (H_PROOF, b"")]
    topic = changes.get("topic", msg.topic)
    offset = _offsets[topic] = _offsets.get(topic, -1) + 1
    return Incoming(topic, msg.partition, offset, mkey, value, tuple(headers))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    fed = Federation(tmp_path, "127.0.0.1:9")  # no broker needed here
    p, a, b = fed.node("prov"), fed.node("a"), fed.node("b")
    p.publish("open", "unconditional")
    p.publish("population", "conditional", code="1010100/000002")
    for n in (a, b):
        n.subscribe(p, "open")
        n.subscribe(p, "population")
    sides = [_open(n) for n in (p, a, b)]
    for s in sides:
        ensure_inbox(s.store)
    pol = policy_for(p, a)
    w = World(fed, sides[0], sides[1], sides[2], load_node_directory(sides[0].cfg), pol)
    w.publisher().sync_publish_flags()
    yield w
    for s in sides:
        s.store.close()


def test_unconditional_records_arrive_whole_and_are_stored_once(world: World) -> None:
    world.p.store.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(30)])
    msgs = world.publish()
    assert {m.topic for m in msgs} == {shared_topic(world.p.node.code, "open")}
    assert world.p.store.outbox_pending_count() == 0
    rx = world.receiver(world.a)
    incoming = delivered(msgs)
    result = rx.apply(incoming)
    assert (result.stored, result.duplicates, result.rejected) == (30, 0, [])
    local = local_dataset_id(world.p.node.code, "open")
    assert world.a.store.count_records(local) == 30
    got = world.a.store.get_record(local, "o7")
    assert got is not None and got.data == person(7, "o") and got.version == 1
    # redelivery (a consumer restarted before committing its offsets): nothing stored twice
    again = rx.apply(incoming)
    assert (again.stored, again.duplicates) == (0, 30)
    assert all(r.version == 1 for r in world.a.store.iter_records(local))
    # a new version replaces; the provider's version is kept; a stale redelivery is skipped
    changed = dict(person(7, "o"), name="赵某")
    world.p.store.upsert("open", "o7", changed)
    world.p.store.upsert("open", "o7", dict(changed, name="钱某"))
    v3 = delivered(world.publish())
    assert [(m.key, dict(m.headers)[b"ce_recordversion".decode()]) for m in v3] == [(b"o7", b"2"), (b"o7", b"3")]
    assert rx.apply(v3).stored == 2
    assert received_version(world.a.store, local, "o7").version == 3  # type: ignore[union-attr]
    assert world.a.store.get_record(local, "o7").data["name"] == "钱某"  # type: ignore[union-attr]
    assert rx.apply([incoming[7]]).duplicates == 1
    assert world.a.store.get_record(local, "o7").data["name"] == "钱某"  # type: ignore[union-attr]
    # a deletion travels as a signed tombstone
    world.p.store.delete("open", "o3")
    tomb = delivered(world.publish())
    assert tomb[0].value is None and dict(tomb[0].headers)["ce_type"] == b"org.w3id.shulian.record.deleted"
    assert rx.apply(tomb).stored == 1
    assert world.a.store.get_record(local, "o3").deleted  # type: ignore[union-attr]
    received = [e.details for e in EvidenceLog(world.a.store).entries() if e.kind == RECORDS_RECEIVED]
    assert sum(d["stored"] for d in received) == 30 + 2 + 1
    delivered_ev = [e.details for e in EvidenceLog(world.p.store).entries() if e.kind == RECORDS_DELIVERED]
    assert sum(d["count"] for d in delivered_ev) == 30 + 2 + 1 and all(len(d["roots"][0]) == 64 for d in delivered_ev)


def test_a_conditional_consumer_gets_only_its_projection_encrypted_to_it(world: World) -> None:
    world.p.store.upsert_many("population", [(f"p{i}", person(i)) for i in range(10)])
    msgs = world.publish()
    a_topic = consumer_topic(world.p.node.code, "population", world.a.node.code)
    assert {m.topic for m in msgs} == {a_topic}  # no shared topic, nothing for b
    h = dict(msgs[0].headers)
    assert h["ce_encryption"] == b"x25519-hkdf-sha256-aes256gcm" and h["ce_recipient"] == world.a.node.code.encode()
    assert h["ce_projection"] == b"partial" and h["ce_masked"] == b"identityNumber"
    assert b"name" not in msgs[0].value  # type: ignore[operator]  # encrypted on the wire
    result = world.receiver(world.a).apply(delivered(msgs))
    assert (result.stored, result.rejected) == (10, [])
    rec = world.a.store.get_record(local_dataset_id(world.p.node.code, "population"), "p1")
    assert rec is not None
    full = person(1)
    assert rec.data == {"id": "p1", "type": "Person", "name": full["name"], "birthDate": full["birthDate"],
                        "identityNumber": full["identityNumber"][:6] + "********" + full["identityNumber"][-4:]}
    # the same messages copied into b's topic: b cannot read them
    b_topic = consumer_topic(world.p.node.code, "population", world.b.node.code)
    stolen = world.receiver(world.b).apply(delivered(msgs, b_topic))
    assert stolen.stored == 0 and {r.code for r in stolen.rejected} == {"WRONG_RECIPIENT"}
    # b re-addressed by a forger who has not the provider's key: refused before decryption
    forged = resign(delivered(msgs[:1], b_topic)[0], load_signing_key(world.b.cfg.signing_key),
                    headers={"ce_recipient": world.b.node.code.encode()})
    assert world.receiver(world.b).check(forged).code == "BAD_SIGNATURE"  # type: ignore[union-attr]


def test_revoked_or_expired_grants_stop_publication(world: World) -> None:
    world.policy = world.policy.revoke("population", world.a.node.code)[0]
    world.p.store.upsert_many("population", [(f"p{i}", person(i)) for i in range(3)])
    assert world.publish() == []
    assert world.p.store.outbox_pending_count() == 0  # not kept for ever: withheld, with evidence
    kinds = [e.kind for e in EvidenceLog(world.p.store).entries()]
    assert "records.withheld" in kinds
    world.policy = policy_for(world.p.node, world.a.node, until=dt.date(2020, 1, 1))
    world.p.store.upsert("population", "p9", person(9))
    assert world.publish() == []
    world.policy = policy_for(world.p.node, world.a.node, until=dt.date(2099, 1, 1))
    world.p.store.upsert("population", "p8", person(8))
    assert [m.key for m in world.publish()] == [b"p8"]


def test_every_failure_is_quarantined_with_its_reason(world: World) -> None:
    p_key = load_signing_key(world.p.cfg.signing_key)
    wrong_check = person(2)["identityNumber"][:17] + ("0" if person(2)["identityNumber"][17] != "0" else "1")
    world.p.store.upsert_many("open", [("good", dict(person(1), id="good")),
                                       ("bad", dict(person(2), id="bad", identityNumber=wrong_check))])
    msgs = delivered(world.publish())
    good = next(m for m in msgs if m.key == b"good")
    stranger = Node("x", "91110000MA00000000", world.fed.root, "")
    tampered = Incoming(good.topic, 0, 9000, good.key, good.value.replace(b"good", b"g00d"),  # type: ignore[union-attr]
                        good.headers)
    cases = {
        "forged": (resign(good, load_signing_key(world.b.cfg.signing_key)), "BAD_SIGNATURE"),
        "tampered": (tampered, "BAD_SIGNATURE"),
        "unsigned": (Incoming(good.topic, 0, 9001, good.key, good.value,
                              tuple(h for h in good.headers if h[0] not in (H_SIGNATURE, H_PROOF))),
                     "MISSING_SIGNATURE"),
        "other member": (resign(good, load_signing_key(world.b.cfg.signing_key), headers={
            "ce_source": f"https://w3id.org/shulian/dept/{world.b.node.code}".encode()}), "UNEXPECTED_PROVIDER"),
        "other dataset": (resign(good, p_key, headers={"ce_dataset": b"population"}), "UNEXPECTED_DATASET"),
        "not json": (resign(good, p_key, value=b"\xff\xfe{not json"), "UNPARSEABLE"),
        "key mismatch": (resign(good, p_key, key=b"other"), "UNPARSEABLE"),
        "no headers": (Incoming(good.topic, 0, 9002, b"k", b"{}", ()), "UNPARSEABLE"),
        "not subscribed": (Incoming(shared_topic(stranger.code, "open"), 0, 0, good.key, good.value, good.headers),
                           "UNEXPECTED_PROVIDER"),
    }
    rx = world.receiver(world.a)
    for name, (msg, code) in cases.items():
        outcome = rx.check(msg)
        assert getattr(outcome, "code", None) == code, (name, outcome)
    invalid = rx.check(next(m for m in msgs if m.key == b"bad"))
    assert invalid.code == "INVALID_RECORD"  # type: ignore[union-attr]
    assert [(v.path, v.constraint) for v in invalid.violations] == [("identityNumber", "GB11643Check")]  # type: ignore[union-attr]
    # a subscription to a department that is not a member
    lone = world.receiver(world.a, [Subscription(stranger.code, "open")])
    fake = Incoming(shared_topic(stranger.code, "open"), 0, 0, good.key, good.value,
                    tuple((n, f"https://w3id.org/shulian/dept/{stranger.code}".encode() if n == "ce_source" else v)
                          for n, v in good.headers))
    assert lone.check(fake).code == "UNKNOWN_PROVIDER"  # type: ignore[union-attr]
    # all in one batch: the good one is stored, every other one quarantined, evidence for both
    batch = [m for m, _ in cases.values()] + msgs
    result = rx.apply(batch)
    assert result.stored == 1 and len(result.rejected) == len(cases) + 1
    held = world.a.store.quarantine_list(limit=100)
    assert sorted(i.reason.split(":")[0] for i in held) == sorted([c for _, c in cases.values()] + ["INVALID_RECORD"])
    q = [e.details for e in EvidenceLog(world.a.store).entries() if e.kind == RECORDS_QUARANTINED]
    assert q[-1]["count"] == len(cases) + 1 and q[-1]["reasons"]["BAD_SIGNATURE"] == 2
    dlq = next(r for r in result.rejected if r.code == "INVALID_RECORD").dead_letter_headers(world.a.node.code, "t")
    names = dict(dlq)
    assert names["shulian_dlq_reason"] == b"INVALID_RECORD"
    assert json.loads(names["shulian_dlq_violations"])[0]["constraint"] == "GB11643Check"


def test_quarantine_cli_lists_shows_retries_and_discards(world: World) -> None:
    from node.cli import cli

    world.p.store.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(3)])
    msgs = delivered(world.publish())
    # the consumer had not subscribed yet: every message is refused and held
    rx = world.receiver(world.a, [])
    assert len(rx.apply(msgs).rejected) == 3
    config = str(world.a.node.config)
    runner = CliRunner()
    listed = runner.invoke(cli, ["quarantine", "list", "--config", config, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["code"] for r in rows] == ["UNEXPECTED_PROVIDER"] * 3 and [r["subject"] for r in rows] == ["o0", "o1", "o2"]
    table = runner.invoke(cli, ["quarantine", "list", "--config", config])
    assert table.exit_code == 0 and "UNEXPECTED_PROVIDER" in table.output
    shown = runner.invoke(cli, ["quarantine", "show", str(rows[0]["id"]), "--config", config, "--json"])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert detail["key"] == "o0" and detail["value"]["json"]["id"] == "o0"
    assert ["ce_subject", "o0"] in detail["headers"]
    text = runner.invoke(cli, ["quarantine", "show", str(rows[0]["id"]), "--config", config])
    assert text.exit_code == 0 and "reason   UNEXPECTED_PROVIDER" in text.output
    missing = runner.invoke(cli, ["quarantine", "show", "9999", "--config", config])
    assert missing.exit_code == 2 and "no quarantined message 9999" in missing.output
    # without the subscription a retry still fails (exit 1) and the message stays held
    world.a.node.subscriptions = []
    world.a.node.write_config()
    still = runner.invoke(cli, ["quarantine", "retry", str(rows[0]["id"]), "--config", config])
    assert still.exit_code == 1 and "held" in still.output
    # the operator adds the subscription: retry releases and stores them
    world.a.node.subscribe(world.p.node, "open")
    world.a.node.write_config()
    retried = runner.invoke(cli, ["quarantine", "retry", str(rows[0]["id"]), str(rows[1]["id"]), "--config", config,
                                  "--json"])
    assert retried.exit_code == 0, retried.output
    assert [o["status"] for o in json.loads(retried.output)] == ["released", "released"]
    local = local_dataset_id(world.p.node.code, "open")
    assert world.a.store.count_records(local) == 2
    again = runner.invoke(cli, ["quarantine", "retry", str(rows[0]["id"]), "--config", config])
    assert again.exit_code == 0 and "already released" in again.output
    gone = runner.invoke(cli, ["quarantine", "discard", str(rows[2]["id"]), "--config", config])
    assert gone.exit_code == 0
    assert world.a.store.quarantine_get(rows[2]["id"]).status == "discarded"
    assert runner.invoke(cli, ["quarantine", "retry", "--config", config]).exit_code == 2
    empty = runner.invoke(cli, ["quarantine", "retry", "--all", "--config", config])
    assert empty.exit_code == 0 and "nothing to retry" in empty.output


def test_the_boundary_never_crashes_on_untrusted_messages(world: World) -> None:
    """Fuzz: real messages with random mutations, and random junk, always end Accepted or Rejected."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from node.transport.kafka import REASONS, Accepted, Rejected

    world.p.store.upsert_many("open", [("good", dict(person(1), id="good"))])
    world.p.store.upsert_many("population", [("p1", person(1))])
    real = delivered(world.publish())
    rx = world.receiver(world.a)
    topics = sorted(rx.topic_map)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(real), st.sampled_from(topics), st.integers(0, 20), st.binary(max_size=40),
           st.one_of(st.none(), st.binary(max_size=200)), st.booleans())
    def check(base: Incoming, topic: str, which: int, junk: bytes, value: bytes | None, drop: bool) -> None:
        headers = list(base.headers)
        if which < len(headers):
            name = headers[which][0]
            headers = [h for h in headers if h[0] != name] if drop else \
                [(n, junk if n == name else v) for n, v in headers]
        else:
            headers.append((junk.decode("latin-1"), junk))
        msg = Incoming(topic, 0, 0, base.key if which % 3 else junk, value if which % 2 else base.value,
                       tuple(headers))
        outcome = rx.check(msg)
        assert isinstance(outcome, Accepted | Rejected)
        if isinstance(outcome, Rejected):
            assert outcome.code in REASONS and outcome.detail

    check()


def _mixed_batch(world: World) -> list[Incoming]:
    """Good, masked, deleted, invalid, forged, tampered and foreign messages, as a consumer may get them."""
    p_key = load_signing_key(world.p.cfg.signing_key)
    wrong = person(2)["identityNumber"][:17] + ("0" if person(2)["identityNumber"][17] != "0" else "1")
    world.p.store.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(150)])
    world.p.store.upsert_many("open", [("bad", dict(person(2), id="bad", identityNumber=wrong))])
    world.p.store.upsert_many("population", [(f"p{i}", person(i)) for i in range(20)])  # masked, for a
    world.p.store.delete("open", "o5")
    msgs = delivered(world.publish())
    good = msgs[0]
    return msgs + [
        resign(good, load_signing_key(world.b.cfg.signing_key)),
        Incoming(good.topic, 0, 9000, good.key, (good.value or b"").replace(b"o0", b"o1"), good.headers),
        resign(good, p_key, headers={"ce_dataset": b"population"}),
        resign(good, p_key, value=b"\xff\xfe{not json"),
        Incoming(good.topic, 0, 9001, b"k", b"{}", ()),
    ]


def test_the_check_helper_gives_the_verdicts_of_the_node(world: World) -> None:
    from node.transport.kafka import Accepted
    from node.transport.kafka._pool import CheckPool, unpack_outcomes
    from node.transport.kafka._receiver import CheckedBatch

    batch = _mixed_batch(world)
    rx = world.receiver(world.a)
    here = rx.check_many(batch)
    assert {type(o).__name__ for o in here} == {"Accepted", "Rejected"}
    pool = CheckPool(node_code=world.a.node.code, subscriptions=world.a.cfg.kafka.subscriptions,  # type: ignore[union-attr]
                     validator=rx.validator, encryption_key=load_encryption_key(world.a.cfg.encryption_key))
    pool.start()
    try:
        there = unpack_outcomes(batch, pool.submit(batch, world.directory).result(60))
        again = unpack_outcomes(batch[:10], pool.submit(batch[:10], world.directory).result(60))
    finally:
        pool.close()
    assert pool.submitted == 2
    # the same verdicts; the helper sends the record's canonical JSON, not the decoded record
    assert there == dataclasses.replace(CheckedBatch.of(here), records=None)
    assert again == dataclasses.replace(CheckedBatch.of(here[:10]), records=None)
    assert there.subjects and all(isinstance(o, Accepted) for o in (here[i] for i in there.at))
    from node.store import content_hash

    assert all(d == content_hash(b) for b, d in zip(there.bodies, there.digests, strict=True) if b is not None)
    # stored from the helper's outcomes: the same records as checking and storing here
    result = rx.store_batch(there)
    assert (result.stored, len(result.rejected)) == (sum(isinstance(o, Accepted) for o in here), 6)
    other = world.receiver(world.b)
    other_store = world.b.store
    mine = other.store_checked(here)
    assert mine.stored == result.stored
    for local in (local_dataset_id(world.p.node.code, "open"), local_dataset_id(world.p.node.code, "population")):
        assert [(r.id, r.version, r.deleted, r.data, r.checked) for r in world.a.store.iter_records(local, include_deleted=True)] \
            == [(r.id, r.version, r.deleted, r.data, r.checked) for r in other_store.iter_records(local, include_deleted=True)]


def test_a_helper_answer_that_does_not_fit_the_batch_is_refused(world: World) -> None:
    from node.transport.kafka._pool import pack_outcomes, unpack_outcomes

    batch = _mixed_batch(world)
    here = world.receiver(world.a).check_many(batch)
    packed = pack_outcomes(here)
    assert unpack_outcomes(batch, packed).at == [i for i, o in enumerate(here) if type(o).__name__ == "Accepted"]
    for bad in (packed[:-1],  # a column missing
                (packed[0][:-1], *packed[1:]),  # a column short
                (*packed[:11], packed[11][:-1]),  # a refusal missing
                ([packed[0][1], *packed[0][1:]], *packed[1:]),  # a message accepted twice, one left out
                [1, 2]):  # not a checked batch at all
        with pytest.raises(RuntimeError, match="check helper answered"):
            unpack_outcomes(batch, bad)
    with pytest.raises(RuntimeError, match="check helper answered"):
        unpack_outcomes(batch[:-1], packed)  # answered for more messages than asked


def test_a_checked_upsert_without_body_or_record_is_not_stored_empty(world: World) -> None:
    from node.transport.kafka._pool import pack_outcomes, unpack_outcomes

    batch = _mixed_batch(world)
    rx = world.receiver(world.a)
    checked = unpack_outcomes(batch, pack_outcomes(rx.check_many(batch)))
    j = checked.deleted.index(False)
    checked.bodies[j] = None  # an upsert that lost its body, and no decoded record to fall back on
    with pytest.raises(RuntimeError, match="an upsert without its record"):
        rx.store_batch(checked)
    assert world.a.store.get_record(checked.locals[j], checked.subjects[j]) is None  # nothing half-stored


def test_only_records_the_validator_passed_whole_keep_its_fingerprint(world: World) -> None:
    _mixed_batch(world)
    rx = world.receiver(world.a)
    rx.apply(delivered(world.publish()))  # nothing new
    world.p.store.upsert_many("open", [("w1", dict(person(1), id="w1"))])
    world.p.store.upsert_many("population", [("m1", dict(person(3), id="m1"))])
    result = rx.apply(delivered(world.publish()))
    assert result.stored == 2 and not result.rejected
    whole = world.a.store.get_record(local_dataset_id(world.p.node.code, "open"), "w1")
    masked = world.a.store.get_record(local_dataset_id(world.p.node.code, "population"), "m1")
    assert whole is not None and whole.checked == rx.validator.fingerprint
    assert masked is not None and masked.checked is None  # masked and projected: validated in part only


def test_the_inbox_keeps_the_newest_version_of_many(world: World) -> None:
    from node.transport.kafka._inbox import known_versions, remember_versions

    store = world.a.store
    rows = [("ds", f"r{i % 300}", 1 + (i * 7) % 5, "P", "t", i % 3, i, 1) for i in range(1000)]
    with store.transaction() as conn:
        remember_versions(conn, rows)
    expected: dict[str, int] = {}
    for _d, rid, version, *_rest in rows:
        expected[rid] = max(expected.get(rid, 0), version)
    with store.transaction() as conn:
        assert known_versions(conn, "ds", sorted(expected)) == expected
    newest = received_version(store, "ds", "r7")
    assert newest is not None and newest.version == expected["r7"]
    # the first message with the newest version is kept (an equal version later is a duplicate)
    assert newest.offset == min(i for _d, rid, v, _p, _t, _pa, i, _u in rows if rid == "r7" and v == expected["r7"])


def test_with_known_partitions_each_tree_is_signed_within_one_partition(world: World) -> None:
    from node.transport.kafka import partition_for

    world.p.store.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(700)])
    world.p.store.upsert_many("open", [(f"o{i}", dict(person(i, "o"), name="赵某")) for i in range(0, 700, 7)])
    topic = shared_topic(world.p.node.code, "open")
    pub = world.publisher()
    batch = pub.prepare(2000, partitions={topic: [0, 1, 2]})
    assert batch is not None and len(batch.messages) == 800
    trees: dict[bytes, set[int]] = {}
    for m in batch.messages:
        trees.setdefault(dict(m.headers)["ce_signature"], set()).add(partition_for(m.key, [0, 1, 2]))
    assert all(len(parts) == 1 for parts in trees.values()) and len(trees) >= 3
    versions = [(m.key, dict(m.headers)["ce_recordversion"]) for m in batch.messages if m.key == b"o7"]
    assert versions == [(b"o7", b"1"), (b"o7", b"2")]  # a key's versions keep their order
    # every message still verifies on its own, and the consumer stores all of them
    result = world.receiver(world.a).apply([Incoming(m.topic, partition_for(m.key, [0, 1, 2]), i, m.key, m.value,
                                                     tuple(m.headers)) for i, m in enumerate(batch.messages)])
    assert (result.stored, result.rejected) == (800, [])


def test_a_failed_check_helper_refuses_work_and_the_node_checks_by_itself(world: World) -> None:
    from node.transport.kafka._pool import CheckPool, HelperError

    rx = world.receiver(world.a)
    assert not CheckPool.supported(object())  # a validator the helper cannot rebuild: no helper
    pool = CheckPool(node_code=world.a.node.code, subscriptions=[], validator=rx.validator, encryption_key=None)
    pool.start()
    try:
        assert pool._started is not None and pool._started.result(60) and pool.available()
        assert pool._proc is not None
        pool._proc.kill()
        pool._proc.wait(10)
        future = pool.submit([], world.directory)
        with pytest.raises(HelperError):
            future.result(30)
        assert pool.failed and not pool.available()
        with pytest.raises(HelperError):
            pool.submit([], world.directory).result(1)
    finally:
        pool.close()


def test_batches_sent_while_the_check_helper_starts_wait_for_it(world: World) -> None:
    from node.transport.kafka._pool import CheckPool, unpack_outcomes
    from node.transport.kafka._receiver import CheckedBatch

    batch = _mixed_batch(world)
    rx = world.receiver(world.a)
    pool = CheckPool(node_code=world.a.node.code, subscriptions=world.a.cfg.kafka.subscriptions,  # type: ignore[union-attr]
                     validator=rx.validator, encryption_key=load_encryption_key(world.a.cfg.encryption_key))
    assert not pool.usable()  # not spawned yet
    pool.start()
    try:
        assert pool.usable()
        future = pool.submit(batch, world.directory)  # before it answered its start
        there = unpack_outcomes(batch, future.result(60))
        assert pool.available()
        assert there == dataclasses.replace(CheckedBatch.of(rx.check_many(batch)), records=None)
    finally:
        pool.close()
    assert not pool.usable()


def test_batches_sent_to_a_check_helper_that_fails_to_start_fail_and_are_checked_in_the_node(world: World) -> None:
    from node.transport.kafka._pool import CheckPool, HelperError

    rx = world.receiver(world.a)
    pool = CheckPool(node_code=world.a.node.code, subscriptions=[], validator=rx.validator, encryption_key=None)
    pool._init = ("not", "the", "arguments")  # type: ignore[assignment]  # its start fails
    pool.start()
    try:
        future = pool.submit(_mixed_batch(world)[:3], world.directory)
        with pytest.raises(HelperError):
            future.result(60)
        assert not pool.available()
    finally:
        pool.close()
