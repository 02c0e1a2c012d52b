"""node.store: versioned records, change feed, outbox, paged queries, threads."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.errors import InputError, IntegrityError, NotFound
from node.store import Store, canonical_body, content_hash


def person(i: int, **extra: Any) -> dict[str, Any]:
    rec = {"id": f"p{i:06d}", "type": "Person", "identityNumber": "11010519491231002X", "name": f"张三{i}",
           "sex": "1", "ethnicity": "01", "birthDate": "1949-12-31", "householdDivision": "110105"}
    rec.update(extra)
    return rec


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.db") as s:
        s.ensure_dataset("population", "Person", publish=True, metadata={"title_zh": "人口"})
        s.ensure_dataset("quiet", "Person")
        yield s


def test_wal_and_durability_pragmas(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as s, s.reader() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with Store(tmp_path / "b.db", durability="normal") as s, s.reader() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with pytest.raises(InputError):
        Store(tmp_path / "c.db", durability="fast")


def test_upsert_versions_noop_and_tombstone(store: Store) -> None:
    r = store.upsert_many("population", [(f"p{i:06d}", person(i)) for i in range(3)])
    assert [(x.id, x.version, x.changed) for x in r] == [("p000000", 1, True), ("p000001", 1, True),
                                                         ("p000002", 1, True)]
    # same content (key order does not matter): no-op
    same = dict(reversed(list(person(1).items())))
    assert store.upsert("population", "p000001", same).changed is False
    # changed content: new version, old one kept
    r2 = store.upsert("population", "p000001", person(1, name="李四"))
    assert (r2.version, r2.changed) == (2, True)
    assert store.get_record("population", "p000001").data["name"] == "李四"  # type: ignore[union-attr,index]
    assert store.get_record("population", "p000001", version=1).data["name"] == "张三1"  # type: ignore[union-attr,index]
    # deletion: tombstone version; deleting again is a no-op
    d = store.delete("population", "p000001")
    assert (d.version, d.changed) == (3, True)
    tomb = store.get_record("population", "p000001")
    assert tomb is not None and tomb.deleted and tomb.data is None and tomb.hash == ""
    assert store.delete("population", "p000001").changed is False
    assert store.delete("population", "never").version == 0
    # resurrection with the old content is a new version
    r3 = store.upsert("population", "p000001", person(1, name="李四"))
    assert (r3.version, r3.changed) == (4, True)
    assert [v.version for v in store.record_versions("population", "p000001")] == [1, 2, 3, 4]
    assert store.count_records("population") == 3
    assert store.get_record("population", "nope") is None


def test_hash_is_blake2b_of_canonical_json(store: Store) -> None:
    store.upsert("population", "p000007", person(7))
    rec = store.get_record("population", "p000007")
    assert rec is not None
    body = canonical_body(person(7))
    assert rec.body == body and rec.hash == content_hash(body).hex()
    assert body.startswith('{"birthDate":"1949-12-31","ethnicity":"01"') and "张三7" in body


def test_same_id_twice_in_one_batch(store: Store) -> None:
    r = store.upsert_many("population", [("p000001", person(1)), ("p000001", person(1, name="b")),
                                         ("p000001", person(1, name="b"))])
    assert [(x.version, x.changed) for x in r] == [(1, True), (2, True), (2, False)]
    assert [c.version for c in store.changes(dataset="population")] == [1, 2]


def test_change_feed_cursor(store: Store) -> None:
    store.upsert_many("population", [(f"p{i:06d}", person(i)) for i in range(5)])
    store.upsert_many("quiet", [("q1", {"name": "x"})])
    store.delete("population", "p000002")
    all_changes = store.changes(0)
    assert [c.seq for c in all_changes] == [1, 2, 3, 4, 5, 6, 7]
    assert all_changes[-1].op == "delete" and all_changes[-1].record_id == "p000002"
    page1 = store.changes(0, limit=3)
    page2 = store.changes(page1[-1].seq, limit=3)
    page3 = store.changes(page2[-1].seq, limit=3)
    assert [c.seq for c in page1 + page2 + page3] == [1, 2, 3, 4, 5, 6, 7]
    assert [c.seq for c in store.changes(0, dataset="quiet")] == [6]
    assert store.latest_seq() == 7
    assert all_changes[0].at.tzinfo is not None
    # no-op writes do not touch the feed
    store.upsert("population", "p000000", person(0))
    assert store.latest_seq() == 7


def test_outbox_written_with_the_change_only_for_publishing_datasets(store: Store) -> None:
    store.upsert_many("population", [(f"p{i:06d}", person(i)) for i in range(4)])
    store.upsert_many("quiet", [("q1", {"name": "x"})])
    pending = store.pending_outbox(limit=10)
    assert [(o.dataset, o.record_id, o.version, o.op) for o in pending] == [
        ("population", f"p{i:06d}", 1, "upsert") for i in range(4)]
    assert store.outbox_pending_count() == 4
    assert store.mark_published([pending[0].id, pending[1].id]) == 2
    assert [o.record_id for o in store.pending_outbox()] == ["p000002", "p000003"]
    assert store.mark_published([pending[0].id]) == 0
    store.delete("population", "p000003")
    assert store.pending_outbox()[-1].op == "delete"


def test_failed_batch_writes_nothing(store: Store) -> None:
    store.upsert("population", "p000000", person(0))
    with pytest.raises(InputError, match="bad id"):
        store.upsert_many("population", [("p000001", person(1)), ("bad id!", {})])
    with pytest.raises(InputError, match="its 'id' field"):
        store.upsert_many("population", [("p000001", person(2))])
    with pytest.raises(InputError, match="JSON"):
        store.upsert_many("population", [("p000001", {"x": float("nan")})])
    with pytest.raises(InputError, match="JSON object"):
        store.upsert_many("population", [("p000001", ["list"])])  # type: ignore[list-item]
    with pytest.raises(NotFound, match="ensure_dataset"):
        store.upsert_many("unknown", [("x", {})])
    assert store.count_records("population") == 1 and store.latest_seq() == 1


def test_transaction_groups_and_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert("population", "p000001", person(1))
            store.upsert("population", "p000002", person(2))
            raise RuntimeError("boom")
    assert store.count_records("population") == 0 and store.outbox_pending_count() == 0
    with store.transaction():
        store.upsert("population", "p000001", person(1))
        assert store.in_transaction
    assert store.count_records("population") == 1
    # a failing inner block is undone alone; the outer one still commits
    with store.transaction():
        store.upsert("population", "p000002", person(2))
        with pytest.raises(KeyError), store.transaction():
            store.upsert("population", "p000003", person(3))
            raise KeyError("inner")
    assert [r.id for r in store.iter_records("population")] == ["p000001", "p000002"]
    assert not store.in_transaction


def test_async_context_manager(tmp_path: Path) -> None:
    async def main() -> int:
        async with Store(tmp_path / "a.db") as s:
            s.ensure_dataset("d")
            s.upsert("d", "x", {"v": 1})
            return s.count_records("d")

    assert asyncio.run(main()) == 1


def test_iter_records_pages_filters_and_limits(store: Store) -> None:
    store.upsert_many("population", [(f"p{i:06d}", person(i)) for i in range(25)])
    store.delete("population", "p000003")
    ids = [r.id for r in store.iter_records("population", page_size=4)]
    assert ids == [f"p{i:06d}" for i in range(25) if i != 3]
    assert len(list(store.iter_records("population", include_deleted=True, page_size=7))) == 25
    assert [r.id for r in store.iter_records("population", limit=5, page_size=2)] == [f"p{i:06d}" for i in (0, 1, 2, 4, 5)]
    got = [r.id for r in store.iter_records("population", ids=["p000010", "p000003", "zz", "p000001"])]
    assert got == ["p000001", "p000010"]
    assert list(store.iter_records("population", limit=0)) == []
    with pytest.raises(InputError):
        list(store.iter_records("population", page_size=0))


def test_iter_modified_since(store: Store) -> None:
    store.upsert_many("population", [(f"p{i:06d}", person(i)) for i in range(10)])
    cut = dt.datetime.now(dt.UTC)
    store.upsert_many("population", [(f"p{i:06d}", person(i, name="新")) for i in (7, 2, 9)])
    store.delete("population", "p000005")
    changed = list(store.iter_records("population", modified_since=cut, page_size=1))
    assert sorted(r.id for r in changed) == ["p000002", "p000007", "p000009"]
    with_deleted = list(store.iter_records("population", modified_since=cut, include_deleted=True, page_size=2))
    assert {r.id for r in with_deleted} == {"p000002", "p000005", "p000007", "p000009"}
    assert len(list(store.iter_records("population", modified_since=cut, limit=2, page_size=1))) == 2
    naive = cut.replace(tzinfo=None)  # naive datetimes are taken as UTC
    assert len(list(store.iter_records("population", modified_since=naive))) == 3


def test_datasets(store: Store) -> None:
    info = store.get_dataset("population")
    assert info.publish and info.record_type == "Person" and info.metadata == {"title_zh": "人口"}
    store.ensure_dataset("population", "Person", publish=False)
    assert store.get_dataset("population").publish is False
    assert [d.id for d in store.list_datasets()] == ["population", "quiet"]
    with pytest.raises(NotFound):
        store.get_dataset("nope")


def test_threads_share_one_store(store: Store) -> None:
    def work(t: int) -> int:
        n = 0
        for b in range(5):
            batch = [(f"t{t}-{b}-{i}", {"n": i, "t": t}) for i in range(40)]
            n += sum(r.changed for r in store.upsert_many("quiet", batch))
            n -= sum(1 for _ in store.iter_records("quiet", limit=10))
            n += 10
        return n

    with ThreadPoolExecutor(max_workers=8) as pool:
        totals = list(pool.map(work, range(8)))
    assert totals == [200] * 8
    assert store.count_records("quiet") == 8 * 5 * 40
    seqs = [c.seq for c in store.changes(0, limit=10_000)]
    assert seqs == list(range(1, 1601))
    assert threading.active_count() >= 1


def test_reopen_and_schema_guard(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.ensure_dataset("d")
        s.upsert("d", "a", {"x": 1})
    with Store(path) as s:
        assert s.get_record("d", "a").data == {"x": 1}  # type: ignore[union-attr]
        with s.transaction() as conn:
            conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(IntegrityError, match="schema version 99"):
        Store(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IntegrityError, match="not a Shulian store"):
        Store(junk)


def test_closed_store_refuses(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.db")
    s.close()
    with pytest.raises(Exception, match="closed"):
        s.ensure_dataset("x")
    assert isinstance(sqlite3.sqlite_version, str)


# ---- property: the store behaves like a dict of versions ------------------------------------
ops = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]),
                         st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 2),
                                                              max_size=2))),
               min_size=1, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(ops, min_size=1, max_size=4))
def test_model(tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[str, dict[str, int] | None]]]) -> None:
    path = tmp_path_factory.mktemp("model") / "s.db"
    model: dict[str, tuple[int, dict[str, int] | None]] = {}
    changes = 0
    with Store(path, durability="normal") as s:
        s.ensure_dataset("d")
        for batch in batches:
            for rid, data in batch:  # one call per op, mixing upserts and deletes
                cur = model.get(rid)
                if data is None:
                    r = s.delete("d", rid)
                    expect_change = cur is not None and cur[1] is not None
                else:
                    r = s.upsert("d", rid, data)
                    expect_change = cur is None or cur[1] != data
                assert r.changed == expect_change
                if expect_change:
                    changes += 1
                    model[rid] = ((cur[0] if cur else 0) + 1, data)
                assert r.version == (model[rid][0] if rid in model else 0)
        live = {rid: v for rid, v in model.items() if v[1] is not None}
        got = {r.id: (r.version, r.data) for r in s.iter_records("d", page_size=2)}
        assert got == live
        assert s.latest_seq() == changes


@pytest.mark.parametrize("bad", ["p1\n", "p1\n\n", "\np1", "p 1", "", "-p1", "p" * 129])
def test_an_id_with_a_newline_or_space_is_refused(store: Store, bad: str) -> None:
    """The id rule is the whole string: an id ending in a newline is refused too (a "$" anchor,
    as Python reads it, would let "p1\\n" through)."""
    with pytest.raises(InputError, match="bad id"):
        store.upsert("population", bad, {"name": "王"})
    with pytest.raises(InputError):
        store.ensure_dataset(bad, "Person")
    assert store.count_records("population") == 0
