"""Access requests, policy state and the quarantine."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from node.errors import AlreadyExists, InputError, NotFound
from node.store._db import StoreBase
from node.store._types import ACCESS_STATUSES, QUARANTINE_STATUSES, AccessRequest, QuarantineItem

__all__ = ["TablesMixin"]

_AR_COLS = ("id, consumer, dataset, purpose, scenario, items, until, status, reason, filed_at, deadline, "
            "decided_at, decided_by")
_Q_COLS = "id, received_at, topic, partition, kafka_offset, headers, value, reason, status"


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_iso(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _parse_date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _row_to_request(row: Sequence[Any]) -> AccessRequest:
    filed = _parse_iso(row[9])
    assert filed is not None
    return AccessRequest(
        id=row[0], consumer=row[1], dataset=row[2], purpose=row[3], scenario=row[4],
        items=tuple(json.loads(row[5])), until=_parse_date(row[6]), status=row[7], reason=row[8],
        filed_at=filed, deadline=_parse_date(row[10]), decided_at=_parse_iso(row[11]), decided_by=row[12])


def _encode_headers(headers: Iterable[tuple[str, bytes | str | None]]) -> str:
    out: list[list[Any]] = []
    for key, value in headers:
        if value is None:
            out.append([key, None])
        elif isinstance(value, str):
            out.append([key, value])
        else:
            try:
                out.append([key, bytes(value).decode("utf-8")])
            except UnicodeDecodeError:
                out.append([key, {"base64": base64.b64encode(bytes(value)).decode("ascii")}])
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def _decode_headers(text: str) -> tuple[tuple[str, bytes], ...]:
    out: list[tuple[str, bytes]] = []
    for key, value in json.loads(text):
        if value is None:
            out.append((key, b""))
        elif isinstance(value, dict):
            out.append((key, base64.b64decode(value["base64"])))
        else:
            out.append((key, str(value).encode("utf-8")))
    return tuple(out)


def _row_to_quarantine(row: Sequence[Any]) -> QuarantineItem:
    received = _parse_iso(row[1])
    assert received is not None
    return QuarantineItem(id=row[0], received_at=received, topic=row[2], partition=row[3], offset=row[4],
                          headers=_decode_headers(row[5]), value=None if row[6] is None else bytes(row[6]),
                          reason=row[7], status=row[8])


class TablesMixin(StoreBase):
    # ---- access requests --------------------------------------------------------------
    def file_access_request(
        self,
        *,
        consumer: str,
        dataset: str,
        purpose: str,
        scenario: str,
        items: Sequence[str] = (),
        until: dt.date | None = None,
        deadline: dt.date | None = None,
        request_id: str | None = None,
        filed_at: dt.datetime | None = None,
    ) -> AccessRequest:
        """Record a new, pending access request (the policy layer checks it first)."""
        if not purpose.strip() or not scenario.strip():
            raise InputError("an access request must state its purpose (使用用途) and scenario (应用场景)")
        rid = request_id or uuid.uuid4().hex
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM access_requests WHERE id = ?", (rid,)).fetchone():
                raise AlreadyExists(f"access request {rid} already exists")
            conn.execute(
                f"INSERT INTO access_requests ({_AR_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', '', ?, ?, "
                "NULL, '')",
                (rid, consumer, dataset, purpose, scenario, json.dumps(list(items), ensure_ascii=False),
                 until.isoformat() if until else None, _iso(filed_at or _now()),
                 deadline.isoformat() if deadline else None))
        return self.get_access_request(rid)

    def get_access_request(self, request_id: str) -> AccessRequest:
        with self.reader() as conn:
            row = conn.execute(f"SELECT {_AR_COLS} FROM access_requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise NotFound(f"no access request {request_id!r}")
        return _row_to_request(row)

    def list_access_requests(self, *, status: str | None = None, consumer: str | None = None,
                             dataset: str | None = None, limit: int | None = None) -> list[AccessRequest]:
        """Requests, oldest first, filtered by any of status, consumer, dataset."""
        if status is not None and status not in ACCESS_STATUSES:
            raise InputError(f"unknown status {status!r}; use one of: {', '.join(ACCESS_STATUSES)}")
        where, args = [], []
        for column, value in (("status", status), ("consumer", consumer), ("dataset", dataset)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_AR_COLS} FROM access_requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY filed_at, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.reader() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_row_to_request(r) for r in rows]

    def decide_access_request(self, request_id: str, *, approve: bool, reason: str = "", decided_by: str = "",
                              decided_at: dt.datetime | None = None) -> AccessRequest:
        """Approve or deny a pending request. A denial must give its reason."""
        if not approve and not reason.strip():
            raise InputError("a refusal must give its reason")
        with self.transaction() as conn:
            row = conn.execute("SELECT status, decided_at FROM access_requests WHERE id = ?",
                               (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"no access request {request_id!r}")
            if row[0] != "pending":
                raise AlreadyExists(f"access request {request_id} was already {row[0]} at {row[1]}")
            conn.execute("UPDATE access_requests SET status = ?, reason = ?, decided_at = ?, decided_by = ? "
                         "WHERE id = ?", ("approved" if approve else "denied", reason,
                                          _iso(decided_at or _now()), decided_by, request_id))
        return self.get_access_request(request_id)

    # ---- policy state -----------------------------------------------------------------
    def put_state(self, namespace: str, key: str, value: Any) -> None:
        """Store a JSON value under (namespace, key), replacing any previous one."""
        try:
            text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"policy state {namespace}/{key}: not JSON-serialisable ({exc})") from exc
        with self.transaction() as conn:
            conn.execute("INSERT INTO policy_state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                         "updated_at = excluded.updated_at", (namespace, key, text, _iso(_now())))

    def get_state(self, namespace: str, key: str, default: Any = None) -> Any:
        with self.reader() as conn:
            row = conn.execute("SELECT value FROM policy_state WHERE namespace = ? AND key = ?",
                               (namespace, key)).fetchone()
        return default if row is None else json.loads(row[0])

    def state_items(self, namespace: str) -> list[tuple[str, Any]]:
        with self.reader() as conn:
            rows = conn.execute("SELECT key, value FROM policy_state WHERE namespace = ? ORDER BY key",
                                (namespace,)).fetchall()
        return [(k, json.loads(v)) for k, v in rows]

    def delete_state(self, namespace: str, key: str) -> bool:
        with self.transaction() as conn:
            cur = conn.execute("DELETE FROM policy_state WHERE namespace = ? AND key = ?", (namespace, key))
            return cur.rowcount > 0

    # ---- quarantine -------------------------------------------------------------------
    def quarantine_add(self, *, topic: str, partition: int, offset: int,
                       headers: Iterable[tuple[str, bytes | str | None]], value: bytes | None, reason: str,
                       received_at: dt.datetime | None = None) -> QuarantineItem:
        """Hold a message that failed checks. Idempotent on (topic, partition, offset)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO quarantine (received_at, topic, partition, kafka_offset, headers, value, reason, "
                "status) VALUES (?, ?, ?, ?, ?, ?, ?, 'held') ON CONFLICT (topic, partition, kafka_offset) "
                "DO NOTHING",
                (_iso(received_at or _now()), topic, partition, offset, _encode_headers(headers), value, reason))
            row = conn.execute(f"SELECT {_Q_COLS} FROM quarantine WHERE topic = ? AND partition = ? "
                               "AND kafka_offset = ?", (topic, partition, offset)).fetchone()
        return _row_to_quarantine(row)

    def quarantine_get(self, item_id: int) -> QuarantineItem:
        with self.reader() as conn:
            row = conn.execute(f"SELECT {_Q_COLS} FROM quarantine WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise NotFound(f"no quarantined message {item_id}")
        return _row_to_quarantine(row)

    def quarantine_list(self, *, status: str | None = None, limit: int = 100,
                        after_id: int = 0) -> list[QuarantineItem]:
        if status is not None and status not in QUARANTINE_STATUSES:
            raise InputError(f"unknown status {status!r}; use one of: {', '.join(QUARANTINE_STATUSES)}")
        with self.reader() as conn:
            if status is None:
                rows = conn.execute(f"SELECT {_Q_COLS} FROM quarantine WHERE id > ? ORDER BY id LIMIT ?",
                                    (after_id, limit)).fetchall()
            else:
                rows = conn.execute(f"SELECT {_Q_COLS} FROM quarantine WHERE status = ? AND id > ? "
                                    "ORDER BY id LIMIT ?", (status, after_id, limit)).fetchall()
        return [_row_to_quarantine(r) for r in rows]

    def quarantine_set_status(self, item_id: int, status: str) -> QuarantineItem:
        if status not in QUARANTINE_STATUSES:
            raise InputError(f"unknown status {status!r}; use one of: {', '.join(QUARANTINE_STATUSES)}")
        with self.transaction() as conn:
            cur = conn.execute("UPDATE quarantine SET status = ? WHERE id = ?", (status, item_id))
            if cur.rowcount == 0:
                raise NotFound(f"no quarantined message {item_id}")
        return self.quarantine_get(item_id)
