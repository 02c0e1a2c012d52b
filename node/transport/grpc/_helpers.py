"""Helpers of the gRPC servicers: safe decoding, conversions to messages, request checks, the
change notifier, the lazily imported catalog builder."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from node._generated.shulian.v1 import access_pb2, common_pb2
from node.errors import InputError
from node.service import MAX_BATCH, OutBatch, ReadSession, sign_batch
from node.store import RECORD_ID_RE
from node.store import AccessRequest as StoredRequest
from node.transport.grpc._errors import BadMessage

__all__ = ["safe_parser", "ChangeNotifier", "access_info", "batch_message", "check_ids", "check_text",
           "check_batch_size", "empty_batch", "MAX_IDS"]

T = TypeVar("T")

MAX_IDS = 100_000


def safe_parser(parse: Callable[[bytes], T]) -> Callable[[bytes], T | BadMessage]:
    def deserialize(data: bytes) -> T | BadMessage:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError, and anything upb raises on hostile bytes
            return BadMessage(f"{type(exc).__name__}: {exc}", len(data))

    return deserialize


class ChangeNotifier:
    """Wakes following subscriptions when this process stores changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def _iso(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def access_info(r: StoredRequest) -> access_pb2.AccessRequestInfo:
    return access_pb2.AccessRequestInfo(
        id=r.id, dataset=r.dataset, consumer=r.consumer, purpose=r.purpose, scenario=r.scenario, items=list(r.items),
        until=_date(r.until), status=r.status, reason=r.reason, filed_at=_iso(r.filed_at), deadline=_date(r.deadline),
        decided_at=_iso(r.decided_at))


def batch_message(batch: OutBatch, provider: str) -> common_pb2.RecordBatch:
    pb = common_pb2.RecordBatch(dataset=batch.dataset, provider=provider, key_id=batch.key_id,
                                signature=batch.signature)
    add = pb.records.add  # faster than building Record objects and passing a list
    for rid, version, modified_us, deleted, payload in batch.records:
        if deleted:
            add(id=rid, version=version, modified_us=modified_us, deleted=True)
        else:
            add(id=rid, version=version, modified_us=modified_us, payload=payload)
    return pb


def check_ids(ids: list[str]) -> None:
    if len(ids) > MAX_IDS:
        raise InputError(f"at most {MAX_IDS} ids per query, got {len(ids)}", reason="BAD_REQUEST")
    for rid in ids:
        if not RECORD_ID_RE.match(rid):
            raise InputError(f"bad record id {rid!r} in ids: it must match {RECORD_ID_RE.pattern}",
                             reason="BAD_REQUEST")


def check_text(name: str, value: str, limit: int = 1000) -> None:
    if len(value) > limit:
        raise InputError(f"{name} is longer than {limit} characters", reason="BAD_REQUEST")


def check_batch_size(value: int) -> None:
    if value > MAX_BATCH:
        raise InputError(f"batch_size is at most {MAX_BATCH}, got {value}", reason="BAD_REQUEST")


def empty_batch(session: ReadSession, provider: str) -> common_pb2.RecordBatch:
    return common_pb2.RecordBatch(dataset=session.dataset, provider=provider, key_id=session.core.key_id,
                                  signature=sign_batch(session.core.signing_key, session.dataset, []))

