"""The validator fingerprint kept with each record, and the schema upgrade that added it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from test_store_migrate import v2_schema  # tests/node is on sys.path

from node.store import SCHEMA_VERSION, Store
from node.validation import get_validator

PERSON = {"id": "p1", "type": "Person", "name": "张三"}


def test_fingerprint_names_standard_and_engine() -> None:
    v = get_validator("fast")
    assert v.fingerprint.startswith("fast/")
    assert v.std.digest and v.std.digest[:32] in v.fingerprint
    assert get_validator("shacl").fingerprint != v.fingerprint


def test_checked_is_kept_updated_and_cleared(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.ensure_dataset("d", "Person")
        assert store.upsert("d", "p1", PERSON).changed
        assert store.get_record("d", "p1").checked is None  # type: ignore[union-attr]
        # the same content arriving validated: no new version, the fingerprint is recorded
        res = store.upsert("d", "p1", PERSON, checked="fast/1/abc")
        assert (res.changed, res.version) == (False, 1)
        assert store.get_record("d", "p1").checked == "fast/1/abc"  # type: ignore[union-attr]
        # changed content without validation: the new version carries no fingerprint
        assert store.upsert("d", "p1", {**PERSON, "name": "李四"}).version == 2
        assert store.get_record("d", "p1").checked is None  # type: ignore[union-attr]
        # a tombstone never carries one
        store.upsert("d", "p1", PERSON, checked="fast/1/abc")
        store.delete("d", "p1")
        rec = store.get_record("d", "p1")
        assert rec is not None and rec.deleted and rec.checked is None
        assert [r.checked for r in store.record_versions("d", "p1")] == ["fast/1/abc", None, "fast/1/abc", None]


def _v1_ddl() -> str:
    # version 1 of the schema: version 2's, without the checked column in records and history
    return v2_schema().replace("    checked     TEXT,\n", "")


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    ddl = _v1_ddl()
    assert "checked" not in ddl
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("INSERT INTO datasets VALUES ('d', 'Person', 0, '{}', 1, 1)")
    conn.execute("INSERT INTO records VALUES ('d', 'p1', 1, x'00', '{\"id\":\"p1\"}', 0, 1, 1)")
    conn.commit()
    conn.close()
    with Store(path) as store:
        rec = store.get_record("d", "p1")
        assert rec is not None and rec.body == '{"id":"p1"}' and rec.checked is None
        store.upsert("d", "p2", {"id": "p2"}, checked="x")
        assert store.get_record("d", "p2").checked == "x"  # type: ignore[union-attr]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    conn.close()
