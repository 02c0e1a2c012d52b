"""The store's fast write paths agree with its general ones.

A batch of new records only takes fewer statements (node/store/_records.py: _insert_new, the
change feed and outbox from json_each), or one statement when its bodies and digests come
packed (node/store/_packed.py, as the prepare helper sends them), and the current rows of a
batch are read through json_each; without json_each (or for ids that are not plain str) every
batch takes the general path. All must leave the same rows and return the same results, or
raise the same errors.
"""

from __future__ import annotations

import pickle
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_records import person  # tests/node is on sys.path

import node.store._records as records_mod
from node.jsonenc import canonical_bytes
from node.store import PackedBodies, PackedDigests, Store, content_hash
from node.store._db import PAGE_SIZE
from node.store._records import _ROWS, _current, _insert_new, json_ids
from node.store._schema import records_table


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write at the same microsecond: the time columns compare too."""
    monkeypatch.setattr(records_mod, "_now_us", lambda: 1_700_000_000_123_456)


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that a write makes, every column, with the stored types."""
    with store.reader() as conn:
        return {
            "records": conn.execute("SELECT *, typeof(id), typeof(hash), typeof(body) FROM records "
                                    "ORDER BY dataset, id").fetchall(),
            "history": conn.execute("SELECT * FROM history ORDER BY dataset, id, version").fetchall(),
            "changes": conn.execute("SELECT *, typeof(record_id) FROM changes ORDER BY seq").fetchall(),
            "outbox": conn.execute("SELECT * FROM outbox ORDER BY id").fetchall(),
            "feed": conn.execute("SELECT * FROM feed").fetchall(),
        }


@contextmanager
def general_path() -> Iterator[None]:
    """Writes inside take the general path (as on an SQLite without json_each)."""
    saved = records_mod._JSON_EACH
    records_mod._JSON_EACH = False
    try:
        yield
    finally:
        records_mod._JSON_EACH = saved


def _open(path: Path) -> Store:
    store = Store(path, durability="normal")
    store.ensure_dataset("population", "Person", publish=True)
    store.ensure_dataset("quiet", "Person")
    return store


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    fast, general = _open(tmp_path / "fast.db"), _open(tmp_path / "general.db")
    try:
        yield fast, general
    finally:
        fast.close()
        general.close()


def _outcome(store: Store, call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", call())
    except Exception as exc:  # the same error, raised the same way (the store's file aside)
        return ("error", type(exc), str(exc).replace(str(store.path), "<store>"))


def _both(pair: tuple[Store, Store], method: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    fast, general = pair
    got = _outcome(fast, lambda: getattr(fast, method)(*args, **kwargs))
    with general_path():
        want = _outcome(general, lambda: getattr(general, method)(*args, **kwargs))
    assert got == want
    return got


def _encoded(ids: list[Any], names: list[str]) -> tuple[list[Any], list[bytes], list[bytes]]:
    bodies = [canonical_bytes({"type": "Person", "name": n}) for n in names]
    return ids, bodies, [content_hash(b) for b in bodies]


def _packed(ids: list[Any], bodies: list[bytes], digests: list[bytes]) -> tuple[list[Any], Any, Any]:
    packed_bodies, packed_digests = PackedBodies.of(bodies), PackedDigests.of(digests)
    assert packed_bodies is not None and packed_digests is not None
    return ids, packed_bodies, packed_digests


def _both_packed(pair: tuple[Store, Store], dataset: str, ids: list[Any], bodies: list[bytes], digests: list[bytes],
                 **kwargs: Any) -> tuple[Any, ...]:
    """upsert_encoded with packed bodies and digests (fast store) and with lists on the general path."""
    fast, general = pair
    got = _outcome(fast, lambda: fast.upsert_encoded(dataset, *_packed(ids, bodies, digests), **kwargs))
    with general_path():
        want = _outcome(general, lambda: general.upsert_encoded(dataset, ids, bodies, digests, **kwargs))
    assert got == want
    return got


def test_this_sqlite_has_json_each() -> None:
    # the fast paths run here (and in CI): the comparisons below compare two different paths
    assert records_mod._JSON_EACH
    assert json_ids(["a", "b"]) == '["a","b"]'


def test_json_ids_refuses_what_json_each_cannot_stand_for() -> None:
    assert json_ids([]) == "[]"
    assert json_ids(['q"\\\n', "张三", "😀"]) == '["q\\"\\\\\\n","张三","😀"]'
    for odd in ([1], ["a", None], [b"a"], [("a",)], ["\ud800"], ["a\x00b"]):
        assert json_ids(odd) is None
    with general_path():
        assert json_ids(["a"]) is None


def test_new_batch_takes_the_fast_path(pair: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = records_mod._insert_new

    def spy(conn: sqlite3.Connection, table: str, shared: Any, seq: int, flat: list[Any]) -> None:
        calls.append(len(flat) // 3)
        real(conn, table, shared, seq, flat)

    monkeypatch.setattr(records_mod, "_insert_new", spy)
    fast, _ = pair
    ids, bodies, digests = _encoded([f"p{i}" for i in range(300)], [f"n{i}" for i in range(300)])
    assert fast.upsert_encoded("population", ids, bodies, digests) == ([1] * 300, [True] * 300)
    assert calls == [300]
    # not when an id is in the store, appears twice, or is deleted: the general path
    more, mbodies, mdigests = _encoded(["p0", "new"], ["x", "y"])
    fast.upsert_encoded("population", more, mbodies, mdigests)
    fast.upsert_encoded("population", ["a", "a"], mbodies, mdigests)
    fast.delete_many("population", ["b", "c"])
    fast.upsert_encoded("population", ["d", "e"], [mbodies[0], None], mdigests)  # type: ignore[list-item]
    assert calls == [300]
    fast.upsert_many("population", [("f1", person(1, id="f1")), ("f2", person(2, id="f2"))])
    assert calls == [300, 2]


def test_packed_batch_of_new_records_is_one_statement(pair: tuple[Store, Store],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(records_mod, "_insert_new", lambda *args: calls.append(1))  # never called
    ids = [f"p{i}" for i in range(300)]
    names = ["张三" * (i % 7) + f"{i}" for i in range(300)]  # bodies of different lengths, multibyte text
    assert _both_packed(pair, "population", *_encoded(ids, names), checked="fp") == ("ok", ([1] * 300, [True] * 300))
    assert calls == []
    assert _dump(pair[0]) == _dump(pair[1])
    # packed input that is not all new takes the general path, reading the packed items one by one
    _both_packed(pair, "population", *_encoded(["p0", "p1", "x1"], ["n0", "changed", "n2"]))
    _both_packed(pair, "quiet", *_encoded(["a", "a", "b"], ["1", "2", "3"]))
    assert calls == [] and _dump(pair[0]) == _dump(pair[1])


def test_packed_bodies_and_digests_read_as_their_lists() -> None:
    bodies = [b'{"a":1}', b"", "张三".encode(), b"x" * 1000, b'{"id":"p1"}']
    digests = [content_hash(b) for b in bodies]
    pb, pd = PackedBodies.of(bodies), PackedDigests.of(digests)
    assert pb is not None and pd is not None
    for packed, plain in ((pb, bodies), (pd, digests)):
        assert len(packed) == len(plain) and list(packed) == plain
        assert [packed[i] for i in range(-len(plain), len(plain))] == plain + plain
        assert packed[1:4] == plain[1:4] and packed[::-2] == plain[::-2] and packed[9:] == []
        for bad in (len(plain), -len(plain) - 1):
            with pytest.raises(IndexError):
                packed[bad]
        again = pickle.loads(pickle.dumps(packed))
        assert type(again) is type(packed) and list(again) == plain
    empty_bodies, empty_digests = PackedBodies.of([]), PackedDigests.of([])
    assert empty_bodies is not None and list(empty_bodies) == [] and empty_bodies.data == b""
    assert empty_digests is not None and list(empty_digests) == []
    # what cannot be packed is left as a list by its caller
    assert PackedBodies.of([b"{}", "{}"]) is None and PackedBodies.of([b"{}", bytearray(b"{}")]) is None
    assert PackedDigests.of([bytes(16), bytes(15)]) is None and PackedDigests.of([bytearray(16)]) is None
    # an offsets table that does not fit its data is refused
    with pytest.raises(ValueError):
        PackedBodies(b"abc", b"0000000000" + b"0000000002")
    with pytest.raises(ValueError):
        PackedBodies(b"", b"")
    with pytest.raises(ValueError):
        PackedDigests(bytes(17))


ids_st = st.sampled_from([f"p{i}" for i in range(12)])
op_st = st.one_of(
    st.tuples(st.just("encoded"), st.sampled_from(["population", "quiet"]),
              st.lists(st.tuples(ids_st, st.sampled_from(["a", "b", "c"])), max_size=12),
              st.sampled_from([None, "fp1", "fp2"])),
    st.tuples(st.just("many"), st.sampled_from(["population", "quiet"]),
              st.lists(st.tuples(ids_st, st.sampled_from(["a", "b"])), max_size=6),
              st.sampled_from([None, "fp1"])),
    st.tuples(st.just("delete"), st.sampled_from(["population", "quiet"]), st.lists(ids_st, max_size=5),
              st.none()),
    st.tuples(st.just("new"), st.sampled_from(["population", "quiet"]), st.integers(1, 300),
              st.sampled_from([None, "fp1"])),
    st.tuples(st.just("packed"), st.sampled_from(["population", "quiet"]),
              st.lists(st.tuples(ids_st, st.sampled_from(["a", "b", "c"])), max_size=12),
              st.sampled_from([None, "fp1", "fp2"])),
    st.tuples(st.just("packed-new"), st.sampled_from(["population", "quiet"]), st.integers(1, 300),
              st.sampled_from([None, "fp1"])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op_st, min_size=1, max_size=8))
def test_fast_and_general_paths_write_the_same(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores = _open(Path(tmp) / "fast.db"), _open(Path(tmp) / "general.db")
        try:
            fresh = 0
            for kind, dataset, items, checked in ops:
                if kind == "encoded":
                    _both(stores, "upsert_encoded", dataset,
                          *_encoded([i for i, _ in items], [n for _, n in items]), checked=checked)
                elif kind == "many":
                    _both(stores, "upsert_many", dataset, [(i, {"name": n}) for i, n in items], checked=checked)
                elif kind == "delete":
                    _both(stores, "delete_many", dataset, items)
                elif kind == "packed":
                    _both_packed(stores, dataset, *_encoded([i for i, _ in items], [n for _, n in items]),
                                 checked=checked)
                elif kind == "packed-new":
                    ids = [f"n{fresh + i:05d}" for i in range(items)]
                    fresh += items
                    _both_packed(stores, dataset, *_encoded(ids, ids), checked=checked)
                else:  # a batch of new records, past 128 rows a statement
                    ids = [f"n{fresh + i:05d}" for i in range(items)]
                    fresh += items
                    _both(stores, "upsert_encoded", dataset, *_encoded(ids, ids), checked=checked)
            assert _dump(stores[0]) == _dump(stores[1])
        finally:
            for s in stores:
                s.close()


ODD_IDS = ['q"1', "q\\2", "张三", "😀", "", " ", "a\nb", "\x00x", "x" * 300, "1", "-0", "1e3", "null", "[]",
           "é", "e\u0301"]


def test_odd_str_ids_are_stored_alike(pair: tuple[Store, Store]) -> None:
    # upsert_encoded trusts its caller's ids: whatever str it passes lands the same either way
    _both(pair, "upsert_encoded", "population", *_encoded(ODD_IDS, ODD_IDS), checked="fp")
    _both(pair, "upsert_encoded", "population", *_encoded(ODD_IDS, ["changed"] * len(ODD_IDS)))
    _both(pair, "upsert_encoded", "population", *_encoded(ODD_IDS[:3] + ["fresh"], ["changed"] * 4))
    _both_packed(pair, "quiet", *_encoded(ODD_IDS, ODD_IDS), checked="fp")  # new, packed: one statement
    assert _dump(pair[0]) == _dump(pair[1])
    table = records_table(pair[0].dataset_num("population") or 0)
    with pair[0].reader() as conn:
        unique = ODD_IDS + ["absent", "张"]
        assert _current(conn, table, unique, json_ids(unique)) == _current(conn, table, unique, None)
        assert len(_current(conn, table, unique, json_ids(unique))) == len(ODD_IDS)


@pytest.mark.parametrize("ids", [[1, 2], ["a", 1], [None], [b"a"], [("a",)], ["\ud800"], [1.5], [True]])
def test_ids_that_are_not_plain_str_fail_or_land_alike(pair: tuple[Store, Store], ids: list[Any]) -> None:
    _both(pair, "upsert_encoded", "population", *_encoded(ids, ["x"] * len(ids)))
    _both(pair, "upsert_encoded", "population", *_encoded(ids, ["y"] * len(ids)))
    assert _dump(pair[0]) == _dump(pair[1])


HOSTILE: list[tuple[list[Any], list[Any]]] = [
    ([b"{}", "{}"], [content_hash(b"{}")] * 2),                       # a str body
    ([b"{}", b"{}"], [content_hash(b"{}"), "00" * 16]),                # a str digest
    ([b"{}", b"{}"], [content_hash(b"{}"), 3]),                        # an int digest: three zero bytes
    ([b"{}", 7], [content_hash(b"{}")] * 2),                           # an int body
    ([b"{}", -1], [content_hash(b"{}")] * 2),                          # a negative one
    ([bytearray(b"{}"), memoryview(b"[]")], [bytearray(16), memoryview(bytes(16))]),
    ([b"{}", b"{}"], [b"short", b"x" * 40]),                           # digests of any length
    ([b"{}", [123, 125]], [content_hash(b"{}"), [0] * 16]),            # iterables of ints
    ([b"{}", object()], [content_hash(b"{}")] * 2),
    ([b"{}", None], [content_hash(b"{}"), b""]),                       # None: a deletion
]


@pytest.mark.parametrize("bodies,digests", HOSTILE)
def test_hostile_bodies_and_digests_fail_or_land_alike(pair: tuple[Store, Store], bodies: list[Any],
                                                       digests: list[Any]) -> None:
    _both(pair, "upsert_encoded", "population", ["h1", "h2"], bodies, digests, checked="fp")
    _both(pair, "upsert_encoded", "quiet", ["h1", "h2"], bodies, digests)
    assert _dump(pair[0]) == _dump(pair[1])


@pytest.mark.parametrize("rows", [1, 2, 3, _ROWS - 1, _ROWS, _ROWS + 1, 3 * _ROWS + 77])
def test_new_record_inserts_write_every_row_in_order(tmp_path: Path, rows: int) -> None:
    with Store(tmp_path / "s.db") as store:
        store.ensure_dataset("d")
        with store.transaction() as conn:
            flat: list[Any] = []
            for i in range(rows):
                flat += (f"r{i}", bytearray(b"h%d" % i), bytearray(b'{"i":%d}' % i))
            _insert_new(conn, records_table(store.dataset_num("d") or 0), (123, "fp"), 1000, flat)
            got = conn.execute("SELECT dataset, id, version, hash, body, deleted, modified_us, seq, checked, "
                               "typeof(body) FROM records ORDER BY seq").fetchall()
    assert got == [("d", f"r{i}", 1, f"h{i}".encode(), f'{{"i":{i}}}', 0, 123, 1001 + i, "fp", "text")
                   for i in range(rows)]


def test_the_outbox_follows_the_change_feed(pair: tuple[Store, Store]) -> None:
    fast, _ = pair
    ids = [f"z{i:04d}" for i in range(1000, 0, -1)]  # ids in falling order: rows still in batch order
    fast.upsert_encoded("population", *_encoded(ids, ids))
    with fast.reader() as conn:
        feed = conn.execute("SELECT seq, record_id FROM changes ORDER BY seq").fetchall()
        outbox = conn.execute("SELECT seq, record_id FROM outbox ORDER BY id").fetchall()
    assert [r for _, r in feed] == ids and outbox == feed
    assert fast.latest_seq() == feed[-1][0] == len(ids)


def test_a_new_store_has_8k_pages_and_an_older_store_keeps_its_own(tmp_path: Path) -> None:
    new = Store(tmp_path / "new.db")
    new.ensure_dataset("population", "Person")
    new.close()
    with sqlite3.connect(tmp_path / "new.db") as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 8192
    # a store made with SQLite's default pages (as earlier releases made them) keeps them, and works
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
    old = Store(tmp_path / "old.db")
    old.ensure_dataset("population", "Person")
    old.upsert("population", "p1", {"id": "p1", "name": "王"})
    assert old.get_record("population", "p1") is not None
    old.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
