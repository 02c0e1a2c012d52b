"""Datasets, versioned records, the change feed and the outbox."""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import itertools
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from node.errors import InputError, NotFound
from node.jsonenc import canonical_bytes
from node.store._db import StoreBase
from node.store._packed import DIGEST_SIZE, END_WIDTH, PackedBodies, PackedDigests
from node.store._schema import changes_table, dataset_ddl, records_table, views_ddl
from node.store._types import (
    Change,
    DatasetInfo,
    OutboxItem,
    StoredRecord,
    UpsertResult,
    datetime_to_us,
    us_to_datetime,
)

__all__ = ["RecordsMixin", "canonical_body", "content_hash", "RECORD_ID_RE"]

#: a record or dataset id (\Z, not $: "$" would also let an id end in a newline)
RECORD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}\Z")
_CHUNK = 500  # ids per IN (...) query
_COLS = "dataset, id, version, hash, body, deleted, modified_us, seq, checked"  # history's columns
#: a dataset's records table's columns (its rows are read as ``SELECT ?, {_RCOLS}``: the dataset first, as in history)
_RCOLS = "id, version, hash, body, deleted, modified_us, seq, checked"


def canonical_body(data: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept, no NaN (see :mod:`node.jsonenc`)."""
    return canonical_bytes(data).decode("utf-8")


def content_hash(body: str | bytes) -> bytes:
    """blake2b-128 of the canonical JSON's UTF-8 bytes."""
    return hashlib.blake2b(body.encode("utf-8") if isinstance(body, str) else body, digest_size=16).digest()


def _now_us() -> int:
    return time.time_ns() // 1000


def _row_to_record(row: Sequence[Any]) -> StoredRecord:
    return StoredRecord(dataset=row[0], id=row[1], version=row[2], hash=bytes(row[3]).hex(), body=row[4],
                        deleted=bool(row[5]), modified_us=row[6], seq=row[7], checked=row[8])


def _chunks(seq: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


# Multi-row INSERTs: one statement writes up to _ROWS rows (one execute, so SQLite does the
# rows' work in one call, without the GIL). Shared values (dataset, time, fingerprint) are
# bound once as ?1..?k; each row's values follow. Row counts are 128 or a power of two
# below it, so a connection caches a handful of statements. Binary values are bound as
# bytearray: the sqlite3 module binds bytes only after a costly adaptation lookup (about
# 1 us a value), a bytearray directly; the body goes in as CAST(... AS TEXT), so it is
# stored as the same TEXT value a str would be.
_ROWS = 128
_INSERTS: dict[str, tuple[str, int, str]] = {
    # kind: (statement head ({table}: the table), values per row, row template with {} for the row's first parameter)
    # records_v1: shared (now, checked); per row (id, hash, body, seq): a new record, version 1
    "records_v1": ("INSERT INTO {table} (" + _RCOLS + ") VALUES ", 4,
                   "(?{0},1,?{1},CAST(?{2} AS TEXT),0,?1,?{3},?2)"),
    # a dataset's change feed: shared (now); per row (seq, id, version, op)
    "changes": ("INSERT INTO {table} (seq, record_id, version, op, at_us) VALUES ", 4,
                "(?{0},?{1},?{2},?{3},?1)"),
    # shared (dataset, now); per row (seq, id, version, op)
    "outbox": ("INSERT INTO {table} (seq, dataset, record_id, version, op, created_us) VALUES ", 4,
               "(?{0},?1,?{1},?{2},?{3},?2)"),
}
_SQL: dict[tuple[str, str, int, int], str] = {}


def _insert_sql(kind: str, table: str, rows: int, shared: int) -> str:
    key = (kind, table, rows, shared)
    sql = _SQL.get(key)
    if sql is None:
        head, width, template = _INSERTS[kind]
        parts = []
        for r in range(rows):
            first = shared + 1 + r * width
            parts.append(template.format(*range(first, first + width)))
        sql = _SQL[key] = head.format(table=table) + ",".join(parts)
    return sql


def _insert_rows(conn: sqlite3.Connection, kind: str, table: str, shared: tuple[Any, ...], flat: list[Any]) -> None:
    """Insert the rows in ``flat`` (their values one after the other) into ``table`` with as few
    statements as may be."""
    width = _INSERTS[kind][1]
    total = len(flat) // width
    done = 0
    size = _ROWS
    while done < total:
        while size > total - done:
            size //= 2
        step = size * width
        conn.execute(_insert_sql(kind, table, size, len(shared)), (*shared, *flat[done * width:done * width + step]))
        done += size


# A batch of new records only (no id in the store yet, none twice, no deletion: what Push and
# Kafka mostly write) takes fewer bound values: each record's seq is the batch's first seq plus
# its position (a constant in the statement), its version 1; the change feed and outbox rows
# are made by SQLite from a JSON array of the ids (json_each), one bound value in all.
# shared (now, checked, seq before this statement's first row); per row (id, hash, body)
_NEW_HEAD = "INSERT INTO {table} (" + _RCOLS + ") VALUES "
_NEW_ROW = "(?{1},1,?{2},CAST(?{3} AS TEXT),0,?1,?3+{0},?2)"
_NEW_SQL: dict[tuple[str, int], str] = {}
# (now, first seq, ids)
_NEW_CHANGES = ("INSERT INTO {table} (seq, record_id, version, op, at_us) "
                "SELECT ?2 + key, value, 1, 'upsert', ?1 FROM json_each(?3)")
# (dataset, now, first seq, ids)
_NEW_OUTBOX = ("INSERT INTO outbox (seq, dataset, record_id, version, op, created_us) "
               "SELECT ?3 + key, ?1, value, 1, 'upsert', ?2 FROM json_each(?4)")
# the current rows of the ids in a JSON array (json_each first: one primary-key search per id)
_STATE_JSON = ("SELECT r.id, r.version, r.hash, r.deleted, r.checked FROM json_each(?1) AS j "
               "CROSS JOIN {table} AS r ON r.id = j.value")


def _new_sql(table: str, rows: int) -> str:
    sql = _NEW_SQL.get((table, rows))
    if sql is None:
        sql = _NEW_SQL[table, rows] = _NEW_HEAD.format(table=table) + ",".join(
            _NEW_ROW.format(r + 1, 4 + 3 * r, 5 + 3 * r, 6 + 3 * r) for r in range(rows))
    return sql


def _new_rows(ids: list[str], digests: Sequence[Any], bodies: Sequence[Any]) -> list[Any] | None:
    """(id, hash, body) of each new record, flat, hash and body as bytearray (bound as they are);
    None if a digest or body is not bytes-like: the general path then raises what it raises."""
    try:
        hashes = list(map(bytearray, digests))
        texts = list(map(bytearray, bodies))
    except (TypeError, ValueError, OverflowError):
        return None
    flat: list[Any] = [None] * (3 * len(ids))
    flat[0::3] = ids
    flat[1::3] = hashes
    flat[2::3] = texts
    return flat


# The same rows from a batch packed by node.store._packed (the ids a JSON array, as above):
# shared (now, checked, seq before the first row), the digests, the bodies and their offsets
# table, the ids. Row k (json_each's key) is the k-th id, digest and body; every value is
# cut out by SQLite (substr on a BLOB counts bytes), so the statement binds seven values in
# all and runs without the GIL. CAST(... AS TEXT) stores the body as the TEXT value a bound
# bytearray gets above.
_PACKED_NEW = (
    "INSERT INTO {table} (" + _RCOLS + ") "
    f"SELECT r.value, 1, substr(?4, r.key * {DIGEST_SIZE} + 1, {DIGEST_SIZE}), "
    f"CAST(substr(?5, CAST(substr(?6, r.key * {END_WIDTH} + 1, {END_WIDTH}) AS INTEGER) + 1, "
    f"CAST(substr(?6, r.key * {END_WIDTH} + {END_WIDTH + 1}, {END_WIDTH}) AS INTEGER) "
    f"- CAST(substr(?6, r.key * {END_WIDTH} + 1, {END_WIDTH}) AS INTEGER)) AS TEXT), "
    "0, ?1, ?3 + r.key + 1, ?2 FROM json_each(?7) AS r")


def _packed(bodies: Sequence[Any], digests: Sequence[Any], n: int) -> tuple[PackedBodies, PackedDigests] | None:
    """``(bodies, digests)`` if both are packed (node.store._packed), ``n`` of each; else None."""
    if type(bodies) is PackedBodies and type(digests) is PackedDigests and len(bodies) == n and len(digests) == n:
        return bodies, digests
    return None


def _insert_new(conn: sqlite3.Connection, table: str, shared: tuple[int, str | None], seq: int,
                flat: list[Any]) -> None:
    """Insert new records into ``table``: ``flat`` holds (id, hash, body) of each, their seqs follow
    ``seq``; ``shared`` is (now, checked)."""
    total = len(flat) // 3
    done = 0
    size = _ROWS
    while done < total:
        while size > total - done:
            size //= 2
        conn.execute(_new_sql(table, size), (*shared, seq + done, *flat[done * 3:(done + size) * 3]))
        done += size


def _json_each_works() -> bool:
    """Whether this SQLite has json_each (built in since 3.38; an older or trimmed build may lack it)."""
    try:
        conn = sqlite3.connect(":memory:")
    except sqlite3.Error:  # pragma: no cover - :memory: always opens
        return False
    try:
        found: int = conn.execute("SELECT count(*) FROM json_each('[\"a\"]')").fetchone()[0]
        return found == 1
    except sqlite3.Error:  # pragma: no cover - depends on how SQLite was built
        return False
    finally:
        conn.close()


_JSON_EACH = _json_each_works()


def json_ids(ids: Sequence[str]) -> str | None:
    """``ids`` as a JSON array for ``json_each``, or None: then the caller binds them one by one.

    None when this SQLite lacks json_each, when an id is not a str (bound one by one it is
    stored or refused as sqlite3 does with that type), holds a NUL (json_each cuts the string
    there) or cannot be encoded (a lone surrogate: bound one by one it raises what it raised).
    """
    if not _JSON_EACH:
        return None
    try:
        if "\x00" in "".join(ids):  # the join: TypeError unless every id is a str
            return None
        return orjson.dumps(ids).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        return None


def _current(conn: sqlite3.Connection, table: str, unique: Sequence[str],
             unique_json: str | None) -> dict[str, tuple[int, bytes, bool, str | None]]:
    """id -> (version, digest, deleted, checked) of the current rows of ``unique`` (distinct ids)
    in the records table ``table``; ``unique_json``: :func:`json_ids` of them (None: the ids
    are bound one by one)."""
    state: dict[str, tuple[int, bytes, bool, str | None]] = {}
    if unique_json is not None:
        for rid, version, digest, deleted, mark in conn.execute(_STATE_JSON.format(table=table), (unique_json,)):
            state[rid] = (version, bytes(digest), bool(deleted), mark)
        return state
    for chunk in _chunks(unique, _CHUNK):
        marks = ",".join("?" * len(chunk))
        for rid, version, digest, deleted, mark in conn.execute(
                f"SELECT id, version, hash, deleted, checked FROM {table} WHERE id IN ({marks})", chunk):
            state[rid] = (version, bytes(digest), bool(deleted), mark)
    return state


class RecordsMixin(StoreBase):
    # ---- datasets ---------------------------------------------------------------------
    def ensure_dataset(self, dataset_id: str, record_type: str | None = None, *, publish: bool = False,
                       metadata: Mapping[str, Any] | None = None) -> DatasetInfo:
        """Register a dataset, or update its type, publish flag and metadata."""
        if not isinstance(dataset_id, str) or not RECORD_ID_RE.match(dataset_id):
            raise InputError(f"bad dataset id {dataset_id!r}")
        meta = canonical_body(dict(metadata or {}))
        now = _now_us()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO datasets (id, record_type, publish, metadata, created_us, updated_us, num) "
                "VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(num), 0) + 1 FROM datasets)) "
                "ON CONFLICT (id) DO UPDATE SET record_type=excluded.record_type, "
                "publish=excluded.publish, metadata=excluded.metadata, updated_us=excluded.updated_us "
                "WHERE record_type IS NOT excluded.record_type OR publish != excluded.publish "
                "OR metadata != excluded.metadata",
                (dataset_id, record_type, int(publish), meta, now, now))
            num = conn.execute("SELECT num FROM datasets WHERE id = ?", (dataset_id,)).fetchone()[0]
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (records_table(num),)).fetchone() is None:  # a new dataset: its tables, the views
                for statement in dataset_ddl(num):
                    conn.execute(statement)
                datasets = conn.execute("SELECT id, num FROM datasets WHERE num IS NOT NULL ORDER BY num").fetchall()
                for statement in views_ddl(datasets):
                    conn.execute(statement)
        return self.get_dataset(dataset_id)

    def get_dataset(self, dataset_id: str) -> DatasetInfo:
        with self.reader() as conn:
            row = conn.execute("SELECT id, record_type, publish, metadata, created_us, updated_us "
                               "FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        if row is None:
            raise NotFound(f"dataset {dataset_id!r} is not in the store")
        return DatasetInfo(id=row[0], record_type=row[1], publish=bool(row[2]), metadata=json.loads(row[3]),
                           created=us_to_datetime(row[4]), updated=us_to_datetime(row[5]))

    def list_datasets(self) -> list[DatasetInfo]:
        with self.reader() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM datasets ORDER BY id")]
        return [self.get_dataset(i) for i in ids]

    def _target(self, conn: sqlite3.Connection, dataset: str) -> tuple[bool, int]:
        """(publish flag, table number) of a registered dataset; NotFound for any other."""
        row = conn.execute("SELECT publish, num FROM datasets WHERE id = ?", (dataset,)).fetchone()
        if row is None or row[1] is None:
            raise NotFound(f"dataset {dataset!r} is not in the store (register it with ensure_dataset)")
        return bool(row[0]), int(row[1])

    # ---- writes -----------------------------------------------------------------------
    def upsert(self, dataset: str, record_id: str, data: Mapping[str, Any], *,
               checked: str | None = None) -> UpsertResult:
        return self.upsert_many(dataset, [(record_id, data)], checked=checked)[0]

    def upsert_many(self, dataset: str, records: Iterable[tuple[str, Mapping[str, Any]]], *,
                    checked: str | None = None) -> list[UpsertResult]:
        """Insert or update records in ONE transaction; results in input order.

        Same content as the current version: no-op (``changed`` False). Changed
        content (or a record that was deleted): a new version, a change-feed entry
        and, for a publishing dataset, an outbox row, all in the same commit.

        ``checked``: the fingerprint of the validator these records passed
        (:attr:`node.validation.Validator.fingerprint`), kept with each record so a
        reader can skip validating it again under the same standard; None: not
        validated (then it is validated on its way out). An unchanged record takes
        the new fingerprint without a new version.
        """
        ids: list[str] = []
        bodies: list[bytes | None] = []
        digests: list[bytes] = []
        blake2b = hashlib.blake2b
        for i, item in enumerate(records):
            try:
                record_id, data = item
            except (TypeError, ValueError) as exc:
                raise InputError(f"record #{i}: expected a pair (id, record)") from exc
            self._check_id(record_id, i)
            if not isinstance(data, dict) and not isinstance(data, Mapping):
                raise InputError(f"record {record_id!r}: must be a JSON object, not {type(data).__name__}")
            inner = data.get("id")
            if inner is not None and inner != record_id:
                raise InputError(f"record {record_id!r}: its 'id' field says {inner!r}")
            try:
                body = canonical_bytes(data)
            except (TypeError, ValueError) as exc:
                raise InputError(f"record {record_id!r}: not JSON-serialisable ({exc})") from exc
            ids.append(record_id)
            bodies.append(body)
            digests.append(blake2b(body, digest_size=16).digest())
        versions, changed = self._apply(dataset, ids, bodies, digests, checked)
        return [UpsertResult(*r) for r in zip(ids, versions, changed, strict=True)]

    def upsert_encoded(self, dataset: str, ids: Sequence[str], bodies: Sequence[bytes], digests: Sequence[bytes],
                       *, checked: str | None = None) -> tuple[list[int], list[bool]]:
        """:meth:`upsert_many` for records already checked and encoded, e.g. in another process.

        ``bodies[i]`` is the canonical JSON (UTF-8 bytes, as :func:`canonical_body` writes
        it) of a JSON object that is record ``ids[i]`` (a valid record id; the object's
        ``id``, if any, equals it) and ``digests[i]`` is its :func:`content_hash`: the
        caller vouches for all of that, nothing is checked again here. ``bodies`` and
        ``digests`` may be packed (:class:`PackedBodies`, :class:`PackedDigests`): a batch of
        new records is then inserted by one statement that cuts them apart. The same
        transaction, versions, change feed and outbox as :meth:`upsert_many`. Returns
        ``(versions, changed)`` in input order (what :class:`UpsertResult` holds).
        """
        if not len(ids) == len(bodies) == len(digests):
            raise InputError(f"upsert_encoded: {len(ids)} ids, {len(bodies)} bodies and {len(digests)} digests")
        return self._apply(dataset, ids, bodies, digests, checked)

    def delete_many(self, dataset: str, record_ids: Iterable[str]) -> list[UpsertResult]:
        """Tombstone records in one transaction (deleting what is absent or deleted is a no-op)."""
        ids: list[str] = []
        for i, record_id in enumerate(record_ids):
            self._check_id(record_id, i)
            ids.append(record_id)
        versions, changed = self._apply(dataset, ids, [None] * len(ids), [b""] * len(ids))
        return [UpsertResult(*r) for r in zip(ids, versions, changed, strict=True)]

    def delete(self, dataset: str, record_id: str) -> UpsertResult:
        return self.delete_many(dataset, [record_id])[0]

    @staticmethod
    def _check_id(record_id: object, index: int) -> None:
        if not isinstance(record_id, str) or not RECORD_ID_RE.match(record_id):
            raise InputError(f"record #{index}: bad id {record_id!r} "
                             "(must match [A-Za-z0-9][A-Za-z0-9._~-]{0,127})")

    @staticmethod
    def _insert_all_new(conn: sqlite3.Connection, table: str, ids: list[str], ids_json: str, bodies: Sequence[Any],
                        digests: Sequence[Any], now: int, checked: str | None, seq: int) -> bool:
        """Insert the rows of a batch of new records (distinct ``ids``, none in ``table``; ``ids_json``:
        :func:`json_ids` of them) the short way: True, or False (nothing written) when the general
        path must (a deletion, a value that is not bytes-like)."""
        packed = _packed(bodies, digests, len(ids))
        if packed is not None:  # one statement cuts every row's values out of the two blobs
            conn.execute(_PACKED_NEW.format(table=table),
                         (now, checked, seq, packed[1].data, packed[0].data, packed[0].ends, ids_json))
            return True
        if None in bodies:
            return False
        flat = _new_rows(ids, digests, bodies)
        if flat is None:
            return False
        _insert_new(conn, table, (now, checked), seq, flat)
        return True

    def _apply(self, dataset: str, ids: Sequence[str], bodies: Sequence[bytes | None],
               digests: Sequence[bytes], checked: str | None = None) -> tuple[list[int], list[bool]]:
        """Write a batch: ``bodies[i]`` None deletes ``ids[i]``. Returns (versions, changed) by position.

        New records go in with multi-row INSERTs (a few statements per batch, not one per
        row); an id that appears more than once is applied in order (in rounds).
        """
        n = len(ids)
        if not n:
            return [], []
        versions: list[int] = [0] * n
        changed: list[bool] = [False] * n
        with self.transaction() as conn:
            publish, num = self._target(conn, dataset)
            table, feed = records_table(num), changes_table(num)
            now = _now_us()
            # id -> (version, digest, deleted, checked) of its current row
            unique = list(dict.fromkeys(ids))
            unique_json = json_ids(unique)
            state = _current(conn, table, unique, unique_json)
            first = seq = conn.execute("SELECT seq FROM feed WHERE id = 0").fetchone()[0]
            if not state and unique_json is not None and len(unique) == n \
                    and self._insert_all_new(conn, table, unique, unique_json, bodies, digests, now, checked, seq):
                # new records only: their rows in one statement (packed) or a few; the change feed and
                # outbox rows from the JSON array of the ids
                conn.execute(_NEW_CHANGES.format(table=feed), (now, seq + 1, unique_json))
                if publish:
                    conn.execute(_NEW_OUTBOX, (dataset, now, seq + 1, unique_json))
                conn.execute("UPDATE feed SET seq = ? WHERE id = 0", (seq + n,))
                return [1] * n, [True] * n
            rechecked: list[tuple[str, str]] = []
            # an id appearing twice in one call is applied in order: split into rounds of distinct ids
            rounds: list[Sequence[int]] = [range(n)]
            if len(unique) != n:
                split: list[list[int]] = [[]]
                seen: set[str] = set()
                for i, rid in enumerate(ids):
                    if rid in seen:
                        split.append([])
                        seen = set()
                    seen.add(rid)
                    split[-1].append(i)
                rounds = list(split)
            get = state.get
            for positions in rounds:
                inserts: list[Any] = []  # flat (id, hash, body, seq) of new records (version 1)
                updates: list[tuple[Any, ...]] = []
                changes: list[Any] = []  # flat (seq, id, version, op)
                for i in positions:
                    rid = ids[i]
                    body = bodies[i]
                    current = get(rid)
                    if body is None:  # delete
                        if current is None or current[2]:
                            versions[i] = current[0] if current else 0
                            continue
                        version = current[0] + 1
                        seq += 1
                        updates.append((version, b"", None, 1, now, seq, None, rid))
                        changes += (seq, rid, version, "delete")
                        state[rid] = (version, b"", True, None)
                    else:
                        digest = digests[i]
                        if current is None:
                            seq += 1
                            inserts += (rid, bytearray(digest), bytearray(body), seq)
                            changes += (seq, rid, 1, "upsert")
                            version = 1
                        elif not current[2] and current[1] == digest:
                            if checked is not None and current[3] != checked:
                                rechecked.append((checked, rid))
                                state[rid] = (current[0], digest, False, checked)
                            versions[i] = current[0]
                            continue
                        else:
                            version = current[0] + 1
                            seq += 1
                            updates.append((version, bytearray(digest), bytearray(body), 0, now, seq, checked, rid))
                            changes += (seq, rid, version, "upsert")
                        state[rid] = (version, digest, False, checked)
                    versions[i] = version
                    changed[i] = True
                if inserts:
                    _insert_rows(conn, "records_v1", table, (now, checked), inserts)
                if updates:
                    moved = [u[7] for u in updates]
                    for chunk in _chunks(moved, _CHUNK):
                        marks = ",".join("?" * len(chunk))
                        conn.execute(f"INSERT INTO history ({_COLS}) SELECT ?, {_RCOLS} FROM {table} "
                                     f"WHERE id IN ({marks})", (dataset, *chunk))
                    conn.executemany(f"UPDATE {table} SET version = ?, hash = ?, body = CAST(? AS TEXT), "
                                     "deleted = ?, modified_us = ?, seq = ?, checked = ? WHERE id = ?", updates)
                if changes:
                    _insert_rows(conn, "changes", feed, (now,), changes)
                    if publish:
                        _insert_rows(conn, "outbox", "outbox", (dataset, now), changes)
            if seq != first:
                conn.execute("UPDATE feed SET seq = ? WHERE id = 0", (seq,))
            if rechecked:
                conn.executemany(f"UPDATE {table} SET checked = ? WHERE id = ?", rechecked)
        return versions, changed

    # ---- reads ------------------------------------------------------------------------
    def get_record(self, dataset: str, record_id: str, *, version: int | None = None) -> StoredRecord | None:
        """The current version (a tombstone if deleted), or a given version; None if absent."""
        num = self.dataset_num(dataset)
        if num is None:
            return None
        with self.reader() as conn:
            row = conn.execute(f"SELECT ?, {_RCOLS} FROM {records_table(num)} WHERE id = ?",
                               (dataset, record_id)).fetchone()
            if version is not None and (row is None or row[2] != version):
                row = conn.execute(f"SELECT {_COLS} FROM history WHERE dataset = ? AND id = ? AND version = ?",
                                   (dataset, record_id, version)).fetchone()
        return None if row is None else _row_to_record(row)

    def record_versions(self, dataset: str, record_id: str) -> list[StoredRecord]:
        """Every stored version of a record, oldest first."""
        num = self.dataset_num(dataset)
        if num is None:
            return []
        with self.reader() as conn:
            rows = conn.execute(f"SELECT {_COLS} FROM history WHERE dataset = ?1 AND id = ?2 "
                                f"UNION ALL SELECT ?1, {_RCOLS} FROM {records_table(num)} WHERE id = ?2 "
                                "ORDER BY version", (dataset, record_id)).fetchall()
        return [_row_to_record(r) for r in rows]

    def count_records(self, dataset: str, *, include_deleted: bool = False) -> int:
        num = self.dataset_num(dataset)
        if num is None:
            return 0
        where = "" if include_deleted else " WHERE deleted = 0"
        with self.reader() as conn:
            value: int = conn.execute(f"SELECT count(*) FROM {records_table(num)}{where}").fetchone()[0]
        return value

    def record_stats(self, dataset: str) -> tuple[int, int | None]:
        """(records not deleted, the latest modification in microseconds or None) of a dataset."""
        num = self.dataset_num(dataset)
        if num is None:
            return 0, None
        table = records_table(num)
        with self.reader() as conn:
            count, latest = conn.execute(f"SELECT (SELECT count(*) FROM {table} WHERE deleted = 0), "
                                         f"(SELECT max(modified_us) FROM {table})").fetchone()
        return int(count), latest

    def iter_records(
        self,
        dataset: str,
        *,
        ids: Iterable[str] | None = None,
        modified_since: dt.datetime | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> Iterator[StoredRecord]:
        """Current records of a dataset, fetched page by page (constant memory).

        Ordered by id; with ``modified_since`` (inclusive) ordered by (modified, id).
        Each page is its own short read, so a long iteration does not hold a read
        transaction (the WAL can be checkpointed meanwhile); records changed during
        the iteration may appear in their old or new version.
        """
        if page_size < 1:
            raise InputError("page_size must be at least 1")
        if limit is not None and limit <= 0:
            return
        num = self.dataset_num(dataset)
        if num is None:
            return
        table = records_table(num)
        deleted = "" if include_deleted else " AND deleted = 0"
        remaining = limit
        if ids is not None:
            wanted = sorted(set(ids))
            for chunk in _chunks(wanted, min(page_size, _CHUNK)):
                marks = ",".join("?" * len(chunk))
                with self.reader() as conn:
                    rows = conn.execute(f"SELECT ?, {_RCOLS} FROM {table} WHERE id IN ({marks})"
                                        f"{deleted} ORDER BY id", (dataset, *chunk)).fetchall()
                for row in rows:
                    yield _row_to_record(row)
                    if remaining is not None:
                        remaining -= 1
                        if remaining == 0:
                            return
            return
        if modified_since is not None:
            since = datetime_to_us(modified_since)
            after: tuple[int, str] | None = None
            while True:
                size = page_size if remaining is None else min(page_size, remaining)
                with self.reader() as conn:
                    if after is None:
                        rows = conn.execute(
                            f"SELECT ?, {_RCOLS} FROM {table} WHERE modified_us >= ?{deleted} "
                            "ORDER BY modified_us, id LIMIT ?", (dataset, since, size)).fetchall()
                    else:
                        rows = conn.execute(
                            f"SELECT ?, {_RCOLS} FROM {table} WHERE (modified_us, id) > (?, ?)"
                            f"{deleted} ORDER BY modified_us, id LIMIT ?",
                            (dataset, after[0], after[1], size)).fetchall()
                for row in rows:
                    yield _row_to_record(row)
                if remaining is not None:
                    remaining -= len(rows)
                if len(rows) < size or remaining == 0:
                    return
                after = (rows[-1][6], rows[-1][1])
        last_id = ""
        first = True
        while True:
            size = page_size if remaining is None else min(page_size, remaining)
            with self.reader() as conn:
                if first:
                    rows = conn.execute(f"SELECT ?, {_RCOLS} FROM {table} WHERE 1{deleted} "
                                        "ORDER BY id LIMIT ?", (dataset, size)).fetchall()
                else:
                    rows = conn.execute(f"SELECT ?, {_RCOLS} FROM {table} WHERE id > ?{deleted} "
                                        "ORDER BY id LIMIT ?", (dataset, last_id, size)).fetchall()
            first = False
            for row in rows:
                yield _row_to_record(row)
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < size or remaining == 0:
                return
            last_id = rows[-1][1]

    # ---- change feed ------------------------------------------------------------------
    def changes(self, after: int = 0, *, limit: int = 1000, dataset: str | None = None) -> list[Change]:
        """Changes with ``seq > after``, oldest first, at most ``limit``. The last seq is the next cursor."""
        if dataset is not None:
            num = self.dataset_num(dataset)
            if num is None:
                return []
            with self.reader() as conn:
                rows = conn.execute(f"SELECT seq, ?, record_id, version, op, at_us FROM {changes_table(num)} "
                                    "WHERE seq > ? ORDER BY seq LIMIT ?", (dataset, after, limit)).fetchall()
            return [Change(*r) for r in rows]
        # every dataset's: the first ``limit`` of each, merged by seq (one read: a consistent snapshot)
        with self.reader() as conn:
            snapshot = not self.in_transaction
            if snapshot:
                conn.execute("BEGIN")
            try:
                feeds = [conn.execute(f"SELECT seq, ?, record_id, version, op, at_us FROM {changes_table(num)} "
                                      "WHERE seq > ? ORDER BY seq LIMIT ?", (name, after, limit)).fetchall()
                         for name, num in conn.execute("SELECT id, num FROM datasets WHERE num IS NOT NULL "
                                                       "ORDER BY num").fetchall()]
            finally:
                if snapshot:
                    conn.execute("COMMIT")
        return [Change(*r) for r in itertools.islice(heapq.merge(*feeds), limit)]

    def latest_seq(self) -> int:
        """The newest change's seq (0 when there is none)."""
        with self.reader() as conn:
            row = conn.execute("SELECT seq FROM feed WHERE id = 0").fetchone()
        return int(row[0]) if row else 0

    # ---- outbox ----------------------------------------------------------------------
    def pending_outbox(self, limit: int = 500, *, after_id: int = 0) -> list[OutboxItem]:
        """Unpublished outbox rows, oldest first (the Kafka publisher drains these)."""
        with self.reader() as conn:
            rows = conn.execute("SELECT id, dataset, record_id, version, op, seq, created_us FROM outbox "
                                "WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
        return [OutboxItem(*r) for r in rows]

    def mark_published(self, outbox_ids: Iterable[int]) -> int:
        """Remove published rows from the outbox; returns how many were still there."""
        ids = list(outbox_ids)
        done = 0
        with self.transaction() as conn:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                done += conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk).rowcount
        return done

    def outbox_pending_count(self) -> int:
        with self.reader() as conn:
            value: int = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return value
