"""The store's batch write path: upsert_encoded (records encoded by the caller) writes exactly
what upsert_many writes, multi-row INSERTs of every size, the column types stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_store_records import person  # the same sample record (tests/node is on sys.path)

from node.errors import InputError
from node.jsonenc import canonical_bytes
from node.store import Store, content_hash
from node.store._records import _ROWS, _insert_rows
from node.store._schema import changes_table


@pytest.fixture()
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    with Store(tmp_path / "many.db", durability="normal") as a, Store(tmp_path / "encoded.db", durability="normal") as b:
        for s in (a, b):
            s.ensure_dataset("population", "Person", publish=True)
            s.ensure_dataset("quiet", "Person")
        yield a, b


def _encoded(records: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], list[bytes], list[bytes]]:
    bodies = [canonical_bytes(r) for _, r in records]
    return [i for i, _ in records], bodies, [content_hash(b) for b in bodies]


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that a write makes, without the clock's columns."""
    with store.reader() as conn:
        return {
            "records": conn.execute("SELECT dataset, id, version, hash, body, deleted, seq, checked, typeof(body), "
                                    "typeof(hash) FROM records ORDER BY dataset, id").fetchall(),
            "history": conn.execute("SELECT dataset, id, version, hash, body, deleted, seq, checked FROM history "
                                    "ORDER BY dataset, id, version").fetchall(),
            "changes": conn.execute("SELECT seq, dataset, record_id, version, op FROM changes ORDER BY seq").fetchall(),
            "outbox": conn.execute("SELECT id, dataset, record_id, version, op, seq FROM outbox ORDER BY id").fetchall(),
        }


def test_upsert_encoded_writes_what_upsert_many_writes(stores: tuple[Store, Store]) -> None:
    many, encoded = stores
    batches: list[tuple[str, list[tuple[str, dict[str, Any]]], str | None]] = [
        ("population", [(f"p{i:06d}", person(i)) for i in range(300)], "fp1"),        # 128 + 128 + 32 + 8 + 4
        ("quiet", [(f"p{i:06d}", person(i)) for i in range(129)], None),                # 128 + 1
        ("population", [(f"p{i:06d}", person(i, name="改")) for i in range(0, 300, 7)]  # updates ...
         + [(f"p{i:06d}", person(i)) for i in range(1, 300, 7)]                         # ... unchanged ...
         + [(f"n{i:06d}", person(i, id=f"n{i:06d}")) for i in range(5)], "fp2"),       # ... and new
        ("population", [("p000003", person(3, name="a")), ("p000003", person(3, name="b")),
                        ("p000003", person(3, name="b")), ("p000004", person(4))], "fp2"),  # the same id again
        ("quiet", [(f"p{i:06d}", person(i)) for i in range(3)], "fp3"),                 # unchanged, newly checked
    ]
    for dataset, records, checked in batches:
        expected = many.upsert_many(dataset, records, checked=checked)
        versions, changed = encoded.upsert_encoded(dataset, *_encoded(records), checked=checked)
        assert [(r.version, r.changed) for r in expected] == list(zip(versions, changed, strict=True))
    # deletions (a tombstone, then the record again) go through the same rows
    for store in (many, encoded):
        store.delete_many("population", ["p000010", "p000011", "nope"])
    again = [("p000010", person(10))]
    assert [(r.version, r.changed) for r in many.upsert_many("population", again, checked="fp4")] == \
        list(zip(*encoded.upsert_encoded("population", *_encoded(again), checked="fp4"), strict=True))
    a, b = _dump(many), _dump(encoded)
    assert a == b
    assert {(row[8], row[9]) for row in a["records"]} == {("text", "blob"), ("null", "blob")}
    assert len(a["changes"]) == len(a["outbox"]) + 129  # the quiet dataset does not publish
    rec = encoded.get_record("population", "p000003")
    assert rec is not None and rec.version == 3 and rec.data == person(3, name="b") and rec.checked == "fp2"


def test_upsert_encoded_takes_aligned_lists(stores: tuple[Store, Store]) -> None:
    _, store = stores
    ids, bodies, digests = _encoded([("p000001", person(1))])
    with pytest.raises(InputError, match="1 ids, 1 bodies and 0 digests"):
        store.upsert_encoded("population", ids, bodies, [])
    assert store.upsert_encoded("population", [], [], []) == ([], [])


@pytest.mark.parametrize("rows", [1, 2, 3, _ROWS - 1, _ROWS, _ROWS + 1, 3 * _ROWS + 77])
def test_multi_row_inserts_write_every_row_in_order(tmp_path: Path, rows: int) -> None:
    with Store(tmp_path / "s.db") as store:
        store.ensure_dataset("d")
        with store.transaction() as conn:
            flat: list[Any] = []
            for i in range(rows):
                flat += (i + 1, f"r{i}", 1, "upsert")
            _insert_rows(conn, "changes", changes_table(store.dataset_num("d") or 0), (123,), flat)
            got = conn.execute("SELECT seq, dataset, record_id, version, op, at_us FROM changes "
                               "ORDER BY seq").fetchall()
    assert got == [(i + 1, "d", f"r{i}", 1, "upsert", 123) for i in range(rows)]
