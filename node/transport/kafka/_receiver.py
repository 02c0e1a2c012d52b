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

import hashlib
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
from node.store import RECORD_ID_RE, Store
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
from node.validation import MAX_RECORD_BYTES, Validator, Violation, decode_flat, decode_record

try:  # a batch's decoding, bodies and digests in one C call (optional: setup.py)
    from node import _fastprep
except ImportError:  # not built: each record is decoded, validated and encoded by itself
    _fastprep = None  # type: ignore[assignment]

__all__ = [
    "Incoming",
    "Accepted",
    "Rejected",
    "BatchResult",
    "CheckedBatch",
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
_blake2b = hashlib.blake2b
_new_accepted: Any = tuple.__new__  # Accepted(...) without its Python-level __new__
_new_incoming: Any = tuple.__new__


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


@dataclass(slots=True)
class CheckedBatch:
    """A checked batch as the store takes it: the accepted messages as columns, and the rejections.

    Built from :class:`Accepted` outcomes (:meth:`of`), or from the check helper's answer
    (:func:`node.transport.kafka._pool.unpack_outcomes`) without an object per message.
    Column ``j`` describes the accepted message ``msgs[at[j]]``; ``at`` ascends.
    """

    msgs: Sequence[tuple[Any, ...]]  # every message of the batch (Incoming, or tuples of its fields), in order
    at: list[int]
    subjects: list[str]  # the record ids (ce_subject)
    versions: list[int]  # the provider's versions
    deleted: list[bool]
    checked: list[bool]  # the whole record passed the validator
    bodies: list[bytes | None]  # canonical JSON (None: a deletion, or a record given only in `records`)
    digests: list[bytes]
    locals: list[str]  # the local datasets
    record_types: list[str | None]
    providers: list[str]
    datasets: list[str]  # the provider's dataset ids
    rejected: list[Rejected]
    records: list[dict[str, Any] | None] | None = None  # the decoded records, where checked in this process

    @classmethod
    def of(cls, outcomes: Sequence[Accepted | Rejected]) -> CheckedBatch:
        accepted = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, Accepted)]
        acc = [o for _i, o in accepted]
        return cls([o.msg for o in outcomes], [i for i, _o in accepted], [a.env.subject for a in acc],
                   [a.env.version for a in acc], [a.env.deleted for a in acc], [a.checked for a in acc],
                   [a.body for a in acc], [a.digest for a in acc], [a.local_dataset for a in acc],
                   [a.record_type for a in acc], [a.env.provider for a in acc], [a.env.dataset for a in acc],
                   [o for o in outcomes if isinstance(o, Rejected)],
                   [a.record for a in acc])

    def message(self, j: int) -> Incoming:
        """The accepted message of column ``j``."""
        m = self.msgs[self.at[j]]
        if isinstance(m, Incoming):
            return m
        made: Incoming = _new_incoming(Incoming, m)
        return made


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
        self._clean = validator.clean
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

    def check_batch(self, msgs: Sequence[Incoming]) -> list[Accepted | Rejected]:
        """:meth:`check_many`'s outcomes, except that an accepted record checked with the batch
        (its ``body`` and ``digest`` given) has ``record`` None: for storing, which needs only those.

        The values of the upserts that pass steps 1-5, unmasked and of a record type the validator
        checks by columns, are decoded, encoded and hashed together by node._fastprep.flat_columns
        and validated by :meth:`Validator.unclear_rows`; a record whose verdict that does not tell
        (and every value when flat_columns declines the batch) takes :meth:`_finish`, as in
        check_many. A record clean by columns is what _finish accepts: validated whole, with
        flat_columns' body and digest, which are _encode's and content_hash's (see
        node/_fastprep.c and tests/kafka/test_check_batch.py).
        """
        self.refresh_directory()
        out: list[Accepted | Rejected | None] = []
        groups: dict[str, list[tuple[int, Incoming, Envelope, str, bytes]]] = {}
        for msg in msgs:
            env: Envelope | None = None
            try:
                route = self._route(msg)
                env, leaf = self._envelope(msg)
                opened = self._open(msg, env, leaf, route)
                if isinstance(opened, Accepted):
                    out.append(opened)
                    continue
                record_type = env.record_type
                if env.masked or record_type is None or self._columns(record_type) is None:
                    out.append(self._finish(msg, env, *opened))
                    continue
                group = groups.get(record_type)
                if group is None:
                    group = groups[record_type] = []
                group.append((len(out), msg, env, *opened))
                out.append(None)  # decided with its group
            except _Reject as rej:
                out.append(Rejected(msg, rej.code, rej.detail, rej.violations,
                                    provider=env.provider if env else None, dataset=env.dataset if env else None))
        for record_type, group in groups.items():
            self._finish_group(record_type, group, out)
        return out  # type: ignore[return-value]  # every None was decided by its group

    def _columns(self, record_type: str) -> frozenset[str] | None:
        """The keys flat_columns may put in columns for ``record_type``; None: no column check for it."""
        return self.validator.column_keys(record_type) if _fastprep is not None else None

    def _finish_group(self, record_type: str, group: list[tuple[int, Incoming, Envelope, str, bytes]],
                      out: list[Accepted | Rejected | None]) -> None:
        """Decide the upserts of one record type that passed steps 1-5 (see :meth:`check_batch`)."""
        allowed = self._columns(record_type)
        fast = None
        if allowed is not None and _fastprep is not None:
            fast = _fastprep.flat_columns([(env.subject, data) for _i, _m, env, _l, data in group], MAX_RECORD_BYTES,
                                          True, allowed, record_type)
        columns, odd, bodies, digests = fast if fast is not None else ({}, [], [], None)
        bad = self.validator.unclear_rows(record_type, columns) if fast is not None else None
        if bad is None or digests is None:
            for i, msg, env, local, data in group:
                out[i] = self._finish_one(msg, env, local, data)
            return
        unclear = set(bad).union(odd)
        for k, (i, msg, env, local, data) in enumerate(group):
            if k in unclear:
                out[i] = self._finish_one(msg, env, local, data)
            else:  # clean by columns: what _finish accepts, without the record
                out[i] = _new_accepted(Accepted, (msg, env, None, local, record_type, True, bodies[k], digests[k]))

    def _finish_one(self, msg: Incoming, env: Envelope, local: str, data: bytes) -> Accepted | Rejected:
        try:
            return self._finish(msg, env, local, data)
        except _Reject as rej:
            return Rejected(msg, rej.code, rej.detail, rej.violations, provider=env.provider, dataset=env.dataset)

    def _route(self, msg: Incoming) -> tuple[Subscription, bool]:
        """Step 1: the subscription of the message's topic."""
        route = self.topic_map.get(msg.topic)
        if route is None:
            raise _Reject("UNEXPECTED_PROVIDER", f"topic {msg.topic} is not one of this node's subscriptions")
        return route

    @staticmethod
    def _envelope(msg: Incoming) -> tuple[Envelope, bytes]:
        """Step 2: the envelope and the message's leaf hash."""
        try:
            return read_envelope(msg.key, msg.value, msg.headers)
        except EnvelopeError as exc:
            raise _Reject(exc.code, exc.message) from exc

    def _check_one(self, msg: Incoming) -> Accepted | Rejected:
        env: Envelope | None = None
        try:
            route = self._route(msg)
            env, leaf = self._envelope(msg)
            return self._check(msg, env, leaf, route)
        except _Reject as rej:
            return Rejected(msg, rej.code, rej.detail, rej.violations,
                            provider=env.provider if env else None, dataset=env.dataset if env else None)

    def _check(self, msg: Incoming, env: Envelope, leaf: bytes, route: tuple[Subscription, bool]) -> Accepted:
        opened = self._open(msg, env, leaf, route)
        if isinstance(opened, Accepted):
            return opened
        return self._finish(msg, env, *opened)

    def _open(self, msg: Incoming, env: Envelope, leaf: bytes,
              route: tuple[Subscription, bool]) -> Accepted | tuple[str, bytes]:
        """Steps 3-5: the Accepted deletion, or (the local dataset, the value, decrypted) for :meth:`_finish`."""
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
        return local, data

    def _finish(self, msg: Incoming, env: Envelope, local: str, data: bytes) -> Accepted:
        """Steps 6-7 of an upsert's value, and its canonical JSON and digest."""
        subject = env.subject
        record = decode_flat(data)  # the common record, else decode_record (the same result or its error)
        if record is None:
            try:
                record = decode_record(data)
            except InputError as exc:
                raise _Reject("UNPARSEABLE", f"the value is not a JSON record: {exc.message}") from exc
        if record.get("id") != subject:
            raise _Reject("UNPARSEABLE", "the record's id differs from ce_subject")
        record_type = env.record_type
        if env.masked:
            whole = self._validate(record, record_type, env)
        else:  # the common case: the whole record is validated (a clean one without making its report)
            whole = self._clean(record, record_type) or self._validate(record, record_type, env)
        body = _encode(record, subject)  # here, off the storing thread (in the helper process where there is one)
        accepted: Accepted = _new_accepted(Accepted, (msg, env, record, local, record_type or record.get("type"), whole,
                                                      body, _blake2b(body, digest_size=16).digest()))  # content_hash
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
    def _ensure_local(self, dataset: str, record_type: str | None, provider: str, provider_dataset: str) -> None:
        if (dataset, record_type) in self._ready:
            return
        try:
            info = self.store.get_dataset(dataset)
            if info.record_type != record_type and record_type is not None:
                raise NotFound(dataset)
        except NotFound:
            self.store.ensure_dataset(dataset, record_type, publish=False, metadata={
                "source": "kafka", "provider": provider, "dataset": provider_dataset})
        self._ready.add((dataset, record_type))

    def apply(self, msgs: Sequence[Incoming], *, retry_of: int | None = None) -> BatchResult:
        """Check a batch, then store records, quarantine failures and log evidence in ONE commit."""
        return self.store_checked(self.checker.check_many(msgs), retry_of=retry_of)

    def store_checked(self, outcomes: Sequence[Accepted | Rejected], *, retry_of: int | None = None) -> BatchResult:
        """Store a checked batch (the outcomes of :meth:`check_many`, in order): records, quarantine
        rows and evidence in ONE commit."""
        return self.store_batch(CheckedBatch.of(outcomes), retry_of=retry_of)

    def store_batch(self, batch: CheckedBatch, *, retry_of: int | None = None) -> BatchResult:
        """:meth:`store_checked` of a batch in columns (as the check helper answers)."""
        result = BatchResult(received=len(batch.msgs), rejected=list(batch.rejected))
        groups: dict[str, list[int]] = {}  # local dataset -> its columns, in order
        for j, local in enumerate(batch.locals):
            cols = groups.get(local)
            if cols is None:
                groups[local] = [j]
            else:
                cols.append(j)
        now_us = time.time_ns() // 1000
        entries: list[tuple[str, str, dict[str, Any]]] = []
        with self.store.transaction() as conn:
            for dataset, cols in groups.items():
                stored, dups, refused = self._store(conn, dataset, batch, cols, now_us)
                result.stored += stored
                result.duplicates += dups
                result.rejected += refused
                first = cols[0]
                details: dict[str, Any] = {
                    "provider": batch.providers[first], "dataset": batch.datasets[first], "local_dataset": dataset,
                    "count": len(cols), "stored": stored, "duplicates": dups,
                    "offsets": _offsets([batch.msgs[batch.at[j]] for j in cols]),
                }
                if retry_of is not None:
                    details["retry_of"] = retry_of
                entries.append((RECORDS_RECEIVED, batch.providers[first], details))
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

    def _store(self, conn: Any, dataset: str, batch: CheckedBatch, cols: list[int],
               now_us: int) -> tuple[int, int, list[Rejected]]:
        subjects, versions = batch.subjects, batch.versions
        known = known_versions(conn, dataset, [subjects[j] for j in cols])
        get = known.get
        fresh: list[int] = []
        dups = 0
        for j in cols:
            subject, version = subjects[j], versions[j]
            if version <= get(subject, 0):
                dups += 1
                continue
            known[subject] = version
            fresh.append(j)
        if not fresh:
            return 0, dups, []
        j0 = fresh[0]
        self._ensure_local(dataset, batch.record_types[j0], batch.providers[j0], batch.datasets[j0])
        deleted, checked = batch.deleted, batch.checked
        refused: list[Rejected] = []
        applied: list[int] = []
        start = 0
        while start < len(fresh):  # consecutive runs of deletions, or of upserts alike in `checked`, in order
            deleting = deleted[fresh[start]]
            whole = checked[fresh[start]]
            end = start
            while end < len(fresh) and deleted[fresh[end]] == deleting and checked[fresh[end]] == whole:
                end += 1
            run = fresh[start:end]
            try:
                self._write(dataset, batch, run, deleting, whole)
                applied += run
            except InputError:
                for j in run:  # isolate what the store refuses
                    try:
                        self._write(dataset, batch, [j], deleting, whole)
                        applied.append(j)
                    except InputError as exc:
                        refused.append(Rejected(batch.message(j), "STORE_REFUSED", exc.message, (),
                                                batch.providers[j], batch.datasets[j]))
            start = end
        msgs, at, providers = batch.msgs, batch.at, batch.providers
        remember_versions(conn, [(dataset, subjects[j], versions[j], providers[j], m[0], m[1], m[2], now_us)
                                 for j in applied for m in (msgs[at[j]],)])
        return len(applied), dups, refused

    def _write(self, dataset: str, batch: CheckedBatch, run: list[int], deleting: bool, checked: bool) -> None:
        subjects = batch.subjects
        if deleting:
            self.store.delete_many(dataset, [subjects[j] for j in run])
            return
        # a record the validator passed whole keeps its fingerprint: readers need not validate it again
        fingerprint = self.validator.fingerprint if checked else None
        bodies = [b for j in run if (b := batch.bodies[j]) is not None]
        if len(bodies) == len(run):  # checked and encoded by the Checker
            self.store.upsert_encoded(dataset, [subjects[j] for j in run], bodies, [batch.digests[j] for j in run],
                                      checked=fingerprint)
            return
        records = batch.records  # built by hand
        if records is None or any(records[j] is None for j in run if batch.bodies[j] is None):
            raise RuntimeError(f"a checked batch for {dataset} has an upsert without its record")
        self.store.upsert_many(dataset, [(subjects[j], records[j] or {}) for j in run], checked=fingerprint)


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


def _offsets(msgs: list[tuple[Any, ...]]) -> dict[str, list[int]]:
    """The first and last offset of the messages (Incoming, or tuples of its fields) per topic partition."""
    out: dict[str, list[int]] = {}
    names: dict[tuple[str, int], str] = {}
    for msg in msgs:
        tp = (msg[0], msg[1])
        key = names.get(tp)
        if key is None:
            key = names[tp] = f"{msg[0]}/{msg[1]}"
        offset = msg[2]
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
