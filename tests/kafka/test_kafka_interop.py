"""Interop with a client nobody here wrote: confluent-kafka (librdkafka).

Messages are built by hand from the envelope's specification (node/transport/kafka/_envelope.py
module docstring) with hashlib and cryptography only, and what the node publishes is
checked the same way. Partitions are assigned directly (a librdkafka consumer group
takes ~20 s to join on Tansu).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kafka_testkit import Federation, count_records, person, start_exchange, status, stop_process, wait_for

from node.store import Store
from node.transport.kafka import dead_letter_topic, local_dataset_id, shared_topic

pytestmark = pytest.mark.integration

DOMAIN = b"shulian-ce-signature/1\x00"


# ---- the specification, written out independently -----------------------------------
def enc(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def leaf(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> bytes:
    signed = sorted((n, v) for n, v in headers
                    if (n.startswith("ce_") and n not in ("ce_signature", "ce_sigproof")) or n == "content-type")
    data = b"\x00" + enc(key) + enc(hashlib.sha256(value).digest())
    data += b"".join(enc(n.encode()) + enc(v) for n, v in signed)
    return hashlib.sha256(data).digest()


def inner(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from(leaf_hash: bytes, proof: bytes) -> bytes:
    h = leaf_hash
    for i in range(0, len(proof), 33):
        side, sibling = proof[i:i + 1], proof[i + 1:i + 33]
        h = inner(sibling, h) if side == b"L" else inner(h, sibling)
    return h


def ce_headers(provider: str, record_id: str, version: int = 1) -> list[tuple[str, bytes]]:
    return [("ce_specversion", b"1.0"), ("ce_id", f"open/{record_id}/{version}".encode()),
            ("ce_source", f"https://w3id.org/shulian/dept/{provider}".encode()),
            ("ce_type", b"org.w3id.shulian.record.upserted"), ("ce_subject", record_id.encode()),
            ("ce_time", b"2025-06-01T08:00:00Z"), ("content-type", b"application/json"),
            ("ce_dataset", b"open"), ("ce_recordversion", str(version).encode()), ("ce_recordtype", b"Person")]


def sign_three(key: ed25519.Ed25519PrivateKey, msgs: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    """Sign a batch of three messages with one hand-built hash tree (appends the two headers)."""
    l0, l1, l2 = (leaf(k, v, h) for k, v, h in msgs)
    n01 = inner(l0, l1)
    root = inner(n01, l2)
    signature = base64.b64encode(key.sign(DOMAIN + root))
    proofs = [b"R" + l1 + b"R" + l2, b"L" + l0 + b"R" + l2, b"L" + n01]
    for (_k, _v, h), proof in zip(msgs, proofs, strict=True):
        h += [("ce_signature", signature), ("ce_sigproof", base64.b64encode(proof))]


def sign_alone(key: ed25519.Ed25519PrivateKey, k: bytes, v: bytes, h: list[tuple[str, bytes]]) -> None:
    h += [("ce_signature", base64.b64encode(key.sign(DOMAIN + leaf(k, v, h)))), ("ce_sigproof", b"")]


def read_all(bootstrap: str, topic: str, n: int, timeout: float = 30.0) -> list[Any]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-reader", "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + timeout
        parts: dict[int, Any] = {}
        while not parts and time.monotonic() < deadline:  # the topic may not be made yet
            meta = c.list_topics(topic, timeout=10).topics.get(topic)
            parts = meta.partitions if meta is not None and meta.error is None else {}
            if not parts:
                time.sleep(0.2)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list[Any] = []
        while len(out) < n and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                out.append(m)
        return out
    finally:
        c.close()


def test_confluent_kafka_reads_what_the_node_publishes_and_writes_what_it_accepts(federation: Federation,
                                                                                 broker: str) -> None:
    p, a = federation.node("prov"), federation.node("a")
    p.publish("open", "unconditional")
    a.subscribe(p, "open")
    local = local_dataset_id(p.code, "open")
    directory = json.loads((federation.ca / "federation.json").read_text(encoding="utf-8"))
    p_public = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(
        next(m["signing_key"] for m in directory["members"] if m["code"] == p.code)))
    p_private = serialization.load_pem_private_key((p.dir / "keys" / "signing.pem").read_bytes(), password=None)
    assert isinstance(p_private, ed25519.Ed25519PrivateKey)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs += [start_exchange(p), start_exchange(a)]
        with Store(p.store_path) as store:
            store.ensure_dataset("open", "Person", publish=True)
            store.upsert_many("open", [(f"o{i}", person(i, "o")) for i in range(5)])
        wait_for(lambda: count_records(a.store_path, local) == 5, 60, "the node-to-node round trip",
                 procs=[(procs[0], p), (procs[1], a)])

        # 1. librdkafka reads the node's messages: CloudEvents headers, a signature that verifies by hand
        published = read_all(broker, shared_topic(p.code, "open"), 5)
        assert len(published) == 5
        for m in published:
            h = dict(m.headers())
            assert h["ce_specversion"] == b"1.0" and h["content-type"] == b"application/json"
            assert h["ce_source"] == f"https://w3id.org/shulian/dept/{p.code}".encode()
            assert h["ce_type"] == b"org.w3id.shulian.record.upserted"
            assert h["ce_subject"] == m.key() and h["ce_dataset"] == b"open" and h["ce_recordtype"] == b"Person"
            assert h["ce_recordversion"] == b"1" and h["ce_time"].endswith(b"Z")
            record = json.loads(m.value())
            assert record == person(int(m.key()[1:]), "o")
            root = root_from(leaf(m.key(), m.value(), m.headers()), base64.b64decode(h["ce_sigproof"]))
            p_public.verify(base64.b64decode(h["ce_signature"]), DOMAIN + root)  # raises if forged

        # 2. librdkafka writes hand-built CloudEvents into the provider's topic
        batch = [(f"cf{i}".encode(), json.dumps(dict(person(100 + i, "o"), id=f"cf{i}")).encode(),
                  ce_headers(p.code, f"cf{i}")) for i in range(3)]
        sign_three(p_private, batch)
        forged = (b"cf-forged", json.dumps(dict(person(7, "o"), id="cf-forged")).encode(),
                  ce_headers(p.code, "cf-forged"))
        sign_alone(ed25519.Ed25519PrivateKey.generate(), *forged)
        bad_id = dict(person(8, "o"), id="cf-bad")
        bad_id["identityNumber"] = bad_id["identityNumber"][:17] + ("1" if bad_id["identityNumber"][17] != "1" else "2")
        invalid = (b"cf-bad", json.dumps(bad_id).encode(), ce_headers(p.code, "cf-bad"))
        sign_alone(p_private, *invalid)
        junk = (b"cf-junk", b"\x89PNG not json", ce_headers(p.code, "cf-junk"))
        sign_alone(p_private, *junk)
        producer = Producer({"bootstrap.servers": broker})
        for k, v, h in [*batch, forged, invalid, junk]:
            producer.produce(shared_topic(p.code, "open"), value=v, key=k, headers=h)
        assert producer.flush(30) == 0
        del producer

        wait_for(lambda: count_records(a.store_path, local) == 8, 60, "the hand-built records to be stored",
                 procs=[(procs[1], a)])
        with Store(a.store_path) as store:
            assert store.get_record(local, "cf1").data == dict(person(101, "o"), id="cf1")  # type: ignore[union-attr]
            held = {dict(i.headers)["ce_subject"]: i.reason for i in store.quarantine_list()}
        assert {k: v.split(":")[0] for k, v in held.items()} == {
            b"cf-forged": "BAD_SIGNATURE", b"cf-bad": "INVALID_RECORD", b"cf-junk": "UNPARSEABLE"}

        # 3. and reads the dead letters, with the original message and the reason
        dead = {m.key(): m for m in read_all(broker, dead_letter_topic(a.code), 3)}
        assert set(dead) == {b"cf-forged", b"cf-bad", b"cf-junk"}
        for k, v, h in (forged, invalid, junk):
            got = dead[k]
            assert got.value() == v
            assert all(pair in got.headers() for pair in h)  # every original header kept
        reasons = {k: dict(m.headers())["shulian_dlq_reason"] for k, m in dead.items()}
        assert reasons == {b"cf-forged": b"BAD_SIGNATURE", b"cf-bad": b"INVALID_RECORD", b"cf-junk": b"UNPARSEABLE"}
        violations = json.loads(dict(dead[b"cf-bad"].headers())["shulian_dlq_violations"])
        assert [(v["path"], v["constraint"]) for v in violations] == [("identityNumber", "GB11643Check")]
        wait_for(lambda: status(a).get("quarantined") == 3, 10, "the consumer's status to count the three")
    finally:
        for proc in procs:
            stop_process(proc)
