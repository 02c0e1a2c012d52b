"""Values the store returns (frozen)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DatasetInfo",
    "UpsertResult",
    "StoredRecord",
    "Change",
    "OutboxItem",
    "AccessRequest",
    "QuarantineItem",
    "ACCESS_STATUSES",
    "QUARANTINE_STATUSES",
    "us_to_datetime",
    "datetime_to_us",
]

ACCESS_STATUSES = ("pending", "approved", "denied")
QUARANTINE_STATUSES = ("held", "released", "discarded")


def us_to_datetime(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


def datetime_to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    id: str
    record_type: str | None
    publish: bool
    metadata: dict[str, Any]
    created: dt.datetime
    updated: dt.datetime


@dataclass(frozen=True, slots=True)
class UpsertResult:
    id: str
    version: int  # the record's version after the call (0: never existed)
    changed: bool  # False: same content (or deleting what is not there), nothing written


@dataclass(frozen=True, slots=True)
class StoredRecord:
    dataset: str
    id: str
    version: int
    hash: str  # hex blake2b-128 of the canonical JSON; "" for a tombstone
    body: str | None  # canonical JSON; None for a tombstone
    deleted: bool
    modified_us: int
    seq: int
    checked: str | None = None  # the validator fingerprint the record passed at the boundary (None: not validated)

    @property
    def data(self) -> dict[str, Any] | None:
        """The record as a dict (parsed on each access), None for a tombstone."""
        if self.body is None:
            return None
        value: dict[str, Any] = json.loads(self.body)
        return value

    @property
    def modified(self) -> dt.datetime:
        return us_to_datetime(self.modified_us)


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    dataset: str
    record_id: str
    version: int
    op: str  # upsert | delete
    at_us: int

    @property
    def at(self) -> dt.datetime:
        return us_to_datetime(self.at_us)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    dataset: str
    record_id: str
    version: int
    op: str
    seq: int
    created_us: int

    @property
    def created(self) -> dt.datetime:
        return us_to_datetime(self.created_us)


@dataclass(frozen=True, slots=True)
class AccessRequest:
    id: str
    consumer: str
    dataset: str
    purpose: str
    scenario: str
    items: tuple[str, ...]
    until: dt.date | None
    status: str  # pending | approved | denied
    reason: str
    filed_at: dt.datetime
    deadline: dt.date | None
    decided_at: dt.datetime | None
    decided_by: str = ""


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    id: int
    received_at: dt.datetime
    topic: str
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...]
    value: bytes | None
    reason: str
    status: str  # held | released | discarded
