"""The store's SQLite schema (version 3; :data:`MIGRATIONS` upgrade older stores in place).

Each dataset keeps its records and its change feed in tables of its own
(:func:`dataset_ddl`: ``records_N``, ``changes_N``, N the dataset's ``num``), so that
a dataset's writes land at the end of its own B-trees: new records with rising ids
and every change-feed and modification-time entry append, whatever other datasets
the store holds. With one table for all datasets, a dataset whose id sorts before
another's inserted every row into the middle of each index (a full seek and page
splits each time; about a third more store time per record in a store holding
another dataset of 100,000 records). The views ``records`` and ``changes`` show
every dataset's rows with a ``dataset`` column, in the layout of version 2, for
reading (they are rebuilt whenever a dataset is added).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["SCHEMA_VERSION", "DDL", "MIGRATIONS", "dataset_ddl", "views_ddl", "records_table", "changes_table"]

SCHEMA_VERSION = 3

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
    updated_us  INTEGER NOT NULL,
    num         INTEGER                       -- names the dataset's tables: records_<num>, changes_<num>
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS datasets_by_num ON datasets (num);

-- superseded versions (of every dataset)
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

-- the change feed's last seq (the feed itself is in each dataset's changes_<num>): seq is
-- monotonic across datasets and never reused
CREATE TABLE IF NOT EXISTS feed (
    id  INTEGER PRIMARY KEY CHECK (id = 0),
    seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO feed (id, seq) VALUES (0, 0);

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


def records_table(num: int) -> str:
    return f"records_{int(num)}"


def changes_table(num: int) -> str:
    return f"changes_{int(num)}"


def dataset_ddl(num: int) -> tuple[str, ...]:
    """The tables of dataset number ``num``: its current records and its change feed."""
    r, c = records_table(num), changes_table(num)
    return (
        # the current version of every record (a tombstone when deleted: body NULL, deleted 1)
        f"""CREATE TABLE IF NOT EXISTS {r} (
            id          TEXT NOT NULL PRIMARY KEY,
            version     INTEGER NOT NULL,
            hash        BLOB NOT NULL,        -- blake2b-128 of the canonical JSON; empty for tombstones
            body        TEXT,                 -- canonical JSON
            deleted     INTEGER NOT NULL DEFAULT 0,
            modified_us INTEGER NOT NULL,     -- microseconds since the epoch, UTC
            seq         INTEGER NOT NULL,     -- the change that made this version
            checked     TEXT                  -- the validator fingerprint it passed at the boundary; NULL: none
        ) WITHOUT ROWID""",
        f"CREATE INDEX IF NOT EXISTS {r}_by_modified ON {r} (modified_us, id)",
        # one row per new version (seq: the feed's, see the feed table)
        f"""CREATE TABLE IF NOT EXISTS {c} (
            seq       INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL,
            version   INTEGER NOT NULL,
            op        TEXT NOT NULL,          -- upsert | delete
            at_us     INTEGER NOT NULL
        )""",
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: SELECTs per compound SELECT in a view (SQLite allows 500 by default: larger unions are nested)
_UNION_ARMS = 200


def _union_all(selects: list[str]) -> str:
    """``a UNION ALL b ...``, nested in groups of :data:`_UNION_ARMS` (for any number of datasets)."""
    while len(selects) > _UNION_ARMS:
        selects = [f"SELECT * FROM ({' UNION ALL '.join(selects[i:i + _UNION_ARMS])})"
                   for i in range(0, len(selects), _UNION_ARMS)]
    return " UNION ALL ".join(selects)


def views_ddl(datasets: list[tuple[str, int]]) -> tuple[str, ...]:
    """The ``records`` and ``changes`` views over the datasets' tables ((id, num) pairs)."""
    if datasets:
        records = _union_all([
            f"SELECT {_quote(d)} AS dataset, id, version, hash, body, deleted, modified_us, seq, checked "
            f"FROM {records_table(n)}" for d, n in datasets])
        changes = _union_all([
            f"SELECT seq, {_quote(d)} AS dataset, record_id, version, op, at_us FROM {changes_table(n)}"
            for d, n in datasets])
    else:
        records = ("SELECT NULL AS dataset, NULL AS id, NULL AS version, NULL AS hash, NULL AS body, "
                   "NULL AS deleted, NULL AS modified_us, NULL AS seq, NULL AS checked WHERE 0")
        changes = ("SELECT NULL AS seq, NULL AS dataset, NULL AS record_id, NULL AS version, NULL AS op, "
                   "NULL AS at_us WHERE 0")
    return ("DROP VIEW IF EXISTS records", f"CREATE VIEW records AS {records}",
            "DROP VIEW IF EXISTS changes", f"CREATE VIEW changes AS {changes}")


def _split_datasets(conn: sqlite3.Connection) -> None:
    """Version 2 to 3: each dataset's records and change feed move to tables of its own."""
    conn.execute("ALTER TABLE datasets ADD COLUMN num INTEGER")
    datasets = [r[0] for r in conn.execute("SELECT id FROM datasets ORDER BY created_us, id")]
    # a record of a dataset that is not registered cannot be written; should one be there, keep it
    datasets += [r[0] for r in conn.execute(
        "SELECT DISTINCT dataset FROM records WHERE dataset NOT IN (SELECT id FROM datasets) "
        "UNION SELECT DISTINCT dataset FROM changes WHERE dataset NOT IN (SELECT id FROM datasets) ORDER BY 1")]
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    # the feed goes on after the newest seq of any kind (sqlite_sequence alone could lag a hand-made store)
    last = max(int(row[0]) if row else 0, *(
        int(conn.execute(f"SELECT coalesce(max(seq), 0) FROM {t}").fetchone()[0])
        for t in ("changes", "records", "history")))
    conn.execute("CREATE TABLE feed (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL)")
    conn.execute("INSERT INTO feed (id, seq) VALUES (0, ?)", (last,))
    for num, dataset in enumerate(datasets, start=1):
        conn.execute("INSERT INTO datasets (id, num, record_type, publish, metadata, created_us, updated_us) "
                     "VALUES (?, ?, NULL, 0, '{}', 0, 0) ON CONFLICT (id) DO UPDATE SET num = excluded.num",
                     (dataset, num))
        for statement in dataset_ddl(num):
            conn.execute(statement)
        conn.execute(f"INSERT INTO {records_table(num)} (id, version, hash, body, deleted, modified_us, seq, checked) "
                     "SELECT id, version, hash, body, deleted, modified_us, seq, checked FROM records "
                     "WHERE dataset = ? ORDER BY id", (dataset,))
        conn.execute(f"INSERT INTO {changes_table(num)} (seq, record_id, version, op, at_us) "
                     "SELECT seq, record_id, version, op, at_us FROM changes WHERE dataset = ? ORDER BY seq",
                     (dataset,))
    for statement in ("DROP INDEX IF EXISTS records_by_modified", "DROP TABLE records",
                      "DROP INDEX IF EXISTS changes_by_dataset", "DROP TABLE changes"):
        conn.execute(statement)


#: from version N to N+1: statements (or a function) run in the upgrade's transaction
MIGRATIONS: dict[int, tuple[str, ...] | Callable[[sqlite3.Connection], None]] = {
    1: ("ALTER TABLE records ADD COLUMN checked TEXT",
        "ALTER TABLE history ADD COLUMN checked TEXT"),
    2: _split_datasets,
}
