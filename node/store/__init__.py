"""The node's store: SQLite in WAL mode.

    from node.store import Store
    with Store("data/store.db") as store:
        store.ensure_dataset("population", "Person", publish=True)
        results = store.upsert_many("population", [("p1", {...}), ("p2", {...})])  # one commit
        for rec in store.iter_records("population"):                             # paged, constant memory
            rec.id, rec.version, rec.data

Durability. Every write is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction;
when a write call returns, its commit is on disk. The default ``durability="full"``
runs WAL with ``synchronous=FULL``: the WAL is fsynced at every commit, so an
acknowledged write survives a killed process AND a power loss or OS crash. Batched
writes (``upsert_many``) pay the fsync once per batch, which keeps this cheap.
``durability="normal"`` (``synchronous=NORMAL``) skips that fsync: still durable
against a killed process (the WAL is in the OS page cache), but the last commits
may be lost on power loss, so a record acknowledged to a peer could vanish.
Use it only where the source can resend.

Concurrency. One connection per thread (created on first use); writers in
threads and processes serialise on SQLite's write lock and wait up to
``busy_timeout`` seconds; readers never block writers. ``transaction()`` nests,
so a caller can group several writes (records + an evidence entry) in one commit.

Records. Content is stored as canonical JSON (sorted keys, no spaces) with a
blake2b-128 hash; the same content is a no-op, changed content a new version
(old versions move to ``history``), deletion a tombstone version. Every new
version gets a change-feed entry (monotonic ``seq``) and, for datasets
registered with ``publish=True``, an outbox row, in the same transaction.
"""

from __future__ import annotations

from node.store._db import DURABILITY, StoreBase
from node.store._packed import PackedBodies, PackedDigests
from node.store._reads import EncodedPage, RawRow, ReadsMixin
from node.store._records import RECORD_ID_RE, RecordsMixin, canonical_body, content_hash, json_ids
from node.store._schema import SCHEMA_VERSION
from node.store._tables import TablesMixin
from node.store._types import (
    ACCESS_STATUSES,
    QUARANTINE_STATUSES,
    AccessRequest,
    Change,
    DatasetInfo,
    OutboxItem,
    QuarantineItem,
    StoredRecord,
    UpsertResult,
    datetime_to_us,
    us_to_datetime,
)

__all__ = [
    "Store",
    "PackedBodies",
    "PackedDigests",
    "DURABILITY",
    "SCHEMA_VERSION",
    "RECORD_ID_RE",
    "DatasetInfo",
    "UpsertResult",
    "StoredRecord",
    "RawRow",
    "EncodedPage",
    "Change",
    "OutboxItem",
    "AccessRequest",
    "QuarantineItem",
    "ACCESS_STATUSES",
    "QUARANTINE_STATUSES",
    "canonical_body",
    "content_hash",
    "json_ids",
    "datetime_to_us",
    "us_to_datetime",
]


class Store(ReadsMixin, RecordsMixin, TablesMixin, StoreBase):
    """The node store. See the module docstring for durability and concurrency."""
