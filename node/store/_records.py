"""Datasets, versioned records, the change feed and the outbox."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from node.errors import InputError, NotFound
from node.jsonenc import canonical_bytes
from node.store._db import StoreBase
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

RECORD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")
_CHUNK = 500  # ids per IN (...) query
_COLS = "dataset, id, version, hash, body, deleted, modified_us, seq, checked"


def canonical_body(data: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept, no NaN (see :mod:`node.jsonenc`)."""
    return canonical_bytes(data).decode("utf-8")


def content_hash(body: str) -> bytes:
    """blake2b-128 of the canonical JSON's UTF-8 bytes."""
    return hashlib.blake2b(body.encode("utf-8"), digest_size=16).digest()


def _now_us() -> int:
    return time.time_ns() // 1000


def _row_to_record(row: Sequence[Any]) -> StoredRecord:
    return StoredRecord(dataset=row[0], id=row[1], version=row[2], hash=bytes(row[3]).hex(), body=row[4],
                        deleted=bool(row[5]), modified_us=row[6], seq=row[7], checked=row[8])


def _chunks(seq: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


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
                "INSERT INTO datasets (id, record_type, publish, metadata, created_us, updated_us) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET record_type=excluded.record_type, "
                "publish=excluded.publish, metadata=excluded.metadata, updated_us=excluded.updated_us "
                "WHERE record_type IS NOT excluded.record_type OR publish != excluded.publish "
                "OR metadata != excluded.metadata",
                (dataset_id, record_type, int(publish), meta, now, now))
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

    def _publish_flag(self, conn: sqlite3.Connection, dataset: str) -> bool:
        row = conn.execute("SELECT publish FROM datasets WHERE id = ?", (dataset,)).fetchone()
        if row is None:
            raise NotFound(f"dataset {dataset!r} is not in the store (register it with ensure_dataset)")
        return bool(row[0])

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
        ops: list[tuple[str, str | None, bytes]] = []
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
                body = canonical_body(data)
            except (TypeError, ValueError) as exc:
                raise InputError(f"record {record_id!r}: not JSON-serialisable ({exc})") from exc
            ops.append((record_id, body, content_hash(body)))
        return self._apply(dataset, ops, checked)

    def delete_many(self, dataset: str, record_ids: Iterable[str]) -> list[UpsertResult]:
        """Tombstone records in one transaction (deleting what is absent or deleted is a no-op)."""
        ops: list[tuple[str, str | None, bytes]] = []
        for i, record_id in enumerate(record_ids):
            self._check_id(record_id, i)
            ops.append((record_id, None, b""))
        return self._apply(dataset, ops)

    def delete(self, dataset: str, record_id: str) -> UpsertResult:
        return self.delete_many(dataset, [record_id])[0]

    @staticmethod
    def _check_id(record_id: object, index: int) -> None:
        if not isinstance(record_id, str) or not RECORD_ID_RE.match(record_id):
            raise InputError(f"record #{index}: bad id {record_id!r} "
                             "(must match [A-Za-z0-9][A-Za-z0-9._~-]{0,127})")

    def _apply(self, dataset: str, ops: list[tuple[str, str | None, bytes]],
               checked: str | None = None) -> list[UpsertResult]:
        if not ops:
            return []
        with self.transaction() as conn:
            publish = self._publish_flag(conn, dataset)
            now = _now_us()
            state: dict[str, tuple[int, bytes, bool]] = {}
            was_checked: dict[str, str | None] = {}
            ids = list(dict.fromkeys(op[0] for op in ops))
            for chunk in _chunks(ids, _CHUNK):
                marks = ",".join("?" * len(chunk))
                for rid, version, digest, deleted, mark in conn.execute(
                        f"SELECT id, version, hash, deleted, checked FROM records WHERE dataset = ? "
                        f"AND id IN ({marks})", (dataset, *chunk)):
                    state[rid] = (version, bytes(digest), bool(deleted))
                    was_checked[rid] = mark
            rechecked: list[tuple[str, str, str]] = []
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
            seq = row[0] if row else 0
            results: list[UpsertResult] = []
            # an id appearing twice in one call is applied in order: split into rounds
            rounds: list[list[tuple[str, str | None, bytes]]] = [[]]
            seen: set[str] = set()
            for op in ops:
                if op[0] in seen:
                    rounds.append([])
                    seen = set()
                seen.add(op[0])
                rounds[-1].append(op)
            for round_ops in rounds:
                inserts: list[tuple[Any, ...]] = []
                moves: list[tuple[str, str]] = []
                updates: list[tuple[Any, ...]] = []
                changes: list[tuple[Any, ...]] = []
                for rid, body, digest in round_ops:
                    current = state.get(rid)
                    deleting = body is None
                    if deleting:
                        if current is None or current[2]:
                            results.append(UpsertResult(rid, current[0] if current else 0, False))
                            continue
                    elif current is not None and not current[2] and current[1] == digest:
                        if checked is not None and was_checked.get(rid) != checked:
                            rechecked.append((checked, dataset, rid))
                            was_checked[rid] = checked
                        results.append(UpsertResult(rid, current[0], False))
                        continue
                    seq += 1
                    version = 1 if current is None else current[0] + 1
                    mark = None if deleting else checked
                    was_checked[rid] = mark
                    if current is None:
                        inserts.append((dataset, rid, version, digest, body, 0, now, seq, mark))
                    else:
                        moves.append((dataset, rid))
                        updates.append((version, digest, body, int(deleting), now, seq, mark, dataset, rid))
                    changes.append((seq, dataset, rid, version, "delete" if deleting else "upsert", now))
                    state[rid] = (version, digest, deleting)
                    results.append(UpsertResult(rid, version, True))
                if inserts:
                    conn.executemany(f"INSERT INTO records ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", inserts)
                if moves:
                    conn.executemany(f"INSERT INTO history ({_COLS}) SELECT {_COLS} FROM records "
                                     "WHERE dataset = ? AND id = ?", moves)
                    conn.executemany("UPDATE records SET version = ?, hash = ?, body = ?, deleted = ?, "
                                     "modified_us = ?, seq = ?, checked = ? WHERE dataset = ? AND id = ?", updates)
                if changes:
                    conn.executemany("INSERT INTO changes (seq, dataset, record_id, version, op, at_us) "
                                     "VALUES (?, ?, ?, ?, ?, ?)", changes)
                    if publish:
                        conn.executemany(
                            "INSERT INTO outbox (dataset, record_id, version, op, seq, created_us) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            [(c[1], c[2], c[3], c[4], c[0], now) for c in changes])
            if rechecked:
                conn.executemany("UPDATE records SET checked = ? WHERE dataset = ? AND id = ?", rechecked)
        return results

    # ---- reads ------------------------------------------------------------------------
    def get_record(self, dataset: str, record_id: str, *, version: int | None = None) -> StoredRecord | None:
        """The current version (a tombstone if deleted), or a given version; None if absent."""
        with self.reader() as conn:
            row = conn.execute(f"SELECT {_COLS} FROM records WHERE dataset = ? AND id = ?",
                               (dataset, record_id)).fetchone()
            if version is not None and (row is None or row[2] != version):
                row = conn.execute(f"SELECT {_COLS} FROM history WHERE dataset = ? AND id = ? AND version = ?",
                                   (dataset, record_id, version)).fetchone()
        return None if row is None else _row_to_record(row)

    def record_versions(self, dataset: str, record_id: str) -> list[StoredRecord]:
        """Every stored version of a record, oldest first."""
        with self.reader() as conn:
            rows = conn.execute(f"SELECT {_COLS} FROM history WHERE dataset = ? AND id = ? "
                                f"UNION ALL SELECT {_COLS} FROM records WHERE dataset = ? AND id = ? "
                                "ORDER BY version", (dataset, record_id, dataset, record_id)).fetchall()
        return [_row_to_record(r) for r in rows]

    def count_records(self, dataset: str, *, include_deleted: bool = False) -> int:
        where = "" if include_deleted else " AND deleted = 0"
        with self.reader() as conn:
            value: int = conn.execute(f"SELECT count(*) FROM records WHERE dataset = ?{where}",
                                      (dataset,)).fetchone()[0]
        return value

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
        deleted = "" if include_deleted else " AND deleted = 0"
        remaining = limit
        if ids is not None:
            wanted = sorted(set(ids))
            for chunk in _chunks(wanted, min(page_size, _CHUNK)):
                marks = ",".join("?" * len(chunk))
                with self.reader() as conn:
                    rows = conn.execute(f"SELECT {_COLS} FROM records WHERE dataset = ? AND id IN ({marks})"
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
                            f"SELECT {_COLS} FROM records WHERE dataset = ? AND modified_us >= ?{deleted} "
                            "ORDER BY modified_us, id LIMIT ?", (dataset, since, size)).fetchall()
                    else:
                        rows = conn.execute(
                            f"SELECT {_COLS} FROM records WHERE dataset = ? AND (modified_us, id) > (?, ?)"
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
                    rows = conn.execute(f"SELECT {_COLS} FROM records WHERE dataset = ?{deleted} "
                                        "ORDER BY id LIMIT ?", (dataset, size)).fetchall()
                else:
                    rows = conn.execute(f"SELECT {_COLS} FROM records WHERE dataset = ? AND id > ?{deleted} "
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
        with self.reader() as conn:
            if dataset is None:
                rows = conn.execute("SELECT seq, dataset, record_id, version, op, at_us FROM changes "
                                    "WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
            else:
                rows = conn.execute("SELECT seq, dataset, record_id, version, op, at_us FROM changes "
                                    "WHERE dataset = ? AND seq > ? ORDER BY seq LIMIT ?",
                                    (dataset, after, limit)).fetchall()
        return [Change(*r) for r in rows]

    def latest_seq(self) -> int:
        """The newest change's seq (0 when there is none)."""
        with self.reader() as conn:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
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
