"""The node's core: identity, policy decisions, boundary validation, storage and evidence.

Every transport (gRPC, Kafka) calls this, so the rules are the same on every wire.
Methods are synchronous and thread-safe (the store keeps one connection per thread);
async transports call them in an executor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric import ed25519

from node.catalog.registry import register_dataset
from node.config import NodeConfig
from node.errors import NotFound, PolicyDenied
from node.evidence import ACCESS_REFUSED, PUSH_ACCEPTED, PUSH_REJECTED, EvidenceLog
from node.pki import check_peer, key_id, load_certificate, load_signing_key
from node.policy import Decision, ResponsibilityList, decide
from node.service._batch import STORED, UNCHANGED, PreparedBatch, RecordOutcome, prepare_records
from node.service._prepare_pool import PreparePool, Splitter
from node.service._sources import DirectorySource, PolicySource
from node.store import Store, content_hash
from node.validation import Validator, get_validator

__all__ = ["NodeCore", "RecordOutcome", "IngestResult", "PreparedBatch", "StoredBatch", "id_summary",
           "EVIDENCE_ID_LIMIT"]

log = logging.getLogger(__name__)

#: evidence entries list record ids up to this many; beyond, a digest, the count and the first/last id
EVIDENCE_ID_LIMIT = 1000
_REJECTED_DETAIL_LIMIT = 100

@dataclass(frozen=True, slots=True)
class IngestResult:
    dataset: str
    outcomes: tuple[RecordOutcome, ...]
    accepted: int
    rejected: int


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """What :meth:`NodeCore.store_batch` did, compactly: for the good records (in ``prepared.good``
    order) their ids, versions after the commit and whether each was written (False: unchanged)."""

    prepared: PreparedBatch
    ids: list[str]
    versions: list[int]
    changed: list[bool]
    rejected: int

    @property
    def accepted(self) -> int:
        return len(self.ids)

    def outcomes(self) -> tuple[RecordOutcome, ...]:
        """One outcome per record of the batch, in its order."""
        outcomes = list(self.prepared.outcomes)
        warnings = self.prepared.warnings
        for i, rid, version, changed in zip(self.prepared.good_at, self.ids, self.versions, self.changed, strict=True):
            outcomes[i] = RecordOutcome(rid, STORED if changed else UNCHANGED, version, warnings.get(i, ()))
        return tuple(o for o in outcomes if o is not None)

    def result(self) -> IngestResult:
        return IngestResult(self.prepared.dataset, self.outcomes(), accepted=self.accepted, rejected=self.rejected)


def id_summary(pairs: Sequence[tuple[str, int]], *, limit: int = EVIDENCE_ID_LIMIT) -> dict[str, Any]:
    """How an evidence entry names records: every (id, version) up to ``limit``, else a digest."""
    if len(pairs) <= limit:
        return {"records": [[i, v] for i, v in pairs]}
    h = hashlib.sha256()
    for i, v in pairs:
        h.update(f"{i}@{v}\n".encode())
    return {"records_sha256": h.hexdigest(), "first": list(pairs[0]), "last": list(pairs[-1]),
            "records_note": "sha256 over 'id@version\\n' for every record, in delivery order"}


def stored_summary(ids: Sequence[str], versions: Sequence[int], changed: Sequence[bool], *,
                   limit: int = EVIDENCE_ID_LIMIT) -> tuple[int, dict[str, Any]]:
    """(how many were stored, :func:`id_summary` of the stored (id, version) pairs) of a batch's
    results by position; the same answer, made in C-level steps when every record was stored
    (a Push or ingest batch of new or changed records: the common case)."""
    if False in changed or len(ids) != len(versions) or len(ids) != len(changed) or not ids:
        pairs = [(i, v) for i, v, c in zip(ids, versions, changed, strict=True) if c]
        return len(pairs), id_summary(pairs, limit=limit)
    n = len(ids)
    if n <= limit:
        return n, {"records": list(map(list, zip(ids, versions, strict=True)))}
    first = versions[0]
    if versions.count(first) == n and set(map(type, versions)) == {int}:  # one version: one join
        tail = f"@{first}\n"
        digest = hashlib.sha256((tail.join(ids) + tail).encode()).hexdigest()
        return n, {"records_sha256": digest, "first": [ids[0], first], "last": [ids[-1], versions[-1]],
                   "records_note": "sha256 over 'id@version\\n' for every record, in delivery order"}
    return n, id_summary(list(zip(ids, versions, strict=True)), limit=limit)


class NodeCore:
    """One node's core services over its store. Open with :meth:`open` (or build from parts in tests)."""

    def __init__(
        self,
        cfg: NodeConfig,
        store: Store,
        *,
        signing_key: ed25519.Ed25519PrivateKey,
        validator: Validator | None = None,
        policy: PolicySource | None = None,
        directory: DirectorySource | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.signing_key = signing_key
        self.key_id = key_id(signing_key)
        self.validator = validator or get_validator("fast", cfg.standard)
        self.policy = policy or PolicySource(cfg, store)
        self.directory = directory or DirectorySource(cfg)
        self.evidence = EvidenceLog(store, signing_key)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.department = cfg.department.code
        self._ca = load_certificate(cfg.tls.ca.read_bytes(), what=str(cfg.tls.ca))
        self._push_sources = frozenset({self.department, *(p.code for p in cfg.peers)})
        self._pool: PreparePool | None = None
        self._pool_lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------
    @classmethod
    def open(cls, cfg: NodeConfig, *, validator: Validator | None = None,
             clock: Callable[[], dt.datetime] | None = None) -> NodeCore:
        """Open the store, register the configured datasets, load keys, directory and policy.

        Raises :class:`ConfigError` / :class:`InputError` / :class:`IntegrityError` naming what is wrong.
        """
        store = Store(cfg.store, durability=cfg.durability)
        try:
            for ds in cfg.datasets:
                register_dataset(store, ds)  # the same registration `shulian datasets add` writes
            core = cls(cfg, store, signing_key=load_signing_key(cfg.signing_key), validator=validator,
                       clock=clock)
            core.directory.load()
            core.policy.load()
        except BaseException:
            store.close()
            raise
        return core

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- identity -----------------------------------------------------------------------
    def identify(self, cert_pem: bytes) -> str:
        """The department a peer certificate names, if it is a current federation member.

        Raises :class:`Unauthenticated` (reasons UNKNOWN_CA, CERT_EXPIRED, NOT_A_MEMBER, ...).
        """
        return check_peer(cert_pem, self._ca, self.directory.codes(), now=self.clock())

    def members(self) -> frozenset[str]:
        return self.directory.codes()

    # ---- datasets -----------------------------------------------------------------------
    def record_type(self, dataset_id: str) -> str:
        """The record type of a dataset this node holds (:class:`NotFound` reason UNKNOWN_DATASET)."""
        for ds in self.cfg.datasets:
            if ds.id == dataset_id:
                return ds.record_type
        try:
            info = self.store.get_dataset(dataset_id)
        except NotFound as exc:
            raise NotFound(f"dataset {dataset_id!r} is not held by this node", reason="UNKNOWN_DATASET") from exc
        if not info.record_type:
            raise NotFound(f"dataset {dataset_id!r} has no record type", reason="UNKNOWN_DATASET")
        return info.record_type

    # ---- policy -------------------------------------------------------------------------
    def current_policy(self) -> ResponsibilityList:
        return self.policy.current()

    def decide(self, consumer: str, dataset_id: str, purpose: str | None, items: Sequence[str] | None = None,
               *, via: str = "grpc", request_id: str | None = None, record_refusal: bool = True) -> Decision:
        """Decide a read with :func:`node.policy.decide`; a refusal is logged as evidence and raised
        as :class:`PolicyDenied` (reason = the reason code, message with the basis)."""
        self.record_type(dataset_id)
        decision = decide(self.policy.current(), dataset_id, consumer, purpose or None, self.clock(),
                          list(items) if items else None, federation_members=self.directory.codes(),
                          hash_key=self.cfg.policy.hash_key)
        if not decision.allowed:
            if record_refusal:
                self.evidence.append(ACCESS_REFUSED, consumer, {**decision.to_dict(), "via": via,
                                                                 "request_id": request_id})
            raise decision.error()
        return decision

    # ---- push ---------------------------------------------------------------------------
    def check_push(self, source: str, dataset_id: str, *, via: str = "grpc.push",
                   request_id: str | None = None) -> str:
        """May ``source`` write records into ``dataset_id``? Returns the record type.

        Writers are this node's own department (its adapters and tools, with the node's
        certificate) and the peers configured in ``[[peers]]``.
        """
        record_type = self.record_type(dataset_id)
        if source not in self._push_sources:
            message = (f"{source} may not push records into dataset {dataset_id!r}: only this node's department "
                       "and its configured peers ([[peers]]) may")
            self.evidence.append(ACCESS_REFUSED, source, {"dataset": dataset_id, "via": via, "reason": "PUSH_NOT_ALLOWED",
                                                          "message": message, "request_id": request_id})
            raise PolicyDenied(message, reason="PUSH_NOT_ALLOWED")
        return record_type

    def ingest(
        self,
        source: str,
        dataset_id: str,
        records: Sequence[tuple[str, bytes | str | Mapping[str, Any]]],
        *,
        record_type: str | None = None,
        via: str = "grpc.push",
        request_id: str | None = None,
    ) -> IngestResult:
        """Validate and store one batch: valid records are stored, invalid ones rejected with their
        violations; the records and the evidence entries (one per outcome kind) commit together.

        ``records`` are ``(id, payload)`` pairs: payload as JSON bytes/text (decoded with
        :func:`node.validation.decode_record`) or an already decoded mapping. An empty id
        takes the payload's ``id``. Call :meth:`check_push` first. This is
        :meth:`prepare` then :meth:`commit`; a transport may run the two stages of
        consecutive batches concurrently, preparing in the helper process of
        :meth:`prepare_pool` (a second core) while this process stores.
        """
        prepared = self.prepare(dataset_id, records, record_type=record_type)
        return self.commit(source, prepared, via=via, request_id=request_id)

    def prepare(self, dataset_id: str, records: Sequence[tuple[str, bytes | str | Mapping[str, Any]]], *,
                record_type: str | None = None) -> PreparedBatch:
        """Decode, validate and encode a batch (no store access): the first stage of :meth:`ingest`."""
        return prepare_records(self.validator, dataset_id, record_type or self.record_type(dataset_id), records)

    def prepare_pool(self, warm: Splitter | None = None) -> PreparePool | None:
        """The helper process that prepares large batches on a second core (started on first use,
        in the background; ``warm``: a splitter the helper loads before it counts as available);
        None where it cannot help: one CPU, a validator it cannot rebuild, or a subclass that
        prepares batches its own way (a helper would bypass that)."""
        pool = self._pool
        if pool is None:
            if type(self).prepare is not NodeCore.prepare or not PreparePool.supported(self.validator):
                return None
            with self._pool_lock:
                if self._pool is None:
                    self._pool = PreparePool(self.validator)
                pool = self._pool
        pool.start(warm)
        return pool

    def commit(self, source: str, prepared: PreparedBatch, *, via: str = "grpc.push",
               request_id: str | None = None) -> IngestResult:
        """Store a prepared batch's valid records and its evidence in one transaction (durable on return)."""
        return self.store_batch(source, prepared, via=via, request_id=request_id).result()

    def store_batch(self, source: str, prepared: PreparedBatch, *, via: str = "grpc.push",
                    request_id: str | None = None) -> StoredBatch:
        """:meth:`commit`, answering compactly (a transport builds its own answer from it)."""
        dataset_id, good = prepared.dataset, prepared.good
        rejected = [o for o in prepared.outcomes if o is not None]
        entries: list[tuple[str, str, Mapping[str, Any] | None]] = []
        fingerprint = self.validator.fingerprint
        with self.store.transaction():
            if not good:
                ids: list[str] = []
                versions: list[int] = []
                changed: list[bool] = []
            elif prepared.bodies is not None:
                ids = prepared.good_ids()
                digests = prepared.digests
                if digests is None:  # prepared in the helper process, which leaves the hashing to this one
                    digests = [content_hash(b) for b in prepared.bodies]
                versions, changed = self.store.upsert_encoded(dataset_id, ids, prepared.bodies, digests,
                                                              checked=fingerprint)
            else:
                results = self.store.upsert_many(dataset_id, good, checked=fingerprint)
                ids = [r.id for r in results]
                versions = [r.version for r in results]
                changed = [r.changed for r in results]
            if good:
                stored, summary = stored_summary(ids, versions, changed)
                entries.append((PUSH_ACCEPTED, source, {
                    "dataset": dataset_id, "via": via, "request_id": request_id, "count": len(good),
                    "stored": stored, "unchanged": len(good) - stored, **summary}))
            if rejected:
                entries.append((PUSH_REJECTED, source, {
                    "dataset": dataset_id, "via": via, "request_id": request_id, "count": len(rejected),
                    "rejected": [_rejection(o) for o in rejected[:_REJECTED_DETAIL_LIMIT]],
                    "truncated": max(0, len(rejected) - _REJECTED_DETAIL_LIMIT)}))
            # plain by construction: strings (ids are checked), integers, None and lists and dicts of them
            self.evidence.append_many(entries, plain=True)
        return StoredBatch(prepared, ids, versions, changed, len(rejected))


def _rejection(o: RecordOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {"id": o.id,
                           "violations": [f"{v.path}: {v.constraint}" for v in o.violations if v.severity == "Violation"]}
    if o.error:
        out["error"] = o.error
    return out
