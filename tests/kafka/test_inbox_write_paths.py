"""The Kafka inbox's write paths agree with the plain ones they replace.

known_versions reads through json_each (one bound value) unless the ids cannot go that way;
remember_versions binds the values alike in a run of rows once. Both must give what the plain
statements gave: the same versions read, the same rows held. No broker needed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import node.store._records as records_mod
from node.store import Store
from node.transport.kafka._inbox import (
    INBOX_DDL,
    ensure_inbox,
    known_versions,
    received_version,
    remember_versions,
)


def _reference_remember(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """The plain statement, one row at a time, in order."""
    for row in rows:
        conn.execute("INSERT INTO kafka_inbox (dataset, id, version, provider, topic, partition, kafka_offset, "
                     "received_us) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (dataset, id) DO UPDATE SET "
                     "version = excluded.version, provider = excluded.provider, topic = excluded.topic, "
                     "partition = excluded.partition, kafka_offset = excluded.kafka_offset, "
                     "received_us = excluded.received_us WHERE excluded.version > kafka_inbox.version", row)


def _rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT *, typeof(partition), typeof(received_us) FROM kafka_inbox "
                        "ORDER BY dataset, id").fetchall()


@pytest.fixture()
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with Store(tmp_path / "s.db", durability="normal") as store:
        ensure_inbox(store)
        with store.transaction() as conn:
            yield conn


def _plain_known(conn: sqlite3.Connection, dataset: str, ids: list[Any]) -> dict[str, int]:
    """known_versions as on an SQLite without json_each: the ids bound one by one."""
    saved = records_mod._JSON_EACH
    records_mod._JSON_EACH = False
    try:
        return known_versions(conn, dataset, ids)
    finally:
        records_mod._JSON_EACH = saved


row_st = st.tuples(
    st.sampled_from(["population", "open"]),                  # dataset
    st.sampled_from(["p1", "p2", "p3", 'q"', "张三"]),          # id
    st.integers(1, 5),                                         # the provider's version
    st.sampled_from(["91110000000000000X", "91110000000000001Y"]),
    st.sampled_from(["t.a", "t.b"]),
    st.sampled_from([0, 1, True, 1.0]),                        # partition, of equal values of other types
    st.integers(0, 10**12),                                    # offset
    st.sampled_from([5, 6, 5.0]),                              # received_us
)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(row_st, max_size=300), max_size=4))
def test_remember_versions_holds_what_the_plain_statement_holds(batches: list[list[tuple[Any, ...]]]) -> None:
    a, b = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for c in (a, b):
        c.execute(INBOX_DDL)
    for rows in batches:
        remember_versions(a, rows)
        _reference_remember(b, rows)
        assert _rows(a) == _rows(b)
    # a long run of alike rows: several statements (128 rows each, then fewer)
    run = [("population", f"r{i}", 1, "X", "t", 0, i, 7) for i in range(3 * 128 + 77)]
    remember_versions(a, iter(run))  # any iterable
    _reference_remember(b, run)
    assert _rows(a) == _rows(b)


ODD = ["p1", 'q"', "q\\", "张三", "😀", "", "a\nb", "x" * 300, "1", "null", "a\x00b", "é", "e\u0301"]


def test_known_versions_reads_what_the_plain_query_reads(conn: sqlite3.Connection) -> None:
    remember_versions(conn, [("population", rid, i + 1, "X", "t", 0, i, 1) for i, rid in enumerate(ODD)])
    remember_versions(conn, [("open", "p1", 9, "X", "t", 0, 99, 1)])
    asked = ODD + ["absent", "p1", "张"] + [f"n{i}" for i in range(1200)]  # repeats; past 500 ids a query
    assert known_versions(conn, "population", asked) == _plain_known(conn, "population", asked) == {
        rid: i + 1 for i, rid in enumerate(ODD)}
    assert known_versions(conn, "open", ["p1", "p2"]) == {"p1": 9}
    assert known_versions(conn, "population", []) == {}
    for odd in ([1, "p1"], [b"p1"], [None], ["\ud800"]):  # not plain str: bound one by one, as before
        try:
            plain: Any = _plain_known(conn, "population", odd)
        except Exception as exc:
            plain = type(exc)
        try:
            fast: Any = known_versions(conn, "population", odd)
        except Exception as exc:
            fast = type(exc)
        assert fast == plain


def test_received_version_after_runs(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", durability="normal") as store:
        ensure_inbox(store)
        with store.transaction() as conn:
            remember_versions(conn, [("d", "a", 1, "P", "t1", 0, 10, 100), ("d", "b", 1, "P", "t1", 0, 11, 100),
                                     ("d", "a", 3, "Q", "t2", 2, 12, 101), ("d", "a", 2, "P", "t1", 0, 13, 102)])
        got = received_version(store, "d", "a")
        assert got is not None and (got.version, got.provider, got.topic, got.partition, got.offset,
                                    got.received_us) == (3, "Q", "t2", 2, 12, 101)
        got = received_version(store, "d", "b")
        assert got is not None and (got.version, got.offset) == (1, 11)
