"""The check helper's batch path (Checker.check_batch) against the message-by-message one (check_many).

check_batch decodes, encodes, hashes and validates the values of a batch's upserts together
(node._fastprep.flat_columns and Validator.unclear_rows) where it can, and takes check_many's
steps for everything else; its outcomes must be check_many's, except that a record accepted by
columns carries no decoded record (its body and digest are there), and what the helper sends
(pack_outcomes) must be the same. Batches here mix clean, invalid, masked, partial,
encrypted, deleted, mis-keyed, unsigned, tampered and hostile messages, signed as one tree by the
provider, as a publisher would.
"""

from __future__ import annotations

import base64
import json
import marshal
import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kafka_testkit import Federation, person

import node.transport.kafka._receiver as receiver
from node.federation import FederationDirectory, load_node_directory
from node.pki import load_encryption_key, load_signing_key
from node.transport.kafka import (
    H_PROOF,
    H_SIGNATURE,
    Incoming,
    consumer_topic,
    leaf_hash,
    shared_topic,
    source_for,
)
from node.transport.kafka._crypto import ENCRYPTION_SCHEME, Sealer
from node.transport.kafka._envelope import (
    CONTENT_TYPE,
    SPECVERSION,
    TYPE_DELETED,
    TYPE_UPSERTED,
    merkle_sign_b64,
    rfc3339_us,
)
from node.transport.kafka._pool import pack_outcomes, unpack_outcomes
from node.transport.kafka._receiver import Accepted, Checker, Rejected
from node.validation import get_validator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from test_fastprep import records as fastprep_records  # noqa: E402  # hostile and odd (id, payload) pairs

Outcome = Accepted | Rejected


@dataclass
class World:
    provider: str
    consumer: str
    signer: ed25519.Ed25519PrivateKey
    recipient: x25519.X25519PublicKey
    directory: FederationDirectory
    checker_args: dict[str, Any]

    def checker(self) -> Checker:
        return Checker(**self.checker_args)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    fed = Federation(tmp_path_factory.mktemp("check-batch"), "127.0.0.1:9")  # no broker needed
    p, a = fed.node("prov"), fed.node("a")
    p.publish("open", "unconditional")
    p.publish("population", "conditional", code="1010100/000002")
    a.subscribe(p, "open")
    a.subscribe(p, "population")
    p.write_config()
    a.write_config()
    p_cfg, a_cfg = p.load(), a.load()
    directory = load_node_directory(p_cfg)
    key = load_encryption_key(a_cfg.encryption_key)
    yield World(p.code, a.code, load_signing_key(p_cfg.signing_key), key.public_key(), directory,
                {"node_code": a.code, "subscriptions": a_cfg.kafka.subscriptions, "validator": get_validator("fast"),
                 "directory": lambda: directory, "encryption_key": key})


# ---- messages ------------------------------------------------------------------------------------
def _person_payload(i: int, rid: str, variant: int) -> bytes:
    """A Person value: clean, or one of the ways a record may be odd, invalid or hostile."""
    rec: dict[str, Any] = dict(person(i), id=rid)
    dumps = lambda r: json.dumps(r, ensure_ascii=False).encode()  # noqa: E731
    match variant:
        case 0 | 1 | 2 | 3:
            return dumps(rec)  # clean (the common case)
        case 4:
            return dumps(dict(rec, sex="7"))  # a violation
        case 5:
            return dumps(dict(rec, identityNumber=rec["identityNumber"][:17] + "Z"))
        case 6:
            return dumps({k: v for k, v in rec.items() if k not in ("name", "birthDate")})  # missing (partial?)
        case 7:
            return dumps(dict(rec, extra="x"))  # a key the type has not
        case 8:
            return dumps({**{k: v for k, v in rec.items() if k != "type"}, "@type": "Person"})
        case 9:
            return dumps(dict(rec, type="LegalEntity"))
        case 10:
            return dumps(dict(rec, type=None))
        case 11:
            return dumps({k: v for k, v in rec.items() if k != "type"})
        case 12:
            return dumps(dict(rec, id=rid + "x"))  # the id differs from ce_subject
        case 13:
            return dumps(dict(rec, big=10**19))  # beyond orjson's integers in flat_columns
        case 14:
            return dumps(dict(rec, big=2**70))
        case 15:
            return dumps(dict(rec, score=1.5))
        case 16:
            return dumps(dict(rec, tags=["a"]))
        case 17:
            return dumps(rec)[:-1] + b',"sex":"1"}'  # a duplicate key
        case 18:
            return json.dumps(rec).encode()  # \\u escapes
        case 19:
            return b"\xef\xbb\xbf" + dumps(rec)
        case 20:
            return dumps(rec) + b" x"
        case 21:
            return dumps(rec)[:-3]
        case 22:
            return b"[1]"
        case 23:
            return dumps(dict(rec, name="\u2028\x7f", sex=None, flag=True))
        case 24:
            return dumps(dict(rec, householdDivision=110000))  # a number where a code belongs
        case _:
            return dumps({"id": rid})  # almost nothing


_VARIANTS = 26
_DECLINED = range(12, 23)  # the variants flat_columns declines (the batch then takes check_many's steps)
_TAKEN = [v for v in range(_VARIANTS) if v not in _DECLINED]


@dataclass
class Spec:
    rid: str
    payload: bytes | None  # None: a deletion
    topic: str  # "open", "population" (the consumer topic) or "stranger"
    encrypt: bool
    record_type: bytes | None
    masked: bytes | None
    partial: bool
    fault: str  # "", "key", "unsigned", "tampered", "recipient", "deleted-data", "empty"


@st.composite
def specs(draw: st.DrawFn, i: int, tame: bool) -> Spec:
    """``tame``: values flat_columns takes (clean, invalid, odd), so that a batch goes by columns."""
    topic = draw(st.sampled_from(["open", "open", "open", "population", "population", "stranger"]))
    if not tame and draw(st.integers(0, 5)) == 0:  # an odd or hostile value from test_fastprep (often not a good id)
        (rid, payload), _common = draw(fastprep_records())
        if not isinstance(rid, str) or not rid or not isinstance(payload, bytes):
            rid, payload = f"r{i}", b"{}"
        try:
            rid.encode("utf-8")
        except UnicodeEncodeError:
            rid = f"r{i}"
    else:
        rid = f"p{i}"
        variant = draw(st.sampled_from(_TAKEN) if tame else st.integers(0, _VARIANTS - 1))
        payload = _person_payload(i, rid, variant)
    deleted = draw(st.integers(0, 9)) == 0
    return Spec(
        rid=rid, payload=None if deleted else payload, topic=topic,
        encrypt=draw(st.integers(0, 5)) != 0 if topic == "population" else draw(st.integers(0, 9)) == 0,
        record_type=draw(st.sampled_from([b"Person"] * 6 + [b"LegalEntity", None, b"Nope"])),
        masked=draw(st.sampled_from([None] * (12 if tame else 3) + [b"identityNumber", b"identityNumber,name",
                                                                      b"name,,sex"])),
        partial=draw(st.booleans()),
        fault=draw(st.sampled_from([""] * 20 + ["key", "unsigned", "tampered", "recipient", "deleted-data", "empty"])),
    )


def build(w: World, batch: list[Spec], start: int = 0) -> list[Incoming]:
    """The specs as a publisher sends them (one signed tree), then as Kafka hands them out."""
    sealer = Sealer(w.recipient)
    topics = {"open": shared_topic(w.provider, "open"), "population": consumer_topic(w.provider, "population",
                                                                                     w.consumer),
              "stranger": shared_topic("91110000MA00000000", "open")}
    unsigned: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    for n, s in enumerate(batch):
        dataset = b"population" if s.topic == "population" else b"open"
        common = [("ce_specversion", SPECVERSION), ("ce_source", source_for(w.provider).encode()),
                  ("ce_dataset", dataset)]
        if s.record_type is not None:
            common.append(("ce_recordtype", s.record_type))
        if s.partial:
            common.append(("ce_projection", b"partial"))
        if s.masked is not None:
            common.append(("ce_masked", s.masked))
        if s.encrypt:
            recipient = b"91110000MA00000000" if s.fault == "recipient" else w.consumer.encode()
            common += [("ce_encryption", ENCRYPTION_SCHEME.encode()), ("ce_encepk", sealer.epk_b64),
                       ("ce_recipient", recipient)]
        value = s.payload
        if value is None and s.fault == "deleted-data":
            value = b"{}"
        if value is not None and s.fault == "empty":
            value = b""
        deleting = s.payload is None
        head = [("ce_type", TYPE_DELETED.encode()), *common] if deleting else \
            [("ce_type", TYPE_UPSERTED.encode()), ("content-type", CONTENT_TYPE), *common]
        key = s.rid.encode("utf-8")
        ce_id = f"{dataset.decode()}/{s.rid}/{start + n + 1}".encode()
        if value and s.encrypt:
            value = sealer.seal(value, ce_id)
        own = [("ce_id", ce_id), ("ce_subject", key), ("ce_time", rfc3339_us(1_700_000_000_000_000 + n).encode()),
               ("ce_recordversion", b"%d" % (start + n + 1))]
        unsigned.append((topics[s.topic], b"other" if s.fault == "key" else key, value, head + own))
    _root, signature, proofs = merkle_sign_b64(w.signer, [leaf_hash(k, v, h) for _t, k, v, h in unsigned])
    sig = base64.b64encode(signature)
    out = []
    for n, ((topic, key, value, headers), proof, s) in enumerate(zip(unsigned, proofs, batch, strict=True)):
        if s.fault != "unsigned":
            headers = [*headers, (H_SIGNATURE, sig), (H_PROOF, proof)]
        if s.fault == "tampered" and value:
            value = value[:-1] + bytes([value[-1] ^ 1])
        out.append(Incoming(topic, 0, start + n, key, value, tuple(headers)))
    return out


def pack_by_message(outcomes: list[Outcome]) -> tuple[Any, ...]:
    """pack_outcomes as it was written before it packed column by column: message after message."""
    cols: list[list[Any]] = [[] for _ in range(11)]
    rejections: list[tuple[int, bytes]] = []
    for i, o in enumerate(outcomes):
        if isinstance(o, Accepted):
            env = o.env
            for col, value in zip(cols, (i, env.subject, env.version, env.type == TYPE_DELETED, o.checked, o.body,
                                         o.digest, o.local_dataset, o.record_type, env.provider, env.dataset),
                                  strict=True):
                col.append(value)
        else:
            rejections.append((i, pickle.dumps((o.code, o.detail, o.violations, o.provider, o.dataset),
                                               protocol=pickle.HIGHEST_PROTOCOL)))
    return (*cols, rejections)


# ---- the comparison ------------------------------------------------------------------------------
def assert_same(new: list[Outcome], old: list[Outcome]) -> int:
    """check_batch's outcomes are check_many's; returns how many were accepted by columns."""
    assert len(new) == len(old)
    by_columns = 0
    for n, o in zip(new, old, strict=True):
        assert type(n) is type(o)
        if isinstance(o, Rejected):
            assert n == o
            continue
        assert isinstance(n, Accepted)
        assert n._replace(record=None) == o._replace(record=None)
        if n.record is None and o.record is not None:
            by_columns += 1
            assert n.checked and n.body is not None
        else:
            assert n.record == o.record
    packed = pack_outcomes(new)
    assert packed == pack_outcomes(old) == pack_by_message(old) == pack_by_message(new)
    assert marshal.loads(marshal.dumps(packed)) == pack_outcomes(old)  # as the node reads it
    msgs = [o.msg for o in old]
    assert unpack_outcomes(msgs, packed) == unpack_outcomes(msgs, pack_outcomes(old))
    return by_columns


def compare(w: World, msgs: list[Incoming]) -> int:
    # fresh checkers: what one remembers of signature trees never changes a verdict, but keep them apart
    return assert_same(w.checker().check_batch(msgs), w.checker().check_many(msgs))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(1, 24), tame=st.booleans())
def test_check_batch_gives_check_manys_outcomes(world: World, data: st.DataObject, size: int, tame: bool) -> None:
    batch = [data.draw(specs(i, tame)) for i in range(size)]
    msgs = build(world, batch)
    by_columns = compare(world, msgs)
    event("some accepted by columns" if by_columns else "none accepted by columns")
    event("some rejected" if any(isinstance(o, Rejected) for o in world.checker().check_many(msgs)) else "none rejected")


@pytest.mark.parametrize("variant", range(_VARIANTS))
def test_each_kind_of_value_in_a_common_batch(world: World, variant: int) -> None:
    """One odd value among clean ones (in the open topic and encrypted), as the bench's batches are."""
    for topic, encrypt in (("open", False), ("population", True), ("open", True)):
        batch = [Spec(f"p{i}", _person_payload(i, f"p{i}", 0), topic, encrypt, b"Person", None, False, "")
                 for i in range(40)]
        batch[17] = Spec("p17", _person_payload(17, "p17", variant), topic, encrypt, b"Person", None, False, "")
        by_columns = compare(world, build(world, batch))
        if variant in _DECLINED:  # flat_columns declines the batch: every record takes check_many's steps
            assert by_columns == 0
        elif receiver._fastprep is not None:  # the batch stays the common one
            assert by_columns >= 39


def test_masked_partial_deleted_and_refused_messages_beside_clean_ones(world: World) -> None:
    batch = [Spec(f"p{i}", _person_payload(i, f"p{i}", i % _VARIANTS), "open", False, b"Person", None, False, "")
             for i in range(60)]
    batch[3].masked = b"identityNumber"
    batch[4].partial, batch[4].payload = True, _person_payload(4, "p4", 6)
    batch[5].payload = None
    batch[6].fault = "tampered"
    batch[7].fault = "unsigned"
    batch[8].fault = "key"
    batch[9].record_type = None
    batch[10].record_type = b"LegalEntity"
    batch[11].topic, batch[11].encrypt = "population", True
    batch[12].topic = "population"  # not encrypted on a consumer topic
    batch[13].topic = "stranger"
    compare(world, build(world, batch))


def test_the_common_batch_is_checked_by_columns(world: World) -> None:
    batch = [Spec(f"p{i}", _person_payload(i, f"p{i}", 0), "open", False, b"Person", None, False, "")
             for i in range(300)]
    msgs = build(world, batch)
    by_columns = compare(world, msgs)
    assert by_columns == (300 if receiver._fastprep is not None else 0)
    checked = world.checker().check_batch(msgs)
    assert all(isinstance(o, Accepted) and o.checked and o.record_type == "Person" for o in checked)
    # redelivered in the same checker: what it remembers of the tree changes nothing
    checker = world.checker()
    first, again = checker.check_batch(msgs), checker.check_batch(msgs)
    assert first == again


def test_without_the_c_module_every_record_takes_check_manys_steps(world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiver, "_fastprep", None)
    batch = [Spec(f"p{i}", _person_payload(i, f"p{i}", i % _VARIANTS), "open", i % 3 == 0, b"Person", None, False, "")
             for i in range(60)]
    msgs = build(world, batch)
    new, old = world.checker().check_batch(msgs), world.checker().check_many(msgs)
    assert new == old  # the records too


def test_an_empty_batch(world: World) -> None:
    assert world.checker().check_batch([]) == []
