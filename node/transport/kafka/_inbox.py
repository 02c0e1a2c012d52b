"""The provider's version of every record received over Kafka (idempotent storage).

The store numbers versions locally; a consumer must also know which version of
the provider's record it holds, so that a redelivered or stale message is not
stored again. This table, in the node's store and written in the same
transaction as the records, keeps (local dataset, record id) -> the provider's
version and where it came from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from node.store import Store, json_ids

__all__ = ["INBOX_DDL", "ensure_inbox", "known_versions", "remember_versions", "ReceivedVersion",
           "received_version"]

INBOX_DDL = """
CREATE TABLE IF NOT EXISTS kafka_inbox (
    dataset      TEXT NOT NULL,      -- the local dataset the record was stored in
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL,   -- the provider's version
    provider     TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL,
    received_us  INTEGER NOT NULL,
    PRIMARY KEY (dataset, id)
) WITHOUT ROWID
"""
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ReceivedVersion:
    dataset: str
    id: str
    version: int
    provider: str
    topic: str
    partition: int
    offset: int
    received_us: int


def ensure_inbox(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(INBOX_DDL)


# the held versions of the ids in a JSON array (json_each first: one primary-key search per id)
_KNOWN_JSON = ("SELECT k.id, k.version FROM json_each(?2) AS j CROSS JOIN kafka_inbox AS k "
               "ON k.dataset = ?1 AND k.id = j.value")


def known_versions(conn: sqlite3.Connection, dataset: str, ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    unique = list(dict.fromkeys(ids))
    unique_json = json_ids(unique)
    if unique_json is not None:
        for rid, version in conn.execute(_KNOWN_JSON, (dataset, unique_json)):
            out[rid] = version
        return out
    for i in range(0, len(unique), _CHUNK):
        chunk = unique[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for rid, version in conn.execute(
                f"SELECT id, version FROM kafka_inbox WHERE dataset = ? AND id IN ({marks})", (dataset, *chunk)):
            out[rid] = version
    return out


_ROWS = 128  # rows per INSERT statement (a multiple-row VALUES list: SQLite does the rows' work in one call)
# Rows alike in (dataset, provider, topic, partition, received_us), as a consumer's batch mostly
# is, bind those once (?1..?5) and (id, version, offset) for each row.
_UPSERT_HEAD = ("INSERT INTO kafka_inbox (dataset, id, version, provider, topic, partition, kafka_offset, "
                "received_us) VALUES ")
_UPSERT_ROW = "(?1,?{0},?{1},?2,?3,?4,?{2},?5)"
_UPSERT_TAIL = (" ON CONFLICT (dataset, id) DO UPDATE SET version = excluded.version, provider = excluded.provider, "
                "topic = excluded.topic, partition = excluded.partition, kafka_offset = excluded.kafka_offset, "
                "received_us = excluded.received_us WHERE excluded.version > kafka_inbox.version")
_SQL: dict[int, str] = {}


def _upsert_sql(rows: int) -> str:
    sql = _SQL.get(rows)
    if sql is None:
        sql = _SQL[rows] = _UPSERT_HEAD + ",".join(
            _UPSERT_ROW.format(6 + 3 * r, 7 + 3 * r, 8 + 3 * r) for r in range(rows)) + _UPSERT_TAIL
    return sql


def _upsert_run(conn: sqlite3.Connection, shared: tuple[object, ...], flat: list[object]) -> None:
    """Upsert rows alike in ``shared`` (dataset, provider, topic, partition, received_us); ``flat``
    holds (id, version, offset) of each."""
    total = len(flat) // 3
    done = 0
    size = _ROWS
    while done < total:
        while size > total - done:  # 128 rows a statement, then powers of two: a few cached statements
            size //= 2
        conn.execute(_upsert_sql(size), (*shared, *flat[done * 3:(done + size) * 3]))
        done += size


def remember_versions(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, int, str, str, int, int, int]]) -> None:
    """Rows of (dataset, id, version, provider, topic, partition, offset, received_us), applied in order
    (a version not newer than the one held changes nothing)."""
    shared: tuple[object, ...] = ()
    flat: list[object] = []
    for dataset, rid, version, provider, topic, partition, offset, received_us in rows:
        key = (dataset, provider, topic, partition, received_us)
        if key != shared:  # a run of rows alike in these ends: store it, in order
            if flat:
                _upsert_run(conn, shared, flat)
                flat = []
            shared = key
        flat += (rid, version, offset)
    if flat:
        _upsert_run(conn, shared, flat)


def received_version(store: Store, dataset: str, record_id: str) -> ReceivedVersion | None:
    """The provider's version of a record received over Kafka (None if none was received)."""
    with store.reader() as conn:
        try:
            row = conn.execute("SELECT dataset, id, version, provider, topic, partition, kafka_offset, received_us "
                               "FROM kafka_inbox WHERE dataset = ? AND id = ?", (dataset, record_id)).fetchone()
        except sqlite3.OperationalError:  # the table is made when the exchange first starts
            return None
    return None if row is None else ReceivedVersion(*row)
