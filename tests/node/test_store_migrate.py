"""Upgrading a version 2 store (one records table and one change feed for every dataset) to
version 3 (each dataset's records and change feed in tables of their own).

The fixture ``data/store_v2.sql`` is a store that version 2 of node.store wrote (two datasets
with new, changed, deleted and revived records, a recheck, an outbox partly published), dumped
as SQL. Upgraded, every row must read as before through the ``records`` and ``changes`` views
and through the store's calls, and the feed must go on from its last seq.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from node.errors import NotFound
from node.store import SCHEMA_VERSION, Store
from node.store._schema import changes_table, records_table

V2_SQL = Path(__file__).parent / "data" / "store_v2.sql"


def v2_schema() -> str:
    """The version 2 schema alone (the fixture's CREATE statements)."""
    out, keep = [], False
    for line in V2_SQL.read_text(encoding="utf-8").splitlines():
        if line.startswith("CREATE "):
            keep = True
        if keep:
            out.append(line)
        if keep and line.endswith(";"):
            keep = False
    return "\n".join(out) + "\n"


def _make_v2(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V2_SQL.read_text(encoding="utf-8"))
        return _rows(conn)


def _rows(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "records": conn.execute("SELECT dataset, id, version, hash, body, deleted, modified_us, seq, checked "
                                "FROM records ORDER BY dataset, id").fetchall(),
        "changes": conn.execute("SELECT seq, dataset, record_id, version, op, at_us FROM changes "
                                "ORDER BY seq").fetchall(),
        "history": conn.execute("SELECT * FROM history ORDER BY dataset, id, version").fetchall(),
        "outbox": conn.execute("SELECT * FROM outbox ORDER BY id").fetchall(),
        "datasets": conn.execute("SELECT id, record_type, publish, metadata, created_us, updated_us FROM datasets "
                                 "ORDER BY id").fetchall(),
    }


def test_the_fixture_is_a_version_2_store(tmp_path: Path) -> None:
    before = _make_v2(tmp_path / "old.db")
    with closing(sqlite3.connect(tmp_path / "old.db")) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone() == (13,)
    assert {r[0] for r in before["records"]} == {"inbox", "population"}
    assert any(r[5] for r in before["records"]) and before["history"] and before["outbox"]


def test_every_row_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    before = _make_v2(path)
    with Store(path) as store:
        with store.reader() as conn:
            assert _rows(conn) == before
            assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
                str(SCHEMA_VERSION),)
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert conn.execute("SELECT id, num FROM datasets ORDER BY num").fetchall() == [
                ("population", 1), ("inbox", 2), ("empty", 3)]
        assert {records_table(n) for n in (1, 2, 3)} | {changes_table(n) for n in (1, 2, 3)} <= names
        assert not {"records_by_modified", "changes_by_dataset"} & names
        assert store.latest_seq() == 13
        # the store's calls
        p1 = store.get_record("population", "p1")
        assert p1 is not None and p1.version == 2 and p1.checked == "fp2" and p1.data["name"] == "张一改"
        assert [r.version for r in store.record_versions("population", "p2")] == [1, 2, 3]
        assert store.get_record("population", "p2", version=2).deleted  # type: ignore[union-attr]
        assert [r.id for r in store.iter_records("population")] == ["p0", "p1", "p2", "p4", "p9"]
        assert store.get_record("population", "p3").deleted  # type: ignore[union-attr]
        assert store.count_records("inbox") == 3 and store.count_records("empty") == 0
        assert [c.seq for c in store.changes(0, dataset="inbox")] == [6, 7, 8]
        assert [(c.seq, c.dataset, c.record_id, c.version, c.op, c.at_us) for c in store.changes(0)] == \
            before["changes"]
        assert [c.seq for c in store.changes(5, limit=4)] == [6, 7, 8, 9]
        assert [o.seq for o in store.pending_outbox()] == [3, 4, 5, 9, 10, 11, 12, 13]


def test_the_feed_goes_on_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_v2(path)
    with Store(path) as store:
        store.upsert("inbox", "q9", {"id": "q9"})
        store.upsert("population", "p0", {"id": "p0", "name": "改"})
        store.ensure_dataset("later", "Person")
        store.upsert("later", "x1", {"id": "x1"})
        assert [(c.seq, c.dataset, c.record_id, c.version) for c in store.changes(13)] == [
            (14, "inbox", "q9", 1), (15, "population", "p0", 2), (16, "later", "x1", 1)]
        assert store.latest_seq() == 16
        assert [o.seq for o in store.pending_outbox()][-1] == 15  # population publishes, inbox does not
        with store.reader() as conn:
            assert conn.execute("SELECT dataset, id FROM records WHERE dataset = 'later'").fetchall() == [
                ("later", "x1")]
    with Store(path) as store:  # opened again: nothing more to upgrade
        assert store.latest_seq() == 16 and store.dataset_num("later") == 4


def test_a_failed_upgrade_leaves_the_store_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    before = _make_v2(path)
    import node.store._schema as schema

    def broken(conn: sqlite3.Connection) -> None:
        schema._split_datasets(conn)
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setitem(schema.MIGRATIONS, 2, broken)
    with pytest.raises(Exception, match="simulated"):
        Store(path)
    with closing(sqlite3.connect(path)) as conn:
        assert _rows(conn) == before
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)


def test_unregistered_datasets_read_as_empty(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.get_record("nope", "x") is None
        assert store.record_versions("nope", "x") == []
        assert list(store.iter_records("nope")) == [] and store.count_records("nope") == 0
        assert store.changes(0, dataset="nope") == [] and store.changes(0) == []
        assert store.record_stats("nope") == (0, None)
        assert list(store.record_pages("nope", fingerprint="f")) == []
        with pytest.raises(NotFound, match="ensure_dataset"):
            store.upsert("nope", "x", {"id": "x"})
        with store.reader() as conn:  # the views exist before any dataset does
            assert conn.execute("SELECT count(*) FROM records").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM changes").fetchone() == (0,)


def test_each_dataset_writes_its_own_tables(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.ensure_dataset("b", "Person")
        store.ensure_dataset("a", "Person")
        store.ensure_dataset("b", "Person", publish=True)  # updated, not renumbered
        assert (store.dataset_num("b"), store.dataset_num("a")) == (1, 2)
        store.upsert_many("a", [(f"r{i}", {"id": f"r{i}"}) for i in range(3)])
        store.upsert_many("b", [("r0", {"id": "r0", "v": 1})])
        with store.reader() as conn:
            assert conn.execute(f"SELECT id FROM {records_table(2)} ORDER BY id").fetchall() == [
                ("r0",), ("r1",), ("r2",)]
            assert conn.execute(f"SELECT seq, record_id FROM {changes_table(1)}").fetchall() == [(4, "r0")]
        assert [(c.seq, c.dataset) for c in store.changes(0)] == [(1, "a"), (2, "a"), (3, "a"), (4, "b")]
        assert [(c.seq, c.dataset) for c in store.changes(1, limit=2)] == [(2, "a"), (3, "a")]
        assert store.record_stats("a")[0] == 3


def test_the_views_nest_their_unions_for_many_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import node.store._schema as schema

    monkeypatch.setattr(schema, "_UNION_ARMS", 3)  # SQLite allows 500 arms a compound SELECT: nested beyond
    with Store(tmp_path / "s.db", durability="normal") as store:
        for i in range(11):
            store.ensure_dataset(f"d{i:02d}", "Person")
            store.upsert(f"d{i:02d}", "r", {"id": "r", "i": i})
        with store.reader() as conn:
            assert conn.execute("SELECT dataset FROM records ORDER BY dataset").fetchall() == [
                (f"d{i:02d}",) for i in range(11)]
            assert conn.execute("SELECT seq, dataset FROM changes ORDER BY seq").fetchall() == [
                (i + 1, f"d{i:02d}") for i in range(11)]
            assert "SELECT * FROM (" in conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'records'").fetchone()[0]
