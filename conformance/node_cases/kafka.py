"""Kafka cases (only for a node tested with ``--kafka BOOTSTRAP``): what the node publishes carries the
CloudEvents headers and a valid signature (KFK-01); a conditional consumer's topic carries only that
consumer's projection, encrypted to it and masked as granted (KFK-02).

Black-box: the kit reads the node's topics with its own aiokafka consumer (partitions assigned directly,
read from the beginning to the end offsets seen at the start, bounded in time) and checks every message
with the envelope's specification (``node/transport/kafka/README.md``) written out here from the text,
with hashlib and the ``cryptography`` primitives only; it never uses the node's Kafka code.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance._node import NodeContext
from conformance._registry import case
from conformance.node_cases._support import (
    encode,
    ensure_ready,
    fixture_records,
    param_list,
    param_path,
    parse_masking,
    projection_problems,
    push,
    require_ok,
    run_tag,
    valid_person,
)
from node.errors import InputError, Unavailable

__all__ = ["events_signed", "consumer_topic_projected", "Message", "leaf", "root_from", "verify_message",
           "header_problems", "open_value"]

log = logging.getLogger(__name__)

SPECVERSION = "1.0"
SOURCE_PREFIX = "https://w3id.org/shulian/dept/"
TYPES = ("org.w3id.shulian.record.upserted", "org.w3id.shulian.record.deleted")
DOMAIN = b"shulian-ce-signature/1\x00"
ENCRYPTION = "x25519-hkdf-sha256-aes256gcm"
HKDF_INFO = b"shulian-kafka-value/1"
REQUIRED = ("ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_specversion")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_WAIT = 20.0  # seconds the kit waits for the node to publish what it expects


# ------------------------------------------------------------------ the envelope's specification, independently


@dataclass(frozen=True)
class Message:
    """One Kafka message as read: where it came from, key, value, headers (in wire order)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v.decode("utf-8", "replace")
        return None


def _enc(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _signed(name: str) -> bool:
    return (name.startswith("ce_") and name not in ("ce_signature", "ce_sigproof")) or name == "content-type"


def leaf(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> bytes:
    """SHA-256(0x00 || enc(key) || enc(SHA-256(value)) || enc(name) || enc(value) ... over the signed headers)."""
    data = b"\x00" + _enc(key or b"") + _enc(hashlib.sha256(value or b"").digest())
    data += b"".join(_enc(n.encode("utf-8")) + _enc(v) for n, v in sorted((n, v or b"") for n, v in headers
                                                                       if _signed(n)))
    return hashlib.sha256(data).digest()


def root_from(leaf_hash: bytes, proof: bytes) -> bytes:
    """Walk a Merkle proof (33-byte steps: ``L``/``R`` and the sibling) up to the root."""
    if len(proof) % 33:
        raise ValueError(f"the proof is {len(proof)} bytes, not a multiple of 33")
    h = leaf_hash
    for i in range(0, len(proof), 33):
        side, sibling = proof[i:i + 1], proof[i + 1:i + 33]
        if side == b"L":
            h = hashlib.sha256(b"\x01" + sibling + h).digest()
        elif side == b"R":
            h = hashlib.sha256(b"\x01" + h + sibling).digest()
        else:
            raise ValueError(f"proof step {i // 33} names side {side!r}, not L or R")
    return h


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not base64") from exc


def verify_message(m: Message, public_key: Any) -> str | None:
    """None when ``ce_signature``/``ce_sigproof`` prove the message under ``public_key`` (Ed25519); else why not."""
    from cryptography.exceptions import InvalidSignature

    sig_text = m.header("ce_signature")
    if not sig_text:
        return "it carries no ce_signature"
    try:
        signature = _b64(sig_text, "ce_signature")
        proof = _b64(m.header("ce_sigproof") or "", "ce_sigproof")
        root = root_from(leaf(m.key, m.value, m.headers), proof)
    except ValueError as exc:
        return str(exc)
    try:
        public_key.verify(signature, DOMAIN + root)
    except InvalidSignature:
        return "its signature does not verify against the provider's signing key"
    return None


def header_problems(m: Message, provider: str) -> list[str]:
    """How a message's CloudEvents headers (binary mode) differ from the envelope's specification."""
    names = [n for n, _ in m.headers]
    out = [f"header {n} appears twice" for n in sorted({n for n in names if names.count(n) > 1})]
    got = {n: m.header(n) for n in (*REQUIRED, "content-type")}
    out += [f"header {n} is missing" for n in REQUIRED if not got[n]]
    if got["ce_specversion"] and got["ce_specversion"] != SPECVERSION:
        out.append(f"ce_specversion is {got['ce_specversion']!r}, not {SPECVERSION}")
    if got["ce_source"] and got["ce_source"] != SOURCE_PREFIX + provider:
        out.append(f"ce_source is {got['ce_source']!r}, not {SOURCE_PREFIX + provider}")
    ce_type = got["ce_type"]
    if ce_type and ce_type not in TYPES:
        out.append(f"ce_type {ce_type!r} is not one of {', '.join(TYPES)}")
    key = (m.key or b"").decode("utf-8", "replace")
    if got["ce_subject"] is not None and got["ce_subject"] != key:
        out.append(f"ce_subject {got['ce_subject']!r} is not the message key {key!r}")
    if got["ce_time"] and not _RFC3339.match(got["ce_time"]):
        out.append(f"ce_time {got['ce_time']!r} is not an RFC 3339 time")
    elif got["ce_time"]:
        try:
            dt.datetime.fromisoformat(got["ce_time"].replace("z", "Z"))
        except ValueError:
            out.append(f"ce_time {got['ce_time']!r} is not a valid time")
    if ce_type == TYPES[0]:
        ctype = (got["content-type"] or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            out.append(f"content-type is {got['content-type']!r}, not application/json")
        if not m.value:
            out.append("an upsert carries no value")
    return [f"{m.where}: {p}" for p in out]


def open_value(m: Message, private_key: Any) -> bytes:
    """Decrypt a consumer topic's value: X25519 with ``ce_encepk``, HKDF-SHA256, AES-256-GCM (aad ``ce_id``)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import x25519
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    epk = _b64(m.header("ce_encepk") or "", "ce_encepk")
    if len(epk) != 32:
        raise ValueError(f"ce_encepk is {len(epk)} bytes, not a 32-byte X25519 key")
    raw = serialization.Encoding.Raw
    recipient = private_key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    shared = private_key.exchange(x25519.X25519PublicKey.from_public_bytes(epk))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + recipient, info=HKDF_INFO).derive(shared)
    value = m.value or b""
    if len(value) < 12 + 16:
        raise ValueError(f"the value is {len(value)} bytes, too short for nonce and tag")
    try:
        return AESGCM(key).decrypt(value[:12], value[12:], (m.header("ce_id") or "").encode("utf-8"))
    except InvalidTag as exc:
        raise ValueError("the value does not decrypt with the consumer's X25519 key (aad ce_id)") from exc


# ------------------------------------------------------------------ keys and topics


def _provider_key(ctx: NodeContext) -> tuple[Any, str]:
    """The provider's Ed25519 key: from the signed federation directory (its CA signature checked), else
    the ``provider_signing_key`` parameter; and where it came from."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    provider = ctx.param("provider_code")
    params = ctx.target.params
    if params.get("federation_directory"):
        b64, where = _directory_key(ctx, provider), "the federation directory"
        given = params.get("provider_signing_key")
        ctx.check(not given or given == b64, "the provider_signing_key parameter is not the provider's key in "
                                             "the federation directory")
    elif params.get("provider_signing_key"):
        b64, where = params["provider_signing_key"], "the provider_signing_key parameter"
    else:
        ctx.cant_tell(f"{ctx.case.id} needs the provider's signing key: --param federation_directory=FILE or "
                      "provider_signing_key=BASE64 (or --params FILE from `shulian-conform fixture load`)")
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True)), where
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"the provider's signing key in {where} is not a base64 Ed25519 key ({exc})") from exc


def _directory_key(ctx: NodeContext, provider: str) -> str:
    """The provider's signing key in the directory file, after checking the directory's ES256 signature
    against the federation CA (``--ca`` or the ``ca`` parameter)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    path = param_path(ctx, "federation_directory")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the federation_directory parameter: {path}: cannot read it ({exc})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a federation directory is a JSON object")
    signature = doc.pop("signature", None)
    ca_path = ctx.target.ca_cert or (param_path(ctx, "ca") if "ca" in ctx.target.params else None)
    if ca_path is None:
        ctx.cant_tell(f"{ctx.case.id}: the federation CA (--ca) is needed to trust the federation directory")
    try:
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        sig = base64.b64decode(str((signature or {}).get("value", "")), validate=True)
    except (OSError, ValueError, binascii.Error) as exc:
        raise InputError(f"cannot read the federation CA {ca_path} or the directory's signature ({exc})") from exc
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ca_key = ca.public_key()
    ctx.check(isinstance(ca_key, ec.EllipticCurvePublicKey), "the federation CA's key is not an EC key (ES256)")
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    try:
        ca_key.verify(sig, canonical, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        ctx.cant_tell(f"{path}: the federation directory's signature does not verify against the federation CA")
    for member in doc.get("members") or ():
        if isinstance(member, dict) and member.get("code") == provider:
            return str(member.get("signing_key") or "")
    ctx.cant_tell(f"{path}: the provider {provider} is not a member of the federation directory")
    raise AssertionError("unreachable")  # pragma: no cover


def _encryption_key(ctx: NodeContext) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519

    path = param_path(ctx, "encryption_key")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"the encryption_key parameter: {path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, x25519.X25519PrivateKey):
        raise InputError(f"the encryption_key parameter: {path} is not an X25519 key")
    return key


def shared_topic(provider: str, dataset: str) -> str:
    return f"shulian.{provider}.{dataset}.v1"


def consumer_topic(provider: str, dataset: str, consumer: str) -> str:
    return f"shulian.{provider}.{dataset}.to.{consumer}"


# ------------------------------------------------------------------ reading topics


async def _read_once(ctx: NodeContext, topic: str, deadline: float) -> list[Message] | None:
    """Every message of ``topic`` up to the end offsets seen now (None: the topic does not exist).

    A fresh consumer per read: a consumer with manually assigned partitions only refreshes the
    metadata of those topics, so it would never see a topic created later."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    c = AIOKafkaConsumer(bootstrap_servers=[s.strip() for s in str(ctx.target.kafka).split(",") if s.strip()],
                         group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                         client_id="shulian-conformance-kit", request_timeout_ms=int(ctx.target.timeout * 1000))
    try:
        try:
            await asyncio.wait_for(c.start(), ctx.target.timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise Unavailable(f"the kit cannot reach Kafka at {ctx.target.kafka}: {exc or type(exc).__name__}"
                              ) from exc
        parts = c.partitions_for_topic(topic)
        if not parts:
            return None
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await asyncio.wait_for(c.end_offsets(tps), ctx.target.timeout)
        out: list[Message] = []
        pending = {tp for tp in tps if end[tp] > 0}
        while pending and time.monotonic() < deadline:
            batch = await c.getmany(*pending, timeout_ms=500)
            for tp, records in batch.items():
                out += [Message(topic, tp.partition, r.offset, r.key, r.value,
                                tuple((n, v or b"") for n, v in (r.headers or ()))) for r in records]
            for tp in list(pending):
                if await c.position(tp) >= end[tp]:
                    pending.discard(tp)
        if pending:
            ctx.fail(f"the kit could not read {topic} to its end in time")
        return out
    finally:
        await c.stop()


async def read_topic(ctx: NodeContext, topic: str, *, wait: float = _WAIT,
                     until: Callable[[list[Message]], bool] | None = None) -> list[Message] | None:
    """Every message of ``topic`` from the beginning to its end; waits (bounded by ``wait``) for the topic
    to exist and, when ``until`` is given, until ``until(messages)`` is true. None: there is no such topic."""
    deadline = time.monotonic() + wait
    while True:
        out = await _read_once(ctx, topic, deadline + 10.0)
        if out is not None and (until is None or until(out)):
            return out
        if time.monotonic() >= deadline:
            return out
        await asyncio.sleep(0.5)


def _upserts(messages: Sequence[Message]) -> list[Message]:
    return [m for m in messages if m.header("ce_type") == TYPES[0]]


# ------------------------------------------------------------------ the cases


@case("KFK-01")
async def events_signed(ctx: NodeContext) -> None:
    provider = ctx.param("provider_code")
    public_key, where = _provider_key(ctx)
    pushed = ctx.target.params.get("push_dataset")
    topics: list[str] = []
    rid = ""
    if pushed:  # a change made now, so the node has something to publish whatever it held before
        ensure_ready(ctx)
        rid = f"kit-{run_tag(ctx)}-kafka"
        from node._generated.shulian.v1 import common_pb2, records_pb2

        req = records_pb2.PushRequest(dataset=pushed, records=[common_pb2.Record(
            id=rid, payload=encode(valid_person(rid, 77)))])
        answers = require_ok(ctx, await asyncio.to_thread(push, ctx, [req]))
        ctx.check(sum(a.accepted for a in answers) == 1 and not any(a.rejected for a in answers),
                  f"the node did not accept the kit's record {rid} pushed into {pushed}")
        topics.append(shared_topic(provider, pushed))
    for name in ("unconditional_dataset",):
        if ctx.target.params.get(name):
            topics.append(shared_topic(provider, ctx.param(name)))
    if ctx.target.params.get("conditional_dataset") and ctx.target.params.get("granted_code"):
        topics.append(consumer_topic(provider, ctx.param("conditional_dataset"), ctx.param("granted_code")))
    ctx.check(topics, "no dataset to read: give push_dataset, unconditional_dataset or conditional_dataset")
    problems: list[str] = []
    counts: list[str] = []
    seen = 0
    for topic in dict.fromkeys(topics):
        if topic == topics[0] and rid:
            messages = await read_topic(ctx, topic, until=lambda ms: any(m.header("ce_subject") == rid for m in ms)
                                        ) or []
            ctx.check(any(m.header("ce_subject") == rid for m in messages),
                      f"the record {rid} the kit pushed into {pushed} was not published to {topic} within "
                      f"{_WAIT:g} s ({len(messages)} other message(s) there)")
        else:
            messages = await read_topic(ctx, topic, wait=2.0) or []
        counts.append(f"{topic}: {len(messages)} message(s)")
        seen += len(messages)
        for m in messages:
            problems += header_problems(m, provider)
            why = verify_message(m, public_key)
            if why is not None:
                problems.append(f"{m.where}: {why}")
    ctx.check(seen, f"the node published nothing to {', '.join(topics)}")
    ctx.check(not problems, f"{len(problems)} problem(s): " + "; ".join(problems[:5]))
    ctx.note(f"{seen} message(s): CloudEvents headers as specified, signatures verified with the provider's key "
             f"from {where}")
    for line in counts:
        ctx.note(line)


@case("KFK-02")
async def consumer_topic_projected(ctx: NodeContext) -> None:
    provider, dataset = ctx.param("provider_code"), ctx.param("conditional_dataset")
    consumer, items = ctx.param("granted_code"), param_list(ctx, "granted_items")
    masking = parse_masking(ctx.target.params.get("masking", ""))
    originals = fixture_records(ctx, "conditional_records")
    private_key = _encryption_key(ctx)
    public_key, _ = _provider_key(ctx)
    topic = consumer_topic(provider, dataset, consumer)
    messages = await read_topic(ctx, topic, until=lambda ms: bool(_upserts(ms))) or []
    upserts = _upserts(messages)
    ctx.check(upserts, f"no record of {dataset} was published to {topic} within {_WAIT:g} s (the consumer holds "
                       "a grant in force; load the fixture with the node's Kafka publishing on)")
    problems: list[str] = []
    seen: set[str] = set()
    for m in messages:
        why = verify_message(m, public_key)
        if why is not None:  # a forgery is refused before decryption
            problems.append(f"{m.where}: {why}")
            continue
        if m.header("ce_recipient") != consumer:
            problems.append(f"{m.where}: ce_recipient is {m.header('ce_recipient')!r}, not {consumer}")
        if m.header("ce_type") != TYPES[0]:
            continue
        if m.header("ce_encryption") != ENCRYPTION:
            problems.append(f"{m.where}: ce_encryption is {m.header('ce_encryption')!r}, not {ENCRYPTION}: the "
                            "value is not encrypted to the consumer")
            continue
        try:
            data = json.loads(open_value(m, private_key).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{m.where}: {exc}")
            continue
        rid = m.header("ce_subject") or ""
        if not isinstance(data, dict) or data.get("id") != rid:
            problems.append(f"{m.where}: the decrypted value is not a record whose id is ce_subject {rid!r}")
            continue
        original = originals.get(rid)
        if original is None:
            problems.append(f"{m.where}: record {rid} is not a record of {dataset}")
            continue
        seen.add(rid)
        problems += [f"{m.where}: {p}" for p in projection_problems(rid, data, original, items, masking)]
        problems += _declared(m, original, items, masking)
    leaked = await _open_topic_leak(ctx, provider, dataset)
    if leaked:
        problems.append(leaked)
    ctx.check(not problems, f"{len(problems)} problem(s): " + "; ".join(problems[:5]))
    ctx.note(f"{topic}: {len(upserts)} record event(s) of {len(seen)} record(s), each decrypted with the "
             f"consumer's X25519 key and exactly its projection ({', '.join(items)}; masked "
             f"{', '.join(f'{k} {v}' for k, v in masking.items()) or 'nothing'})")


def _declared(m: Message, original: Mapping[str, Any], items: Sequence[str], masking: Mapping[str, Any]
              ) -> list[str]:
    """``ce_masked`` names the masked items sent, ``ce_projection`` says ``partial`` when items were left out."""
    out = []
    masked_sent = {k for k in masking if k in items and k in original}
    declared = {x for x in (m.header("ce_masked") or "").split(",") if x}
    if declared != masked_sent:
        out.append(f"{m.where}: ce_masked names {sorted(declared)}, the grant masks {sorted(masked_sent)}")
    left_out = set(original) - {"id", "type", *items}
    if left_out and m.header("ce_projection") != "partial":
        out.append(f"{m.where}: items {sorted(left_out)} were left out but ce_projection is not 'partial'")
    return out


async def _open_topic_leak(ctx: NodeContext, provider: str, dataset: str) -> str:
    """A conditional dataset must never appear on its open (every-member) topic."""
    topic = shared_topic(provider, dataset)
    messages = await read_topic(ctx, topic, wait=0.0)
    return f"{topic}: the conditional dataset is on the open topic ({len(messages)} message(s))" if messages else ""
