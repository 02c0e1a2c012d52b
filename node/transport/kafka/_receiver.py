"""The consumer's boundary: check every message, store what passes, quarantine what fails.

Checks, in order (the first failure is the reason):

1. the topic is one of this node's subscriptions, else ``UNEXPECTED_PROVIDER``;
2. the CloudEvents headers are there and well formed, else ``UNPARSEABLE``;
3. ``ce_source`` and ``ce_dataset`` name the subscribed provider and dataset
   (``UNEXPECTED_PROVIDER`` / ``UNEXPECTED_DATASET``); the provider is a member of the
   federation directory (``UNKNOWN_PROVIDER``);
4. the signature is there (``MISSING_SIGNATURE``) and verifies with the provider's
   Ed25519 key from the directory (``BAD_SIGNATURE``); the Kafka key is ``ce_subject``;
5. a consumer topic's value is encrypted to this node (``NOT_ENCRYPTED``,
   ``WRONG_RECIPIENT``) and decrypts (``DECRYPTION_FAILED``);
6. the value is one JSON object whose ``id`` is ``ce_subject`` (``UNPARSEABLE``);
7. the fast engine finds no violation (``INVALID_RECORD``). Items the provider masked
   (``ce_masked``) are not validated; items left out of a projection
   (``ce_projection: partial``) are not required.

Passing records are stored idempotently by (dataset, id, the provider's version) in
the local dataset ``<provider>.<dataset>``; a version not newer than the one held is
a duplicate and is skipped. Failing messages go to the quarantine with their reason.
Records, quarantine rows and evidence entries of a batch commit together.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from node.config import Subscription
from node.errors import InputError, NotFound
from node.evidence import RECORDS_QUARANTINED, RECORDS_RECEIVED, EvidenceLog
from node.federation import FederationDirectory
from node.jsonenc import canonical_bytes
from node.store import RECORD_ID_RE, Store, content_hash
from node.transport.kafka._crypto import ENCRYPTION_SCHEME, DecryptionError, Opener
from node.transport.kafka._envelope import (
    TYPE_DELETED,
    Envelope,
    EnvelopeError,
    SignatureVerifier,
    read_envelope,
)
from node.transport.kafka._inbox import known_versions, remember_versions
from node.transport.kafka._topics import consumer_topic, shared_topic
from node.validation import Validator, Violation, decode_record

__all__ = [
    "Incoming",
    "Accepted",
    "Rejected",
    "BatchResult",
    "Receiver",
    "Checker",
    "local_dataset_id",
    "KEY_HEADER",
    "REASONS",
]

log = logging.getLogger(__name__)

#: the quarantine keeps the Kafka key as this extra header (the store's quarantine has no key column)
KEY_HEADER = "x-shulian-kafka-key"
REASONS = ("UNPARSEABLE", "UNEXPECTED_PROVIDER", "UNEXPECTED_DATASET", "UNKNOWN_PROVIDER", "MISSING_SIGNATURE",
           "BAD_SIGNATURE", "NOT_ENCRYPTED", "WRONG_RECIPIENT", "DECRYPTION_FAILED", "INVALID_RECORD",
           "STORE_REFUSED")
_EVIDENCE_LIST_CAP = 200
_dumps = orjson.dumps
_SORTED = orjson.OPT_SORT_KEYS
_is_record_id = RECORD_ID_RE.match
_new_accepted: Any = tuple.__new__  # Accepted(...) without its Python-level __new__


def local_dataset_id(provider: str, dataset: str) -> str:
    """The local dataset that holds what a subscription receives."""
    return f"{provider}.{dataset}"


class Incoming(NamedTuple):
    """One Kafka message as received."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class Accepted(NamedTuple):
    msg: Incoming
    env: Envelope
    record: dict[str, Any] | None  # None for a deletion (and when checked in the helper process: see body)
    local_dataset: str
    record_type: str | None
    checked: bool = False  # the whole record passed the validator (nothing masked or excused)
    body: bytes | None = None  # the record's canonical JSON, as the store keeps it (None: a deletion)
    digest: bytes = b""  # its content hash (node.store.content_hash)


@dataclass(frozen=True, slots=True)
class Rejected:
    msg: Incoming
    code: str
    detail: str
    violations: tuple[Violation, ...] = ()
    provider: str | None = None
    dataset: str | None = None

    @property
    def reason(self) -> str:
        """The quarantine's reason text: ``CODE: detail``."""
        return f"{self.code}: {self.detail}"

    def violations_json(self) -> str:
        return json.dumps([v.to_json() for v in self.violations], ensure_ascii=False, separators=(",", ":"))

    def dead_letter_headers(self, node: str, when: str) -> list[tuple[str, bytes]]:
        """The original headers plus the reason headers of the dead-letter topic."""
        out = list(self.msg.headers)
        out += [
            ("shulian_dlq_reason", self.code.encode()),
            ("shulian_dlq_detail", self.detail.encode("utf-8")),
            ("shulian_dlq_topic", self.msg.topic.encode()),
            ("shulian_dlq_partition", str(self.msg.partition).encode()),
            ("shulian_dlq_offset", str(self.msg.offset).encode()),
            ("shulian_dlq_node", node.encode()),
            ("shulian_dlq_time", when.encode()),
        ]
        if self.violations:
            out.append(("shulian_dlq_violations", self.violations_json().encode("utf-8")))
        return out


@dataclass
class BatchResult:
    received: int = 0
    stored: int = 0  # accepted records applied (a newer provider version)
    duplicates: int = 0  # accepted records already held in this or a newer version
    rejected: list[Rejected] = field(default_factory=list)
    quarantine_ids: list[int] = field(default_factory=list)


class _Reject(Exception):
    def __init__(self, code: str, detail: str, violations: tuple[Violation, ...] = ()) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.violations = violations


class Checker:
    """The boundary checks of one consumer node, steps 1-7 above (no store).

    Not thread-safe (it remembers verified signature trees): one per thread or process.
    """

    def __init__(
        self,
        *,
        node_code: str,
        subscriptions: Sequence[Subscription],
        validator: Validator,
        directory: Callable[[], FederationDirectory],
        encryption_key: x25519.X25519PrivateKey | None,
    ) -> None:
        self.node_code = node_code
        self.validator = validator
        self._directory = directory
        self._opener = Opener(encryption_key) if encryption_key is not None else None
        self._verifier = SignatureVerifier()
        self._keys: dict[str, tuple[str, ed25519.Ed25519PublicKey]] = {}
        self._dir_seen: FederationDirectory | None = None
        self._locals: dict[tuple[str, str], str] = {}
        self._validate_one = validator.validate
        self.topic_map: dict[str, tuple[Subscription, bool]] = {}
        for sub in subscriptions:
            self.topic_map[shared_topic(sub.provider, sub.dataset)] = (sub, False)
            self.topic_map[consumer_topic(sub.provider, sub.dataset, node_code)] = (sub, True)

    @property
    def topics(self) -> list[str]:
        return sorted(self.topic_map)

    def refresh_directory(self) -> FederationDirectory:
        """The directory in force (asked once per batch); a new one drops the remembered keys."""
        directory = self._directory()
        if directory is not self._dir_seen:
            self._dir_seen = directory
            self._keys.clear()
            self._verifier.forget()
        return directory

    def provider_key(self, provider: str) -> ed25519.Ed25519PublicKey:
        directory = self._dir_seen or self.refresh_directory()
        cached = self._keys.get(provider)
        if cached is not None:
            return cached[1]
        try:
            member = directory.member(provider)
        except NotFound as exc:
            raise _Reject("UNKNOWN_PROVIDER", f"{provider} is not a member of the federation directory "
                          f"(version {directory.version})") from exc
        key = member.signing_public_key()
        self._keys[provider] = (member.signing_key, key)
        return key

    def check(self, msg: Incoming) -> Accepted | Rejected:
        """Run every boundary check on one message."""
        self.refresh_directory()
        return self._check_one(msg)

    def check_many(self, msgs: Sequence[Incoming]) -> list[Accepted | Rejected]:
        """Run every boundary check on each message of a batch, in order."""
        self.refresh_directory()
        check = self._check_one
        return [check(msg) for msg in msgs]

    def _check_one(self, msg: Incoming) -> Accepted | Rejected:
        env: Envelope | None = None
        try:
            route = self.topic_map.get(msg.topic)
            if route is None:
                raise _Reject("UNEXPECTED_PROVIDER", f"topic {msg.topic} is not one of this node's subscriptions")
            try:
                env, leaf = read_envelope(msg.key, msg.value, msg.headers)
            except EnvelopeError as exc:
                raise _Reject(exc.code, exc.message) from exc
            return self._check(msg, env, leaf, route)
        except _Reject as rej:
            return Rejected(msg, rej.code, rej.detail, rej.violations,
                            provider=env.provider if env else None, dataset=env.dataset if env else None)

    def _check(self, msg: Incoming, env: Envelope, leaf: bytes, route: tuple[Subscription, bool]) -> Accepted:
        sub, private = route
        provider, dataset, subject, encryption = env.provider, env.dataset, env.subject, env.encryption
        if provider != sub.provider:
            raise _Reject("UNEXPECTED_PROVIDER", f"ce_source names {provider}; this topic carries only "
                          f"{sub.provider}'s dataset {sub.dataset}")
        if dataset != sub.dataset:
            raise _Reject("UNEXPECTED_DATASET", f"ce_dataset is {dataset!r}; this node subscribed to "
                          f"{sub.dataset!r} on this topic")
        cached = self._keys.get(provider)
        public_key = cached[1] if cached is not None else self.provider_key(provider)
        signature = env.signature
        if signature is None:
            raise _Reject("MISSING_SIGNATURE", "the message has no ce_signature")
        if not self._verifier.verify(provider, public_key, leaf, env.proof, signature):
            raise _Reject("BAD_SIGNATURE", f"the signature does not verify with {provider}'s key "
                          "in the federation directory")
        if (msg.key or b"") != subject.encode("utf-8"):
            raise _Reject("UNPARSEABLE", "the Kafka key differs from ce_subject")
        if not _is_record_id(subject):
            raise _Reject("UNPARSEABLE", f"ce_subject {subject[:80]!r} is not a record id")
        if encryption is None:
            if private:
                raise _Reject("NOT_ENCRYPTED", "a consumer topic must carry values encrypted to the consumer")
        else:
            if encryption != ENCRYPTION_SCHEME:
                raise _Reject("DECRYPTION_FAILED", f"unknown ce_encryption {encryption!r}")
            if env.recipient != self.node_code:
                raise _Reject("WRONG_RECIPIENT", f"encrypted to {env.recipient}, not to this node")
        local = self._locals.get((provider, dataset))
        if local is None:
            local = self._locals[(provider, dataset)] = local_dataset_id(provider, dataset)
        data = msg.value
        if env.type == TYPE_DELETED:
            if data:
                raise _Reject("UNPARSEABLE", "a deletion event carries no data")
            return Accepted(msg, env, None, local, env.record_type)
        if not data:
            raise _Reject("UNPARSEABLE", "an upsert event without data")
        if encryption is not None:
            if self._opener is None or env.epk is None:
                raise _Reject("DECRYPTION_FAILED", "this node has no encryption key configured"
                              if self._opener is None else "ce_encepk is missing")
            try:
                data = self._opener.open(env.epk, data, env.id.encode("utf-8"))
            except DecryptionError as exc:
                raise _Reject("DECRYPTION_FAILED", str(exc)) from exc
        try:
            record = decode_record(data)
        except InputError as exc:
            raise _Reject("UNPARSEABLE", f"the value is not a JSON record: {exc.message}") from exc
        if record.get("id") != subject:
            raise _Reject("UNPARSEABLE", "the record's id differs from ce_subject")
        record_type = env.record_type
        if env.masked:
            whole = self._validate(record, record_type, env)
        else:  # the common case: the whole record is validated
            rep = self._validate_one(record, record_type)
            whole = rep.valid or self._validate(record, record_type, env)
        body = _encode(record, subject)  # here, off the storing thread (in the helper process where there is one)
        accepted: Accepted = _new_accepted(Accepted, (msg, env, record, local, record_type or record.get("type"), whole,
                                                      body, content_hash(body)))
        return accepted

    def _validate(self, record: dict[str, Any], record_type: str | None, env: Envelope) -> bool:
        """Raise INVALID_RECORD; True when the whole record passed (nothing masked or excused)."""
        target = record
        if env.masked:
            target = {k: v for k, v in record.items() if k not in env.masked or k in ("id", "type")}
        rep = self.validator.validate(target, record_type)
        if rep.valid:
            return target is record
        if rep.error is not None:
            raise _Reject("INVALID_RECORD", rep.error)
        bad = tuple(v for v in rep.violations if v.severity == "Violation" and not (
            v.constraint == "MinCount" and v.path not in target and (env.partial or v.path in env.masked)))
        if bad:
            summary = "; ".join(f"{v.path} {v.constraint}: {v.message_en}" for v in bad)
            raise _Reject("INVALID_RECORD", summary, bad)
        return False

class Receiver:
    """Checks and stores messages for one consumer node (sync; run it in one worker thread)."""

    def __init__(
        self,
        *,
        node_code: str,
        subscriptions: Sequence[Subscription],
        store: Store,
        evidence: EvidenceLog,
        validator: Validator,
        directory: Callable[[], FederationDirectory],
        encryption_key: x25519.X25519PrivateKey | None,
    ) -> None:
        self.node_code = node_code
        self.store = store
        self.evidence = evidence
        self.validator = validator
        self.checker = Checker(node_code=node_code, subscriptions=subscriptions, validator=validator,
                               directory=directory, encryption_key=encryption_key)
        self.topic_map = self.checker.topic_map
        self._ready: set[tuple[str, str | None]] = set()

    @property
    def topics(self) -> list[str]:
        return self.checker.topics

    def check(self, msg: Incoming) -> Accepted | Rejected:
        """Run every boundary check on one message."""
        return self.checker.check(msg)

    def check_many(self, msgs: Sequence[Incoming]) -> list[Accepted | Rejected]:
        return self.checker.check_many(msgs)

    # ---- storing ----------------------------------------------------------------------
    def _ensure_local(self, dataset: str, record_type: str | None, env: Envelope) -> None:
        if (dataset, record_type) in self._ready:
            return
        try:
            info = self.store.get_dataset(dataset)
            if info.record_type != record_type and record_type is not None:
                raise NotFound(dataset)
        except NotFound:
            self.store.ensure_dataset(dataset, record_type, publish=False, metadata={
                "source": "kafka", "provider": env.provider, "dataset": env.dataset})
        self._ready.add((dataset, record_type))

    def apply(self, msgs: Sequence[Incoming], *, retry_of: int | None = None) -> BatchResult:
        """Check a batch, then store records, quarantine failures and log evidence in ONE commit."""
        return self.store_checked(self.checker.check_many(msgs), retry_of=retry_of)

    def store_checked(self, outcomes: Sequence[Accepted | Rejected], *, retry_of: int | None = None) -> BatchResult:
        """Store a checked batch (the outcomes of :meth:`check_many`, in order): records, quarantine
        rows and evidence in ONE commit."""
        result = BatchResult(received=len(outcomes))
        accepted: dict[str, list[Accepted]] = {}
        for outcome in outcomes:
            if outcome.__class__ is Accepted:
                accepted.setdefault(outcome.local_dataset, []).append(outcome)
            else:
                result.rejected.append(outcome)  # type: ignore[arg-type]
        now_us = time.time_ns() // 1000
        entries: list[tuple[str, str, dict[str, Any]]] = []
        with self.store.transaction() as conn:
            for dataset, items in accepted.items():
                stored, dups, refused = self._store(conn, dataset, items, now_us)
                result.stored += stored
                result.duplicates += dups
                result.rejected += refused
                first = items[0].env
                details: dict[str, Any] = {
                    "provider": first.provider, "dataset": first.dataset, "local_dataset": dataset,
                    "count": len(items), "stored": stored, "duplicates": dups, "offsets": _offsets(items),
                }
                if retry_of is not None:
                    details["retry_of"] = retry_of
                entries.append((RECORDS_RECEIVED, first.provider, details))
            if result.rejected:
                reasons: dict[str, int] = {}
                for rej in result.rejected:
                    item = self.store.quarantine_add(
                        topic=rej.msg.topic, partition=rej.msg.partition, offset=rej.msg.offset,
                        headers=_quarantine_headers(rej.msg), value=rej.msg.value, reason=rej.reason)
                    result.quarantine_ids.append(item.id)
                    reasons[rej.code] = reasons.get(rej.code, 0) + 1
                providers = sorted({r.provider for r in result.rejected if r.provider})
                details = {"count": len(result.rejected), "reasons": reasons, "providers": providers,
                           "quarantine": result.quarantine_ids[:_EVIDENCE_LIST_CAP],
                           "messages": [f"{r.msg.topic}/{r.msg.partition}/{r.msg.offset}"
                                        for r in result.rejected[:_EVIDENCE_LIST_CAP]]}
                if retry_of is not None:
                    details["retry_of"] = retry_of
                entries.append((RECORDS_QUARANTINED, providers[0] if len(providers) == 1 else "node", details))
            if entries:
                self.evidence.append_many(entries)
        return result

    def _store(self, conn: Any, dataset: str, items: list[Accepted],
               now_us: int) -> tuple[int, int, list[Rejected]]:
        known = known_versions(conn, dataset, [a.env.subject for a in items])
        fresh: list[Accepted] = []
        dups = 0
        for a in items:
            if a.env.version <= known.get(a.env.subject, 0):
                dups += 1
                continue
            known[a.env.subject] = a.env.version
            fresh.append(a)
        if not fresh:
            return 0, dups, []
        self._ensure_local(dataset, fresh[0].record_type, fresh[0].env)
        refused: list[Rejected] = []
        applied: list[Accepted] = []
        start = 0
        while start < len(fresh):  # consecutive runs of deletions, or of upserts alike in `checked`, in order
            deleting = fresh[start].env.deleted
            checked = fresh[start].checked
            end = start
            while end < len(fresh) and fresh[end].env.deleted == deleting and fresh[end].checked == checked:
                end += 1
            run = fresh[start:end]
            try:
                self._write(dataset, run, deleting, checked)
                applied += run
            except InputError:
                for a in run:  # isolate what the store refuses
                    try:
                        self._write(dataset, [a], deleting, checked)
                        applied.append(a)
                    except InputError as exc:
                        refused.append(Rejected(a.msg, "STORE_REFUSED", exc.message, (), a.env.provider,
                                                a.env.dataset))
            start = end
        remember_versions(conn, [(dataset, a.env.subject, a.env.version, a.env.provider, a.msg.topic,
                                  a.msg.partition, a.msg.offset, now_us) for a in applied])
        return len(applied), dups, refused

    def _write(self, dataset: str, run: list[Accepted], deleting: bool, checked: bool) -> None:
        if deleting:
            self.store.delete_many(dataset, [a.env.subject for a in run])
            return
        # a record the validator passed whole keeps its fingerprint: readers need not validate it again
        fingerprint = self.validator.fingerprint if checked else None
        bodies = [a.body for a in run if a.body is not None]
        if len(bodies) == len(run):  # checked and encoded by the Checker
            self.store.upsert_encoded(dataset, [a.env.subject for a in run], bodies, [a.digest for a in run],
                                      checked=fingerprint)
        else:  # built by hand
            self.store.upsert_many(dataset, [(a.env.subject, a.record or {}) for a in run], checked=fingerprint)


def _encode(record: dict[str, Any], record_id: str) -> bytes:
    """The store's canonical JSON of a record decoded from JSON (node.jsonenc.canonical_bytes).

    A decoded record holds no NaN or infinite float (the decoder refuses them), so
    canonical_bytes' scan for them is skipped; orjson's sorted output is then the same
    bytes. What orjson cannot write (an integer beyond 64 bits) takes canonical_bytes.
    """
    try:
        return _dumps(record, option=_SORTED)
    except TypeError:
        pass
    try:
        return canonical_bytes(record)
    except (TypeError, ValueError) as exc:
        raise _Reject("STORE_REFUSED", f"record {record_id!r}: not JSON-serialisable ({exc})") from exc


def _offsets(items: list[Accepted]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    names: dict[tuple[str, int], str] = {}
    for a in items:
        msg = a.msg
        tp = (msg.topic, msg.partition)
        key = names.get(tp)
        if key is None:
            key = names[tp] = f"{msg.topic}/{msg.partition}"
        offset = msg.offset
        span = out.get(key)
        if span is None:
            out[key] = [offset, offset]
        elif offset > span[1]:
            span[1] = offset
        elif offset < span[0]:
            span[0] = offset
    return out


def _quarantine_headers(msg: Incoming) -> list[tuple[str, bytes]]:
    headers = list(msg.headers)
    if msg.key is not None:
        headers.append((KEY_HEADER, msg.key))
    return headers
