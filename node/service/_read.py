"""Reads: what a consumer receives from a query or a change-feed subscription.

A :class:`ReadSession` is one read by one consumer. It holds the decision (made
once per request with :func:`node.policy.decide`; a subscription re-decides on each
poll, so a grant that expires or is revoked ends it), and turns stored records into
outgoing ones:

1. the stored record is validated against the standard (the fast engine), unless
   it passed this very validator (same shape files, same engine revision) at the
   boundary: the store keeps that fingerprint with each record. A node never emits
   a record that breaks the standard; one that does (e.g. loaded around the
   boundary, or stored under an older standard) is skipped, logged and named in
   the evidence entry. Validation runs on the stored record, *before*
   projection: a projection is partial by design (it drops items the consumer may
   not receive, and masked values no longer match their patterns), so validating
   the projection would reject every conditional delivery;
2. the record is projected and masked with ``Decision.projector`` (compiled once);
3. the batch is signed (:mod:`node.service._signing`).

Evidence: one ``records.delivered`` entry per stream (and one per
:data:`DELIVERY_FLUSH_RECORDS` records or :data:`DELIVERY_FLUSH_SECONDS` on long
subscriptions), naming the records (ids and versions, or a digest beyond
:data:`~node.service._core.EVIDENCE_ID_LIMIT`), the consumer, the purpose and the decision.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from node.evidence import RECORDS_DELIVERED
from node.policy import Decision
from node.service._core import EVIDENCE_ID_LIMIT, NodeCore
from node.service._signing import sign_batch
from node.store import StoredRecord, us_to_datetime

__all__ = ["ReadSession", "OutBatch", "OutRecord", "DeliveryRecorder", "DEFAULT_BATCH", "MAX_BATCH",
           "DELIVERY_FLUSH_RECORDS", "DELIVERY_FLUSH_SECONDS", "batch_size_of"]

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
MAX_BATCH = 5000
DELIVERY_FLUSH_RECORDS = 50_000
DELIVERY_FLUSH_SECONDS = 60.0

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# (id, version, modified_us, deleted, payload)
OutRecord = tuple[str, int, int, bool, bytes]


def batch_size_of(requested: int) -> int:
    if requested <= 0:
        return DEFAULT_BATCH
    return min(int(requested), MAX_BATCH)


@dataclass(slots=True)
class OutBatch:
    dataset: str
    records: list[OutRecord]
    key_id: str
    signature: bytes
    cursor: int = 0  # subscriptions: resume after this
    caught_up: bool = False
    skipped_invalid: list[str] = field(default_factory=list)
    pairs: list[tuple[str, int]] = field(default_factory=list)  # (stored id, version) of each record sent


class DeliveryRecorder:
    """Accumulates what a stream delivered and writes ``records.delivered`` evidence entries.

    Thread-safe: :meth:`add` is cheap (no I/O; call it when a batch was handed to the
    transport) and says when a periodic entry is due; :meth:`flush` writes the entry.
    """

    def __init__(self, core: NodeCore, consumer: str, dataset: str, via: str, request_id: str | None,
                 decision: Decision) -> None:
        self.core = core
        self.consumer = consumer
        self.dataset = dataset
        self.via = via
        self.request_id = request_id
        self.decision = decision
        self.part = 0
        self.total = 0
        self._lock = threading.Lock()
        self._reset()
        self._cursor_from: int | None = None

    def _reset(self) -> None:
        self._pairs: list[tuple[str, int]] = []
        self._digest = hashlib.sha256()
        self._count = 0
        self._first: tuple[str, int] | None = None
        self._last: tuple[str, int] | None = None
        self._invalid: list[str] = []
        self._since = time.monotonic()
        self._cursor_to: int | None = None

    def add(self, pairs: Sequence[tuple[str, int]], invalid: Sequence[str] = (), cursor: int | None = None) -> bool:
        """Count records handed to the consumer; True when a periodic entry is due (call :meth:`flush`)."""
        with self._lock:
            if pairs:
                if self._first is None:
                    self._first = pairs[0]
                self._last = pairs[-1]
                if self._count + len(pairs) <= EVIDENCE_ID_LIMIT:
                    self._pairs.extend(pairs)
                self._digest.update("".join(f"{i}@{v}\n" for i, v in pairs).encode())
                self._count += len(pairs)
            self._invalid.extend(invalid)
            if cursor is not None:
                if self._cursor_from is None:
                    self._cursor_from = cursor
                self._cursor_to = cursor
            return self._count >= DELIVERY_FLUSH_RECORDS or (
                self._count > 0 and time.monotonic() - self._since >= DELIVERY_FLUSH_SECONDS)

    def set_decision(self, decision: Decision) -> None:
        with self._lock:
            self.decision = decision

    def flush(self, *, final: bool, outcome: str = "complete") -> None:
        """Write an entry for what was delivered since the last one (the final one always, once)."""
        with self._lock:
            empty = not self._count and not self._invalid
            if empty and (not final or self.part > 0):
                return
            d = self.decision
            details: dict[str, Any] = {
                "dataset": self.dataset, "via": self.via, "request_id": self.request_id,
                "purpose": d.purpose, "reason": d.reason_code.value, "grants": list(d.grant_ids),
                "items": None if d.items is None else sorted(d.items),
                "masking": {k: r.spec for k, r in sorted(d.maskers.items())},
                "count": self._count, "part": self.part, "final": final, "outcome": outcome,
            }
            if self._count <= EVIDENCE_ID_LIMIT:
                details["records"] = [[i, v] for i, v in self._pairs]
            else:
                details["records_sha256"] = self._digest.hexdigest()
                details["first"] = list(self._first or ())
                details["last"] = list(self._last or ())
                details["records_note"] = "sha256 over 'id@version\\n' for every record, in delivery order"
            if self._invalid:
                details["skipped_invalid"] = self._invalid[:EVIDENCE_ID_LIMIT]
                details["skipped_invalid_count"] = len(self._invalid)
            if self._cursor_to is not None:
                details["cursor"] = [self._cursor_from, self._cursor_to]
                self._cursor_from = self._cursor_to
            self.total += self._count
            self.part += 1
            self._reset()
        try:
            self.core.evidence.append(RECORDS_DELIVERED, self.consumer, details)
        except Exception:  # evidence must not crash a stream that already delivered; it is logged loudly
            log.exception("could not write the delivery evidence entry", extra={"dataset": self.dataset})


class ReadSession:
    """One consumer's read of one dataset (query or subscription)."""

    def __init__(self, core: NodeCore, consumer: str, dataset: str, purpose: str | None,
                 items: Sequence[str] | None = None, *, via: str = "grpc.query",
                 request_id: str | None = None, auto_record: bool = True) -> None:
        self.core = core
        self.consumer = consumer
        self.dataset = dataset
        self.purpose = purpose
        self.items = list(items) if items else None
        self.via = via
        self.request_id = request_id
        self.record_type = core.record_type(dataset)
        self.decision = core.decide(consumer, dataset, purpose, self.items, via=via, request_id=request_id)
        self.recorder = DeliveryRecorder(core, consumer, dataset, via, request_id, self.decision)
        #: True: a batch counts as delivered when produced; False: the transport calls :meth:`delivered`
        #: once it handed the batch over (so a produced-but-unsent batch is not in the evidence)
        self.auto_record = auto_record

    # ---- decisions ------------------------------------------------------------------------
    def redecide(self) -> Decision:
        """Decide again (subscriptions, per poll). A refusal ends the read (raises PolicyDenied)."""
        decision = self.core.decide(self.consumer, self.dataset, self.purpose, self.items, via=self.via,
                                    request_id=self.request_id)
        if decision.to_dict() != self.decision.to_dict():
            self.recorder.flush(final=False)
            self.decision = decision
            self.recorder.set_decision(decision)
        return decision

    # ---- outgoing records -------------------------------------------------------------------
    def _convert(self, rows: Sequence[StoredRecord]) -> tuple[list[OutRecord], list[tuple[str, int]], list[str]]:
        decision = self.decision
        project = decision.projector
        passthrough = decision.items is None and not decision.withheld and not decision.maskers
        validate = self.core.validator.validate
        fingerprint = self.core.validator.fingerprint
        rtype = self.record_type
        loads = json.loads
        out: list[OutRecord] = []
        pairs: list[tuple[str, int]] = []
        invalid: list[str] = []
        for rec in rows:
            if rec.deleted or rec.body is None:
                out.append((project({"id": rec.id})["id"], rec.version, rec.modified_us, True, b""))
                pairs.append((rec.id, rec.version))
                continue
            data = loads(rec.body)
            if rec.checked != fingerprint and not validate(data, rtype).valid:
                invalid.append(rec.id)
                continue
            if passthrough:
                payload = rec.body.encode("utf-8")
                rid = rec.id
            else:
                projected = project(data)
                payload = _ENCODE(projected).encode("utf-8")
                rid = projected.get("id", rec.id)
            out.append((rid, rec.version, rec.modified_us, False, payload))
            pairs.append((rec.id, rec.version))
        if invalid:
            log.warning("withheld %d stored record(s) of %s that break the standard: %s", len(invalid),
                        self.dataset, ", ".join(invalid[:20]), extra={"dataset": self.dataset})
        return out, pairs, invalid

    def _batch(self, rows: Sequence[StoredRecord], cursor: int = 0, caught_up: bool = False) -> OutBatch:
        out, pairs, invalid = self._convert(rows)
        signature = sign_batch(self.core.signing_key, self.dataset, [(r[0], r[1], r[3], r[4]) for r in out])
        batch = OutBatch(self.dataset, out, self.core.key_id, signature, cursor, caught_up, invalid, pairs)
        if self.auto_record:
            self.delivered(batch)
        return batch

    def delivered(self, batch: OutBatch) -> bool:
        """Count a batch as delivered (no I/O); True when a periodic evidence entry is due (:meth:`flush`)."""
        due = self.recorder.add(batch.pairs, batch.skipped_invalid, batch.cursor or None)
        if due and self.auto_record:
            self.recorder.flush(final=False)
            return False
        return due

    def flush(self) -> None:
        """Write a periodic ``records.delivered`` entry now."""
        self.recorder.flush(final=False)

    # ---- query ----------------------------------------------------------------------------
    def query(self, *, ids: Sequence[str] | None = None, modified_since_us: int = 0, limit: int = 0,
              batch_size: int = DEFAULT_BATCH) -> Iterator[OutBatch]:
        """The dataset's current records, in batches (constant memory)."""
        size = batch_size_of(batch_size)
        since = us_to_datetime(modified_since_us) if modified_since_us > 0 else None
        rows = self.core.store.iter_records(self.dataset, ids=list(ids) if ids else None, modified_since=since,
                                            limit=limit if limit > 0 else None, page_size=size)
        page: list[StoredRecord] = []
        for rec in rows:
            page.append(rec)
            if len(page) >= size:
                yield self._batch(page)
                page = []
        if page:
            yield self._batch(page)

    # ---- change feed ----------------------------------------------------------------------
    def changes(self, after: int, *, batch_size: int = DEFAULT_BATCH) -> OutBatch:
        """The next batch of changes after cursor ``after`` (current versions, tombstones for deletes).

        A change superseded by a later one is skipped (the later change delivers the
        record). ``caught_up`` is True when every change stored so far was delivered.
        """
        size = batch_size_of(batch_size)
        store = self.core.store
        latest = store.latest_seq()  # every change up to here is committed
        changes = [c for c in store.changes(after, limit=size, dataset=self.dataset) if c.seq <= latest]
        if not changes:
            return self._batch([], max(after, latest), True)
        current = {r.id: r for r in store.iter_records(self.dataset, ids={c.record_id for c in changes},
                                                        include_deleted=True, page_size=size)}
        rows: list[StoredRecord] = []
        for change in changes:
            rec = current.get(change.record_id)
            if rec is not None and rec.version == change.version:
                rows.append(rec)
        caught_up = len(changes) < size
        cursor = max(changes[-1].seq, latest) if caught_up else changes[-1].seq
        return self._batch(rows, cursor, caught_up)

    # ---- end ------------------------------------------------------------------------------
    def close(self, outcome: str = "complete") -> None:
        """Write the final delivery evidence entry."""
        self.recorder.flush(final=True, outcome=outcome)
