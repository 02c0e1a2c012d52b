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
2. the record is projected and masked with ``Decision.projector`` (compiled once) and
   encoded, protobuf framing and batch digest included (:mod:`node.service._outgoing`;
   where the C accelerator is built, a query's pages are read and encoded in C, with the
   same bytes as a result);
3. the batch is signed (:mod:`node.service._signing`).

Evidence: one ``records.delivered`` entry per stream (and one per
:data:`DELIVERY_FLUSH_RECORDS` records or :data:`DELIVERY_FLUSH_SECONDS` on long
subscriptions), naming the records (ids and versions, or a digest beyond
:data:`~node.service._core.EVIDENCE_ID_LIMIT`), the consumer, the purpose and the decision.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from node.evidence import RECORDS_DELIVERED
from node.policy import Decision
from node.service._core import EVIDENCE_ID_LIMIT, NodeCore
from node.service._outgoing import Encoded, RecordEncoder, load_body
from node.service._signing import sign_digest
from node.store import EncodedPage, RawRow, us_to_datetime

__all__ = ["ReadSession", "OutBatch", "OutRecord", "DeliveryRecorder", "DEFAULT_BATCH", "MAX_BATCH",
           "DELIVERY_FLUSH_RECORDS", "DELIVERY_FLUSH_SECONDS", "batch_size_of"]

log = logging.getLogger(__name__)

_CHECKED = operator.itemgetter(5)

DEFAULT_BATCH = 500
MAX_BATCH = 5000
DELIVERY_FLUSH_RECORDS = 50_000
DELIVERY_FLUSH_SECONDS = 60.0

# (id, version, modified_us, deleted, payload)
OutRecord = tuple[str, int, int, bool, bytes]


def batch_size_of(requested: int) -> int:
    if requested <= 0:
        return DEFAULT_BATCH
    return min(int(requested), MAX_BATCH)


@dataclass(slots=True)
class OutBatch:
    """One signed batch of outgoing records, already encoded (see :mod:`node.service._outgoing`)."""

    dataset: str
    wire: bytes  # the records as the protobuf RecordBatch.records field, in order
    count: int
    key_id: str
    signature: bytes
    cursor: int = 0  # subscriptions: resume after this
    caught_up: bool = False
    skipped_invalid: list[str] = field(default_factory=list)
    evidence: bytes = b""  # "id@version\n" (stored id) of each record sent

    @property
    def records(self) -> list[OutRecord]:
        """The records, decoded from :attr:`wire` (for tools and tests; transports send the wire)."""
        from node._generated.shulian.v1 import common_pb2

        batch = common_pb2.RecordBatch.FromString(self.wire)
        return [(r.id, r.version, r.modified_us, r.deleted, r.payload) for r in batch.records]

    @property
    def pairs(self) -> list[tuple[str, int]]:
        """(stored id, version) of each record sent."""
        return _pairs(self.evidence)


def _pairs(evidence: bytes) -> list[tuple[str, int]]:
    out = []
    for line in evidence.decode("utf-8").splitlines():
        rid, _, version = line.rpartition("@")
        out.append((rid, int(version)))
    return out


def _pair(line: bytes) -> tuple[str, int]:
    rid, _, version = line.decode("utf-8").rpartition("@")
    return rid, int(version)


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

    def add(self, evidence: bytes, count: int, invalid: Sequence[str] = (), cursor: int | None = None) -> bool:
        """Count records handed to the consumer (``evidence``: ``id@version\\n`` for each of the
        ``count``); True when a periodic entry is due (call :meth:`flush`)."""
        with self._lock:
            if count:
                if self._first is None:
                    self._first = _pair(evidence[:evidence.index(b"\n")])
                self._last = _pair(evidence[evidence.rfind(b"\n", 0, len(evidence) - 1) + 1:-1])
                if self._count + count <= EVIDENCE_ID_LIMIT:
                    self._pairs.extend(_pairs(evidence))
                self._digest.update(evidence)
                self._count += count
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
        self._encoder_cache: RecordEncoder | None = None

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
    def _encoder(self) -> RecordEncoder:
        encoder = self._encoder_cache
        if encoder is None or encoder.decision is not self.decision:
            encoder = self._encoder_cache = RecordEncoder(self.decision)
        return encoder

    def _valid(self, rows: list[RawRow]) -> tuple[list[RawRow], list[str]]:
        """Drop the rows that break the standard, validating those that did not pass this validator."""
        if 0 not in map(_CHECKED, rows):
            return rows, []
        validate = self.core.validator.validate
        rtype = self.record_type
        good: list[RawRow] = []
        invalid: list[str] = []
        for row in rows:
            body = row[4]
            if row[5] or row[3] or body is None or validate(load_body(body), rtype).valid:
                good.append(row)
            else:
                invalid.append(row[0])
        if invalid:
            log.warning("withheld %d stored record(s) of %s that break the standard: %s", len(invalid),
                        self.dataset, ", ".join(invalid[:20]), extra={"dataset": self.dataset})
        return good, invalid

    def _batch(self, rows: list[RawRow], cursor: int = 0, caught_up: bool = False) -> OutBatch:
        rows, invalid = self._valid(rows)
        return self._signed(self._encoder().encode(rows), len(rows), invalid, cursor, caught_up)

    def _signed(self, encoded: Encoded, count: int, invalid: list[str], cursor: int = 0,
                caught_up: bool = False) -> OutBatch:
        signature = sign_digest(self.core.signing_key, encoded.digest)
        batch = OutBatch(self.dataset, encoded.wire, count, self.core.key_id, signature, cursor, caught_up,
                         invalid, encoded.evidence)
        if self.auto_record:
            self.delivered(batch)
        return batch

    def delivered(self, batch: OutBatch) -> bool:
        """Count a batch as delivered (no I/O); True when a periodic evidence entry is due (:meth:`flush`)."""
        due = self.recorder.add(batch.evidence, batch.count, batch.skipped_invalid, batch.cursor or None)
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
        store = self.core.store
        fingerprint = self.core.validator.fingerprint
        encoder = self._encoder()
        pages: Iterator[EncodedPage | list[RawRow]]
        if encoder.accelerated and not ids:  # read and encoded in C, page by page
            pages = store.encoded_pages(self.dataset, fingerprint=fingerprint, plan=encoder.plan,
                                        fallback=encoder.general, digest_prefix=encoder.digest_prefix,
                                        modified_since=since,
                                        limit=limit if limit > 0 else None, page_size=size)
        else:
            pages = store.record_pages(self.dataset, fingerprint=fingerprint, ids=list(ids) if ids else None,
                                       modified_since=since, limit=limit if limit > 0 else None, page_size=size)
        pending: list[RawRow] = []
        for page in pages:
            if isinstance(page, EncodedPage):  # a whole batch (pages are batch-sized; rows come only alone)
                yield self._signed(Encoded(page.wire, page.digest, page.evidence), page.size, [])
                continue
            if not pending and len(page) == size:
                yield self._batch(page)
                continue
            pending.extend(page)
            while len(pending) >= size:
                yield self._batch(pending[:size])
                pending = pending[size:]
        if pending:
            yield self._batch(pending)

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
        current = {row[0]: row for page in store.record_pages(
            self.dataset, fingerprint=self.core.validator.fingerprint, ids={c.record_id for c in changes},
            include_deleted=True, page_size=size) for row in page}
        rows: list[RawRow] = []
        for change in changes:
            row = current.get(change.record_id)
            if row is not None and row[1] == change.version:
                rows.append(row)
        caught_up = len(changes) < size
        cursor = max(changes[-1].seq, latest) if caught_up else changes[-1].seq
        return self._batch(rows, cursor, caught_up)

    # ---- end ------------------------------------------------------------------------------
    def close(self, outcome: str = "complete") -> None:
        """Write the final delivery evidence entry."""
        self.recorder.flush(final=True, outcome=outcome)
