"""The store's SQLite schema (version 2; :data:`MIGRATIONS` upgrade older stores in place)."""

from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "DDL", "MIGRATIONS"]

SCHEMA_VERSION = 2

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS datasets (
    id          TEXT PRIMARY KEY,
    record_type TEXT,
    publish     INTEGER NOT NULL DEFAULT 0,   -- 1: every change goes to the outbox (Kafka)
    metadata    TEXT NOT NULL DEFAULT '{}',   -- catalog metadata, JSON
    created_us  INTEGER NOT NULL,
    updated_us  INTEGER NOT NULL
) WITHOUT ROWID;

-- the current version of every record (a tombstone when deleted: body NULL, deleted 1)
CREATE TABLE IF NOT EXISTS records (
    dataset     TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    hash        BLOB NOT NULL,                -- blake2b-128 of the canonical JSON; empty for tombstones
    body        TEXT,                         -- canonical JSON
    deleted     INTEGER NOT NULL DEFAULT 0,
    modified_us INTEGER NOT NULL,             -- microseconds since the epoch, UTC
    seq         INTEGER NOT NULL,             -- the change that made this version
    checked     TEXT,                         -- the validator fingerprint it passed at the boundary; NULL: none
    PRIMARY KEY (dataset, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_modified ON records (dataset, modified_us, id);

-- superseded versions
CREATE TABLE IF NOT EXISTS history (
    dataset     TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    body        TEXT,
    deleted     INTEGER NOT NULL,
    modified_us INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    checked     TEXT,
    PRIMARY KEY (dataset, id, version)
) WITHOUT ROWID;

-- the change feed: one row per new version, seq is monotonic and never reused
CREATE TABLE IF NOT EXISTS changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset   TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version   INTEGER NOT NULL,
    op        TEXT NOT NULL,                  -- upsert | delete
    at_us     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_dataset ON changes (dataset, seq);

-- transactional outbox for the Kafka publisher (written with the change it announces);
-- holds only unpublished rows: mark_published deletes them
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset    TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    op         TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    created_us INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS access_requests (
    id         TEXT PRIMARY KEY,
    consumer   TEXT NOT NULL,                 -- consumer department's credit code
    dataset    TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    scenario   TEXT NOT NULL,
    items      TEXT NOT NULL,                 -- JSON array of item names
    until      TEXT,                          -- YYYY-MM-DD, the requested period's end
    status     TEXT NOT NULL,                 -- pending | approved | denied
    reason     TEXT NOT NULL DEFAULT '',
    filed_at   TEXT NOT NULL,                 -- ISO 8601 UTC
    deadline   TEXT,                          -- YYYY-MM-DD by which the provider must answer
    decided_at TEXT,
    decided_by TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS access_requests_by_status ON access_requests (status, filed_at);
CREATE INDEX IF NOT EXISTS access_requests_by_pair ON access_requests (consumer, dataset);

-- generic state for node.policy (grants ...): namespace + key -> JSON
CREATE TABLE IF NOT EXISTS policy_state (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS quarantine (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL,
    headers      TEXT NOT NULL,               -- JSON [[key, value], ...]
    value        BLOB,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,               -- held | released | discarded
    UNIQUE (topic, partition, kafka_offset)
);
CREATE INDEX IF NOT EXISTS quarantine_by_status ON quarantine (status, id);

-- the hash-chained, signed evidence log (written by node.evidence)
CREATE TABLE IF NOT EXISTS evidence (
    seq       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    details   TEXT NOT NULL,                  -- canonical JSON
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);
"""

#: from version N to N+1: statements run in the upgrade's transaction
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE records ADD COLUMN checked TEXT",
        "ALTER TABLE history ADD COLUMN checked TEXT"),
}
