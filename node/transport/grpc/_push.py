"""Records.Push: a stream of record batches, validated and stored, each answered once durable.

The stream is a pipeline. While one batch is being stored (in the node's executor:
SQLite, the evidence entry, the answer), the next ones are prepared (decoded,
validated, encoded): in the node's prepare helper process (a second core, see
:meth:`node.service.NodeCore.prepare_pool`) when a batch is large enough and the helper
is up, else in the executor. Batches commit and are answered in order.

The prepare helper process loads this module for :func:`push_records`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from node._generated.shulian.v1 import records_pb2
from node.errors import InputError
from node.service import NodeCore, PreparedBatch, PreparePool, set_log_fields, unpack_prepared
from node.transport.grpc._errors import BadMessage

try:  # an encoded PushRequest's pairs in one C call (optional: setup.py)
    from node import _fastprep
except ImportError:  # not built: push_records parses with upb
    _fastprep = None  # type: ignore[assignment]

__all__ = ["PushStream", "EncodedPushRequest", "parse_push_request", "push_pairs", "push_records",
           "push_response_bytes", "serialize_push_response", "MAX_PUSH_RECORDS", "POOL_MIN_RECORDS", "PREPARE_AHEAD"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_PUSH_RECORDS = 5000
#: batches of at least this many records are prepared in the prepare helper process (once it is up)
POOL_MIN_RECORDS = 64
#: batches of a stream prepared ahead of the one being stored (the helper always has the next one in hand)
PREPARE_AHEAD = 4
#: answers stored and waiting to be sent (storing goes on while an answer is being written)
ANSWERS_AHEAD = 2
#: group commit: batches already prepared when one is stored join its transaction (one commit, one
#: fsync for all), up to this many batches and records
GROUP_BATCHES = 4
GROUP_RECORDS = 4000
#: the encoded size of the requests a stream holds read ahead and not yet stored, at most (one request is
#: always let through): with 64 MB messages allowed, PREPARE_AHEAD alone would let a stream hold gigabytes
PREPARE_BYTES = 64 << 20


class _Budget:
    """The bytes a Push stream holds read ahead (its reader takes, its storer gives back)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._freed = asyncio.Event()

    async def take(self, size: int) -> None:
        while self.used and self.used + size > self.limit:  # one request is always let through
            self._freed.clear()
            await self._freed.wait()
        self.used += size

    def give(self, size: int) -> None:
        self.used -= size
        self._freed.set()


@dataclass
class _Counts:
    """What a Push stream stored, for its closing log line."""

    dataset: str = ""
    batches: int = 0
    accepted: int = 0
    rejected: int = 0


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def push_response_bytes(batch: int, ids: Sequence[str], versions: Sequence[int], changed: Sequence[bool]) -> bytes:
    """``PushResponse(batch=batch, accepted=len(ids), results=[RecordResult(id, STORED or UNCHANGED,
    version) ...]).SerializeToString()``, written directly: the answer to a batch whose records
    were all accepted without warnings (the common case), a tenth of the storing thread's time
    when built as a message. The same bytes (fields in number order, zero values left out)."""
    parts = [b"\x08" + _varint(batch)] if batch else []
    uniform = _uniform_results(ids, versions, changed)
    if uniform is not None:
        parts.append(uniform)
        parts.append(b"\x18" + _varint(len(ids)))
        return b"".join(parts)
    append = parts.append
    for rid, version, new in zip(ids, versions, changed, strict=True):
        idb = rid.encode("utf-8")
        n = len(idb)
        if n < 122 and 0 < version < 128:  # one byte for every length and number
            append(b"\x12%c\n%c%s\x10%c\x18%c" % (n + 6, n, idb, 1 if new else 2, version))
            continue
        sub = b"".join((b"\n", _varint(n), idb, b"\x10\x01" if new else b"\x10\x02",
                        b"\x18" + _varint(version) if version else b""))
        append(b"\x12" + _varint(len(sub)) + sub)
    if ids:
        append(b"\x18" + _varint(len(ids)))
    return b"".join(parts)


def _uniform_results(ids: Sequence[str], versions: Sequence[int], changed: Sequence[bool]) -> bytes | None:
    """The results of :func:`push_response_bytes` in one join, for the usual batch: ASCII ids all of
    one length, one status and one version below 128 (every length and number one byte, every
    result the same bytes around its id). None for any other batch."""
    n = len(ids)
    if not n or len(versions) != n or len(changed) != n:
        return None
    version, new = versions[0], changed[0]
    lengths = set(map(len, ids))
    if len(lengths) != 1 or not 0 < version < 128 or versions.count(version) != n or changed.count(new) != n \
            or new not in (True, False):
        return None
    size = lengths.pop()
    joined = "".join(ids)
    if size >= 122 or not joined.isascii():
        return None
    head = f"\x12{chr(size + 6)}\n{chr(size)}"
    tail = f"\x10{chr(1 if new else 2)}\x18{chr(version)}"
    return (head + (tail + head).join(ids) + tail).encode("ascii")


def serialize_push_response(message: records_pb2.PushResponse | bytes) -> bytes:
    """The Push handler's serializer: a message, or bytes already encoded (:func:`push_response_bytes`)."""
    if isinstance(message, bytes):
        return message
    data: bytes = message.SerializeToString()
    return data


class EncodedPushRequest:
    """A PushRequest kept as it came off the wire, with what the stream needs of it before it is
    prepared: the dataset and the number of records (:func:`parse_push_request`). The prepare
    helper is sent ``data`` as it is; nothing parses the records in this process."""

    __slots__ = ("data", "dataset", "count")

    def __init__(self, data: bytes, dataset: str, count: int) -> None:
        self.data, self.dataset, self.count = data, dataset, count


AnyPushRequest = records_pb2.PushRequest | EncodedPushRequest


def parse_push_request(data: bytes) -> AnyPushRequest:
    """The Push handler's request parser: an :class:`EncodedPushRequest` when node._fastprep reads
    the request's head (the usual request: what its push_pairs reads, which upb reads alike), else
    the message upb parses (or its DecodeError, which the handler answers as a bad request)."""
    if _fastprep is not None:
        head = _fastprep.push_head(data)
        if head is not None:
            return EncodedPushRequest(data, *head)
    message: records_pb2.PushRequest = records_pb2.PushRequest.FromString(data)
    return message


def _count(req: AnyPushRequest) -> int:
    return req.count if isinstance(req, EncodedPushRequest) else len(req.records)


def _encoded(req: AnyPushRequest) -> bytes:
    return req.data if isinstance(req, EncodedPushRequest) else req.SerializeToString()


def push_pairs(req: AnyPushRequest) -> list[tuple[str, bytes]]:
    """A PushRequest's records as the (id, payload) pairs :meth:`NodeCore.prepare` takes."""
    if isinstance(req, EncodedPushRequest):
        return push_records(req.data)
    return [(r.id, r.payload) for r in req.records]


def push_records(data: bytes) -> list[tuple[str, bytes]]:
    """:func:`push_pairs` of an encoded PushRequest (what the prepare helper process is sent).

    With node._fastprep built, its push_pairs reads the usual request straight off the wire
    format (a third of the time); it answers None for anything unusual, which upb then parses
    (and refuses with DecodeError when it is not a PushRequest)."""
    if _fastprep is not None:
        pairs = _fastprep.push_pairs(data)
        if pairs is not None:
            return pairs
    return push_pairs(records_pb2.PushRequest.FromString(data))


class PushStream:
    """One Push call: :meth:`responses` answers a stream of PushRequests.

    ``run(fn, *args)`` runs blocking work in the node's executor (keeping the log context);
    ``notify()`` (called in the event loop) wakes the change-feed followers after a commit.
    """

    def __init__(self, core: NodeCore, run: Callable[..., Awaitable[Any]], notify: Callable[[], None]) -> None:
        self.core = core
        self.run = run
        self.notify = notify

    async def responses(self, requests: AsyncIterator[Any], peer: str, rid: str
                        ) -> AsyncIterator[records_pb2.PushResponse | bytes]:
        """The answers, one per batch, in order, each as soon as its batch is stored. A bad request
        refuses the stream once every batch before it was stored and answered.

        Three stages run side by side: a reader task takes the requests and starts preparing
        each (up to :data:`PREPARE_AHEAD` batches ahead of the one being stored), a storing
        task stores the prepared batches one after the other, and this generator sends the
        answers. A batch is stored while the answer to the one before it is being sent. An
        answer never waits for a later request, so a client may wait for answers before it
        sends more.
        """
        queue: asyncio.Queue[asyncio.Future[PreparedBatch] | BaseException | None] = asyncio.Queue(PREPARE_AHEAD)
        answers: asyncio.Queue[records_pb2.PushResponse | bytes | BaseException | None] = asyncio.Queue(ANSWERS_AHEAD)
        budget, sizes = _Budget(PREPARE_BYTES), collections.deque[int]()  # sizes: of the batches queued, in order
        reader = asyncio.ensure_future(self._read(requests, peer, rid, queue, budget, sizes))
        counts = _Counts()
        storer = asyncio.ensure_future(self._store_all(queue, answers, peer, rid, counts, budget, sizes))
        refused: BaseException | None = None
        try:
            while True:
                item = await answers.get()
                if item is None:  # every batch is stored and answered
                    break
                if isinstance(item, BaseException):
                    refused = item
                    break
                yield item
        finally:
            reader.cancel()
            # the client went away (or the stream is refused): the batch being stored still commits
            # (durable), its answer is lost; batches not stored yet are dropped unanswered
            storer.cancel()
            await asyncio.gather(storer, return_exceptions=True)
            while not queue.empty():
                left = queue.get_nowait()
                if isinstance(left, asyncio.Future):
                    if left.done() and not left.cancelled():
                        left.exception()  # retrieved: nothing will store this batch
                    else:
                        left.cancel()
        if counts.dataset:
            set_log_fields(dataset=counts.dataset)
        log.info("push stored %d record(s), rejected %d, in %d batch(es)", counts.accepted, counts.rejected,
                 counts.batches, extra={"accepted": counts.accepted, "rejected": counts.rejected,
                                        "batches": counts.batches})
        if refused is not None:
            raise refused

    async def _store_all(self, queue: asyncio.Queue[asyncio.Future[PreparedBatch] | BaseException | None],
                         answers: asyncio.Queue[records_pb2.PushResponse | bytes | BaseException | None],
                         peer: str, rid: str, counts: _Counts, budget: _Budget, sizes: collections.deque[int]
                         ) -> None:
        """Store the prepared batches in order and queue their answers; then None, or the error that
        ends the stream. Cancelled, it lets a store under way finish (the batch is durable).

        Group commit: the batches that are already prepared when one is stored (up to
        :data:`GROUP_BATCHES` and :data:`GROUP_RECORDS`) are stored in the same transaction,
        each as before (its own records, evidence entry and answer), and committed once: one
        fsync for the group. Their answers are queued after that commit, in order.
        """
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[PreparedBatch] | BaseException | None = None
        taken = False  # pending holds an item taken from the queue
        while True:
            item = pending if taken else await queue.get()
            pending, taken = None, False
            if item is None or isinstance(item, BaseException):
                await answers.put(item)
                return
            held = sizes.popleft()  # the request's size: given back once its batch is stored
            try:
                prepared = await item
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - ends the stream, after the batches before it
                await answers.put(exc)
                return
            if not counts.batches:
                counts.dataset = prepared.dataset
                set_log_fields(dataset=prepared.dataset)  # (the reader's log fields are its own)
            group = [prepared]
            size = len(prepared.outcomes)
            while len(group) < GROUP_BATCHES and size < GROUP_RECORDS and not queue.empty():
                following = queue.get_nowait()
                if isinstance(following, asyncio.Future) and following.done() and not following.cancelled() \
                        and following.exception() is None:
                    group.append(following.result())
                    size += len(group[-1].outcomes)
                    held += sizes.popleft()
                else:  # not ready (or the end, or an error): the next round takes it as it is
                    pending, taken = following, True
                    break
            storing = asyncio.ensure_future(self.run(self._commit_group, peer, group, counts.batches, rid, loop))
            try:
                results, failed = await asyncio.shield(storing)
            except asyncio.CancelledError:
                if not storing.done():
                    await asyncio.wait([storing])  # committed all the same: wait for it, then stop
                if not storing.cancelled():
                    storing.exception()  # retrieved (a failed store is logged by the caller's answer path)
                raise
            except Exception as exc:  # noqa: BLE001 - a store that failed ends the stream here
                await answers.put(exc)
                return
            budget.give(held)
            for response, accepted, rejected in results:
                counts.batches += 1
                counts.accepted += accepted
                counts.rejected += rejected
                await answers.put(response)
            if failed is not None:  # a later batch of the group failed: the ones before it are stored
                await answers.put(failed)
                return

    async def _read(self, requests: AsyncIterator[Any], peer: str, rid: str,
                    queue: asyncio.Queue[asyncio.Future[PreparedBatch] | BaseException | None],
                    budget: _Budget, sizes: collections.deque[int]) -> None:
        """Check each request and start preparing its batch; then None (the end), or the error that
        ends the stream (a bad request, or the client's stream failing)."""
        dataset: str | None = None
        record_type = ""
        pool: PreparePool | None = None
        n = 0
        try:
            async for req in requests:
                if isinstance(req, BadMessage):
                    raise InputError(f"malformed PushRequest #{n} ({req.size} bytes): {req.error}",
                                     reason="BAD_REQUEST")
                if dataset is None:
                    if not req.dataset:
                        raise InputError("the first PushRequest must name the dataset", reason="BAD_REQUEST")
                    record_type = await self.run(self.core.check_push, peer, req.dataset, via="grpc.push",
                                                 request_id=rid)
                    dataset = req.dataset
                    set_log_fields(dataset=dataset)
                    # a node that is pushed to gets its helper: started in the background (used once up)
                    pool = await self.run(self.core.prepare_pool, push_records)
                elif req.dataset and req.dataset != dataset:
                    raise InputError(f"a Push stream carries one dataset ({dataset!r}); batch #{n} names "
                                     f"{req.dataset!r}", reason="BAD_REQUEST")
                count = _count(req)
                if count > MAX_PUSH_RECORDS:
                    raise InputError(f"PushRequest #{n} has {count} records; at most "
                                     f"{MAX_PUSH_RECORDS} per message", reason="BAD_REQUEST")
                size = len(req.data) if isinstance(req, EncodedPushRequest) else req.ByteSize()
                await budget.take(size)  # waits while the batches read ahead hold PREPARE_BYTES
                preparing = asyncio.ensure_future(self._prepared(pool, dataset, record_type, req))
                sizes.append(size)
                try:
                    await queue.put(preparing)
                except asyncio.CancelledError:
                    preparing.cancel()
                    raise
                n += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the answering side, which raises it in order
            await queue.put(exc)
            return
        await queue.put(None)

    async def _prepared(self, pool: PreparePool | None, dataset: str, record_type: str,
                        req: AnyPushRequest) -> PreparedBatch:
        """Batch ``req`` prepared in the helper process when it is up and the batch is large, else in a thread."""
        if pool is not None and _count(req) >= POOL_MIN_RECORDS and pool.available():
            try:
                future = pool.submit(dataset, record_type, _encoded(req), push_records)
                return unpack_prepared(await asyncio.wrap_future(future))
            except (BrokenExecutor, RuntimeError) as exc:  # the helper died or was shut down: on without it
                pool.fail(exc)
            except Exception:
                log.warning("the prepare helper failed on a batch; preparing it here", exc_info=True)
        prepared: PreparedBatch = await self.run(self._prepare, dataset, record_type, req)
        return prepared

    def _prepare(self, dataset: str, record_type: str, req: AnyPushRequest) -> PreparedBatch:
        return self.core.prepare(dataset, push_pairs(req), record_type=record_type)

    def _commit_group(self, peer: str, group: Sequence[PreparedBatch], index: int, rid: str,
                      loop: asyncio.AbstractEventLoop
                      ) -> tuple[list[tuple[records_pb2.PushResponse | bytes, int, int]], Exception | None]:
        """Store batches ``index``, ``index + 1`` ... in one transaction (durable on return) and build
        their answers (in the executor): ([(the answer, accepted, rejected) ...], None), or, when a
        batch after the first fails, the answers of those before it (stored) and its error. The
        first one failing raises, nothing stored."""
        results: list[tuple[records_pb2.PushResponse | bytes, int, int]] = []
        failed: Exception | None = None
        with self.core.store.transaction():
            for k, prepared in enumerate(group):
                try:  # each batch in a savepoint of its own (store_batch's nested transaction)
                    results.append(self._commit(peer, prepared, index + k, rid))
                except Exception as exc:  # noqa: BLE001 - answered after the batches before it
                    if not results:
                        raise
                    failed = exc
                    break
        if any(accepted for _r, accepted, _j in results):
            loop.call_soon_threadsafe(self.notify)  # after the commit: followers find the new records
        return results, failed

    def _commit(self, peer: str, prepared: PreparedBatch, index: int, rid: str
                ) -> tuple[records_pb2.PushResponse | bytes, int, int]:
        """Store a batch and build its answer (in the executor, in :meth:`_commit_group`'s
        transaction): (the answer, accepted, rejected)."""
        stored = self.core.store_batch(peer, prepared, via="grpc.push", request_id=rid)
        if not stored.rejected and not prepared.warnings:  # the common case: one plain result per record
            return push_response_bytes(index, stored.ids, stored.versions, stored.changed), stored.accepted, 0
        status = records_pb2.RecordResult
        response = records_pb2.PushResponse(batch=index, accepted=stored.accepted, rejected=stored.rejected)
        add = response.results.add
        codes = {"stored": status.STORED, "unchanged": status.UNCHANGED, "rejected": status.REJECTED}
        for o in stored.outcomes():
            if o.violations or o.error:
                item = add(id=o.id, status=codes[o.status], version=o.version, error=o.error or "")
                for v in o.violations:
                    item.violations.add(path=v.path, constraint=v.constraint, severity=v.severity,
                                        message_zh=v.message_zh, message_en=v.message_en)
            else:
                add(id=o.id, status=codes[o.status], version=o.version)
        return response, stored.accepted, stored.rejected
