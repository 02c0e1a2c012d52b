"""Helpers of the gRPC servicers: safe decoding, conversions to messages, request checks, the
change notifier, the lazily imported catalog builder."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

from node._generated.shulian.v1 import access_pb2, common_pb2, records_pb2
from node.errors import InputError
from node.service import MAX_BATCH, OutBatch, ReadSession, sign_batch
from node.store import RECORD_ID_RE
from node.store import AccessRequest as StoredRequest
from node.transport.grpc._errors import BadMessage

__all__ = ["safe_parser", "ChangeNotifier", "Prefetcher", "ResponseFramer", "access_info", "batch_message",
           "batch_bytes", "query_response_bytes", "serialize_query_response", "check_ids", "check_text",
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


class Prefetcher(Generic[T]):
    """Runs a blocking producer in an executor up to ``depth`` items ahead of the consumer.

    ``produce()`` returns the next item, or None at the end; it is called one call at a
    time, in order, back to back while fewer than ``depth`` items wait (each call is its
    own executor task, so no thread is held while the consumer is slow). An exception
    from ``produce`` ends the production and is raised by :meth:`get`. :attr:`finished`
    resolves once no call runs and none will start (after the end, an error or :meth:`stop`).
    """

    def __init__(self, executor: Executor, produce: Callable[[], T | None], depth: int = 3) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = executor
        self._produce = produce
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()
        self._items: asyncio.Queue[T | BaseException | None] = asyncio.Queue()
        self._room = depth - 1
        self._running = True
        self._over = False  # the end, an error, or stop()
        self.finished: asyncio.Future[None] = self._loop.create_future()
        self._submit()

    def _submit(self) -> None:
        try:
            self._executor.submit(self._context.copy().run, self._task)
        except RuntimeError as exc:  # the executor is shut down
            self._end(exc)

    def _end(self, item: BaseException | None) -> None:
        with self._lock:
            self._running = False
            self._over = True
        self._post(item)
        self._post_done()

    def _post(self, item: T | BaseException | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _post_done(self) -> None:
        def done() -> None:
            if not self.finished.done():
                self.finished.set_result(None)

        try:
            self._loop.call_soon_threadsafe(done)
        except RuntimeError:
            pass

    def _task(self) -> None:
        item: T | BaseException | None
        try:
            item = self._produce()
        except BaseException as exc:  # handed to the consumer
            item = exc
        again = finished = False
        with self._lock:
            if item is None or isinstance(item, BaseException) or self._over:
                self._running, self._over, finished = False, True, True
            elif self._room > 0:
                self._room -= 1
                again = True
            else:
                self._running = False
        self._post(item)
        if again:
            self._submit()
        if finished:
            self._post_done()

    async def get(self) -> T | None:
        """The next item (None at the end)."""
        item = await self._items.get()
        start = False
        with self._lock:
            self._room += 1
            if not self._running and not self._over and self._room > 0:
                self._running, start = True, True
                self._room -= 1
        if start:
            self._submit()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """Start no further call (the one running, if any, completes)."""
        with self._lock:
            self._over = True
            idle = not self._running
        if idle and not self.finished.done():
            self.finished.set_result(None)


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


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def batch_bytes(batch: OutBatch, provider: str) -> bytes:
    """The encoded ``RecordBatch`` of a batch, framed around its already encoded records.

    Serialised messages concatenate into their merge, so this is the bytes of
    ``RecordBatch(dataset=..., records=[...], provider=..., key_id=..., signature=...)``,
    field for field in the order protobuf writes them.
    """
    head = common_pb2.RecordBatch(dataset=batch.dataset).SerializeToString()
    tail = common_pb2.RecordBatch(provider=provider, key_id=batch.key_id, signature=batch.signature).SerializeToString()
    return b"".join((head, batch.wire, tail))


def batch_message(batch: OutBatch, provider: str) -> common_pb2.RecordBatch:
    message: common_pb2.RecordBatch = common_pb2.RecordBatch.FromString(batch_bytes(batch, provider))
    return message


class ResponseFramer:
    """Encodes the QueryResponses of one stream: the RecordBatch fields that do not change
    from batch to batch are encoded once (what :func:`query_response_bytes` writes)."""

    def __init__(self, dataset: str, provider: str, key_id: str) -> None:
        self.dataset, self.provider, self.key_id = dataset, provider, key_id
        self._head = common_pb2.RecordBatch(dataset=dataset).SerializeToString()
        self._tail = common_pb2.RecordBatch(provider=provider, key_id=key_id).SerializeToString()

    def __call__(self, batch: OutBatch, delivery: common_pb2.Delivery | None = None) -> bytes:
        if (batch.dataset, batch.key_id) != (self.dataset, self.key_id):
            return query_response_bytes(batch, self.provider, delivery)
        signature = b"\x2a" + _varint(len(batch.signature)) + batch.signature if batch.signature else b""
        size = len(self._head) + len(batch.wire) + len(self._tail) + len(signature)
        parts = [b"\x0a", _varint(size), self._head, batch.wire, self._tail, signature]
        if delivery is not None:
            parts.append(records_pb2.QueryResponse(delivery=delivery).SerializeToString())
        return b"".join(parts)


def query_response_bytes(batch: OutBatch, provider: str, delivery: common_pb2.Delivery | None = None) -> bytes:
    """An encoded ``QueryResponse`` (``batch``, and ``delivery`` on a stream's first message)."""
    body = batch_bytes(batch, provider)
    out = b"\x0a" + _varint(len(body)) + body  # field 1, length-delimited
    if delivery is not None:
        out += records_pb2.QueryResponse(delivery=delivery).SerializeToString()
    return out


def serialize_query_response(message: records_pb2.QueryResponse | bytes) -> bytes:
    """The Query handler's serializer: a message, or bytes already encoded (:func:`query_response_bytes`)."""
    if isinstance(message, bytes):
        return message
    data: bytes = message.SerializeToString()
    return data


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

