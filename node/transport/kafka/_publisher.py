"""The provider side: drain the transactional outbox into signed CloudEvents.

The store writes an outbox row in the same transaction as every change of a
publishing dataset. :meth:`Publisher.prepare` reads a batch of rows (oldest first),
loads each row's record version, projects it for every route, encrypts consumer
topics, signs the whole batch (one Ed25519 signature, a Merkle proof per message),
and returns the messages. Only after Kafka acknowledged all of them does
:meth:`Publisher.finish` delete the rows and log the delivery evidence, in one commit.
A crash anywhere in between leaves the rows in the outbox: they are published again
after the restart, and consumers drop the duplicates by (dataset, id, version).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from node.config import DatasetConfig, NodeConfig
from node.errors import NotFound
from node.evidence import RECORDS_DELIVERED, EvidenceLog
from node.store import OutboxItem, Store, canonical_body
from node.transport.kafka._crypto import ENCRYPTION_SCHEME, Sealer
from node.transport.kafka._envelope import (
    CONTENT_TYPE,
    H_PROOF,
    H_SIGNATURE,
    PROJECTION_PARTIAL,
    SPECVERSION,
    TYPE_DELETED,
    TYPE_UPSERTED,
    LeafTemplate,
    merkle_sign_b64,
    rfc3339_us,
    source_for,
)
from node.transport.kafka._routes import Route, RoutePlan, RoutePlanner

__all__ = ["Outgoing", "PreparedBatch", "Publisher", "partition_for", "MAX_MESSAGE_BYTES",
           "PUBLICATION_STARTED", "PUBLICATION_STOPPED", "RECORDS_WITHHELD"]

log = logging.getLogger(__name__)

#: a record version as the publisher reads it: (id, version, modified_us, deleted, canonical JSON bytes or None)
_Row = tuple[str, int, int, int, bytes | None]

PUBLICATION_STARTED = "kafka.publication_started"
PUBLICATION_STOPPED = "kafka.publication_stopped"
RECORDS_WITHHELD = "records.withheld"
#: a message larger than this is not sent (brokers refuse > 1 MiB by default); it is logged as withheld
MAX_MESSAGE_BYTES = 900 * 1024
#: messages per signature tree: one Ed25519 signature each, proofs of at most 8 steps (264 bytes)
TREE_SIZE = 256
_VARIABLE = ("ce_id", "ce_subject", "ce_time", "ce_recordversion")


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """CRC-32 of the key modulo the partition count (librdkafka's ``consistent`` partitioner)."""
    return partitions[zlib.crc32(key) % len(partitions)]


@dataclass(slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]]
    leaf: bytes = b""


@dataclass
class PreparedBatch:
    outbox_ids: list[int]
    messages: list[Outgoing]
    evidence: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    root: bytes | None = None

    @property
    def topics(self) -> set[str]:
        return {m.topic for m in self.messages}

    @property
    def last_id(self) -> int:
        return self.outbox_ids[-1]


class Publisher:
    """Sync half of the publisher (runs in one worker thread); the exchange does the sending."""

    def __init__(self, *, cfg: NodeConfig, store: Store, evidence: EvidenceLog,
                 signing_key: ed25519.Ed25519PrivateKey, planner: RoutePlanner) -> None:
        self.cfg = cfg
        self.store = store
        self.evidence = evidence
        self._key = signing_key
        self._planner = planner
        self.me = cfg.department.code
        self._source = source_for(self.me).encode()
        self._datasets = {d.id: d for d in cfg.datasets}
        self._active: dict[str, dict[str, str]] = {}  # dataset -> {topic: consumer} of the last batch
        self._warned: set[str] = set()

    def sync_publish_flags(self) -> None:
        """Make the store's per-dataset outbox flag follow ``kafka_publish`` in the configuration."""
        for ds in self.cfg.datasets:
            try:
                info = self.store.get_dataset(ds.id)
            except NotFound:
                if ds.kafka_publish:
                    self.store.ensure_dataset(ds.id, ds.record_type, publish=True)
                continue
            if info.publish != ds.kafka_publish:
                self.store.ensure_dataset(ds.id, info.record_type or ds.record_type, publish=ds.kafka_publish,
                                          metadata=info.metadata)

    def planned_topics(self, now: dt.datetime | None = None) -> list[str]:
        """Every topic the current policy publishes to (created at start)."""
        now = now or dt.datetime.now(dt.UTC)
        out: set[str] = set()
        for ds in self.cfg.datasets:
            if ds.kafka_publish:
                out.update(r.topic for r in self._planner.plan(ds, now).routes)
        return sorted(out)

    # ---- preparing --------------------------------------------------------------------
    def prepare(self, limit: int, after_id: int = 0,
                partitions: Mapping[str, Sequence[int]] | None = None) -> PreparedBatch | None:
        """The next batch: up to ``limit`` outbox rows with ``id > after_id``, as signed messages.

        ``partitions``: the partitions of the topics, where known. Messages are then signed
        in trees of one partition each (a stable sort: each key's versions keep their
        order), so a consumer reads a tree's messages one after the other and checks each
        with a look-up or a hash; trees spread over partitions are as valid, only slower
        to check.
        """
        items = self.store.pending_outbox(limit, after_id=after_id)
        if not items:
            return None
        now = dt.datetime.now(dt.UTC)
        by_ds: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_ds.setdefault(item.dataset, []).append(item)
        batch = PreparedBatch([i.id for i in items], [])
        for ds_id, ds_items in by_ds.items():
            ds = self._datasets.get(ds_id)
            if ds is None or not ds.kafka_publish:
                self._withheld(batch, ds_id, ds_items, "the dataset is not configured for Kafka publication")
                continue
            plan = self._planner.plan(ds, now)
            self._note_changes(batch, plan)
            if not plan.routes:
                self._withheld(batch, ds_id, ds_items, plan.reason)
                continue
            records = self._load(ds_id, ds_items)
            for route in plan.routes:
                self._build(batch, ds, route, records)
        groups = [batch.messages]
        if partitions:  # one group per (topic, partition), each in its messages' order
            by_place: dict[tuple[str, int], list[Outgoing]] = {}
            for m in batch.messages:
                parts = partitions.get(m.topic)
                by_place.setdefault((m.topic, partition_for(m.key, parts) if parts else -1), []).append(m)
            groups = [by_place[place] for place in sorted(by_place)]
            batch.messages = [m for group in groups for m in group]
        roots: list[str] = []
        for group in groups:
            for start in range(0, len(group), TREE_SIZE):
                chunk = group[start:start + TREE_SIZE]
                root, signature, proofs = merkle_sign_b64(self._key, [m.leaf for m in chunk])
                sig = base64.b64encode(signature)
                for m, proof in zip(chunk, proofs, strict=True):
                    m.headers += ((H_SIGNATURE, sig), (H_PROOF, proof))
                roots.append(root.hex())
        if roots:
            batch.root = bytes.fromhex(roots[0])
            for kind, _actor, details in batch.evidence:
                if kind == RECORDS_DELIVERED:
                    details["signatures"] = len(roots)
                    details["roots"] = roots if len(roots) <= 16 else roots[:16] + ["…"]
        return batch

    def _withheld(self, batch: PreparedBatch, dataset: str, items: list[OutboxItem], reason: str) -> None:
        if dataset not in self._warned:
            log.warning("not publishing changes of dataset %s: %s", dataset, reason)
            self._warned.add(dataset)
        batch.evidence.append((RECORDS_WITHHELD, "node", {
            "dataset": dataset, "count": len(items), "reason": reason,
            "outbox": [items[0].id, items[-1].id]}))

    def _note_changes(self, batch: PreparedBatch, plan: RoutePlan) -> None:
        """Evidence when a route starts or stops (a grant given, revoked or expired)."""
        now = {r.topic: r.consumer or "*" for r in plan.routes}
        before = self._active.get(plan.dataset)
        if before == now:
            return
        self._active[plan.dataset] = now
        why = {consumer: (code, message) for consumer, code, message in plan.stopped}
        for route in plan.routes:
            if before is None or route.topic not in before:
                batch.evidence.append((PUBLICATION_STARTED, route.consumer or "node", {
                    "dataset": plan.dataset, "topic": route.topic,
                    "decision": route.decision.to_dict() if route.decision else None}))
                log.info("Kafka publication of %s to %s started", plan.dataset, route.topic)
        gone = {consumer: topic for topic, consumer in (before or {}).items() if topic not in now}
        if before is None:  # first plan: report the consumers whose grants are not in force
            gone = {consumer: "" for consumer in why}
        for consumer, topic in sorted(gone.items()):
            code, message = why.get(consumer, ("NO_GRANT", plan.reason or f"{consumer} holds no grant in force"))
            batch.evidence.append((PUBLICATION_STOPPED, consumer if consumer != "*" else "node", {
                "dataset": plan.dataset, "consumer": consumer, "topic": topic, "reason": code,
                "message": message}))
            log.info("Kafka publication of %s to %s stopped: %s", plan.dataset, consumer, message)

    def _load(self, dataset: str, items: list[OutboxItem]) -> list[tuple[OutboxItem, _Row]]:
        """Each outbox row's record version as (id, version, modified_us, deleted, canonical JSON bytes)."""
        ids = list(dict.fromkeys(i.record_id for i in items))
        current: dict[str, _Row] = {}
        for page in self.store.record_pages(dataset, fingerprint="", ids=ids, include_deleted=True, page_size=500):
            for raw in page:
                current[raw[0]] = raw[:5]
        out: list[tuple[OutboxItem, _Row]] = []
        for item in items:
            row = current.get(item.record_id)
            if row is None or row[1] != item.version:  # changed since: that version is in the history
                rec = self.store.get_record(dataset, item.record_id, version=item.version)
                if rec is None:
                    log.error("outbox row %d names %s/%s version %d, which the store does not hold", item.id,
                              dataset, item.record_id, item.version)
                    continue
                row = (rec.id, rec.version, rec.modified_us, int(rec.deleted),
                       rec.body.encode("utf-8") if rec.body is not None else None)
            out.append((item, row))
        return out

    def _build(self, batch: PreparedBatch, ds: DatasetConfig, route: Route,
               records: list[tuple[OutboxItem, _Row]]) -> None:
        sealer = Sealer(route.recipient) if route.recipient is not None else None
        project = None if route.identity or route.decision is None else route.decision.projector
        suffix = f"/{route.consumer}" if route.consumer else ""
        common: list[tuple[str, bytes]] = [("ce_specversion", SPECVERSION), ("ce_source", self._source),
                                           ("ce_dataset", ds.id.encode()), ("ce_recordtype", ds.record_type.encode())]
        if route.partial:
            common.append(("ce_projection", PROJECTION_PARTIAL.encode()))
        if route.masked:
            common.append(("ce_masked", ",".join(route.masked).encode()))
        if sealer is not None:
            common += [("ce_encryption", ENCRYPTION_SCHEME.encode()), ("ce_encepk", sealer.epk_b64),
                       ("ce_recipient", (route.consumer or "").encode())]
        upsert_headers = [("ce_type", TYPE_UPSERTED.encode()), ("content-type", CONTENT_TYPE), *common]
        delete_headers = [("ce_type", TYPE_DELETED.encode()), *common]
        upsert_leaf = LeafTemplate(upsert_headers, _VARIABLE)
        delete_leaf = LeafTemplate(delete_headers, _VARIABLE)
        out = batch.messages
        count = 0
        for item, (rid, rec_version, modified_us, deleted, body) in records:
            value: bytes | None
            if deleted or body is None:
                if route.id_masked and project is not None:
                    rid = project({"id": rid})["id"]
                value = None
            elif project is None:
                value = body
            else:
                projected = project(json.loads(body))
                rid = projected["id"]
                value = canonical_body(projected).encode("utf-8")
            ce_id = f"{ds.id}/{rid}/{rec_version}{suffix}".encode()
            if value is not None and sealer is not None:
                value = sealer.seal(value, ce_id)
            if value is not None and len(value) > MAX_MESSAGE_BYTES:
                log.error("record %s/%s version %d is %d bytes, over the %d-byte message limit: not published",
                          ds.id, item.record_id, rec_version, len(value), MAX_MESSAGE_BYTES)
                batch.evidence.append((RECORDS_WITHHELD, "node", {
                    "dataset": ds.id, "count": 1, "reason": "too large for a Kafka message",
                    "outbox": [item.id, item.id], "record": item.record_id, "version": rec_version}))
                continue
            key = rid.encode("utf-8")
            when = rfc3339_us(modified_us).encode()
            version = b"%d" % rec_version
            variable = (ce_id, key, when, version)  # in the order of _VARIABLE
            own = [("ce_id", ce_id), ("ce_subject", key), ("ce_time", when), ("ce_recordversion", version)]
            if value is None:
                leaf = delete_leaf.leaf(key, None, variable)
                headers = [*delete_headers, *own]
            else:
                leaf = upsert_leaf.leaf(key, value, variable)
                headers = [*upsert_headers, *own]
            out.append(Outgoing(route.topic, key, value, headers, leaf))
            count += 1
        if count:
            batch.evidence.append((RECORDS_DELIVERED, route.consumer or "node", {
                "topic": route.topic, "dataset": ds.id, "consumer": route.consumer, "count": count,
                "outbox": [records[0][0].id, records[-1][0].id],
                "reason": route.decision.reason_code.value if route.decision else "UNCONDITIONAL",
                "grants": list(route.decision.grant_ids) if route.decision else []}))

    # ---- finishing --------------------------------------------------------------------
    def finish(self, batch: PreparedBatch) -> None:
        """After Kafka acknowledged every message: drop the outbox rows and log the evidence (one commit)."""
        with self.store.transaction():
            self.store.mark_published(batch.outbox_ids)
            if batch.evidence:
                self.evidence.append_many(batch.evidence)
