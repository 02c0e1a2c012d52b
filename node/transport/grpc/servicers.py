"""The gRPC services of a node (package ``shulian.v1``), over :mod:`node.service`.

Every call:

1. gets a request id (the client's ``x-request-id`` metadata, else a new one) that
   is put in every log line and returned in the trailing metadata;
2. is refused with INVALID_ARGUMENT (reason ``BAD_REQUEST``) when its bytes do not
   parse as the request message: the handlers are registered with a deserializer
   that never raises, so a malformed message never produces a traceback;
3. identifies the caller from its client certificate with :func:`node.pki.check_peer`
   (UNAUTHENTICATED with the reason: UNKNOWN_CA, CERT_EXPIRED, NOT_A_MEMBER ...);
4. runs the work in the node's executor (the store is synchronous), and maps every
   :class:`~node.errors.ShulianError` to its status code and reason; anything else is
   logged with its traceback and answered INTERNAL without details.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import importlib.metadata
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc

from node._generated.shulian.v1 import access_pb2, catalog_pb2, common_pb2, node_pb2, records_pb2
from node.catalog import build_catalog, describe_dataset, serialize_catalog
from node.errors import InputError, ShulianError, Unauthenticated
from node.pki import cert_from_auth_context
from node.service import (
    NodeCore,
    OutBatch,
    ReadSession,
    file_request,
    get_request,
    log_context,
    new_request_id,
    set_log_fields,
)
from node.transport.grpc._errors import REQUEST_ID_KEY, BadMessage, abort_with
from node.transport.grpc._helpers import (
    ChangeNotifier,
    Prefetcher,
    ResponseFramer,
    access_info,
    batch_message,
    check_batch_size,
    check_ids,
    check_text,
    empty_batch,
    safe_parser,
    serialize_query_response,
)
from node.transport.grpc._push import PushStream, parse_push_request, serialize_push_response

__all__ = ["NodeServicers", "ChangeNotifier", "SERVICE_NAMES", "HEARTBEAT_SECONDS", "POLL_SECONDS"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SERVICE_NAMES = (
    "shulian.v1.Records",
    "shulian.v1.Catalog",
    "shulian.v1.Access",
    "shulian.v1.Node",
)
#: a following subscription polls the store this often for changes made by other processes
POLL_SECONDS = 1.0
#: and sends an empty message with the current cursor this often when nothing changes
HEARTBEAT_SECONDS = 15.0
#: a query produces (reads, encodes, signs) up to this many batches ahead of the one being sent
_AHEAD = 3
_CATALOG_TTL = 30.0


class NodeServicers:
    """The handlers of every service; :meth:`register` adds them to a ``grpc.aio.Server``."""

    def __init__(self, core: NodeCore, executor: Executor, *, notifier: ChangeNotifier | None = None,
                 shutdown: asyncio.Event | None = None,
                 status: Callable[[], Awaitable[dict[str, str]]] | None = None) -> None:
        self.core = core
        self.executor = executor
        self.notifier = notifier or ChangeNotifier()
        self.shutdown = shutdown or asyncio.Event()
        self._status = status
        self._catalog_cache: dict[int, tuple[float, bytes]] = {}
        self.active_streams = 0

    # ---- plumbing ----------------------------------------------------------------------------
    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work in the executor, keeping the log context."""
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(ctx.run, fn, *args, **kwargs))

    def _identify(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        pem = cert_from_auth_context(context.auth_context())
        return self.core.identify(pem)

    @staticmethod
    def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable():
                return value
        return new_request_id()

    async def _fail(self, context: grpc.aio.ServicerContext[Any, Any], exc: BaseException, rid: str,
                    method: str, started: float) -> None:
        if isinstance(exc, ShulianError):
            level = logging.WARNING if isinstance(exc, Unauthenticated) else logging.INFO
            log.log(level, "%s refused: %s", method, exc.message,
                    extra={"status": exc.grpc_status, "reason": exc.reason,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
            meta = {"basis": exc.message.split("(basis: ", 1)[1].rstrip(")")} if "(basis: " in exc.message else None
            await abort_with(context, exc, rid, meta)
        log.error("%s failed", method, exc_info=exc)
        await abort_with(context, ShulianError("internal error; the node logged it under this request id",
                                               reason="INTERNAL"), rid)

    def _unary(self, method: str, fn: Callable[[Any, str, str, Any], Awaitable[Any]]) -> Callable[..., Any]:
        async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            rid = self._request_id(context)
            started = time.perf_counter()
            with log_context(request_id=rid, method=method):
                try:
                    if isinstance(request, BadMessage):
                        raise InputError(f"malformed {method} request ({request.size} bytes): {request.error}",
                                         reason="BAD_REQUEST")
                    peer = self._identify(context)
                    set_log_fields(peer=peer)
                    response = await fn(request, peer, rid, context)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await self._fail(context, exc, rid, method, started)
                context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
                log.info("%s done", method, extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)})
                return response

        return handler

    def _stream(self, method: str, fn: Callable[[Any, str, str, Any], AsyncIterator[Any]],
                ) -> Callable[..., Any]:
        async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            rid = self._request_id(context)
            started = time.perf_counter()
            self.active_streams += 1
            with log_context(request_id=rid, method=method):
                try:
                    if isinstance(request, BadMessage):
                        raise InputError(f"malformed {method} request ({request.size} bytes): {request.error}",
                                         reason="BAD_REQUEST")
                    peer = self._identify(context)
                    set_log_fields(peer=peer)
                    context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
                    async for message in fn(request, peer, rid, context):
                        yield message
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await self._fail(context, exc, rid, method, started)
                finally:
                    self.active_streams -= 1
                log.info("%s done", method, extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)})

        return handler

    def _finish(self, session: ReadSession, outcome: str, inflight: asyncio.Future[Any] | None) -> None:
        """Close the session once no work of it runs in a thread any more."""
        if inflight is None or inflight.done():
            self._close_later(session, outcome)
            return

        def after(task: asyncio.Future[Any]) -> None:
            if not task.cancelled():
                task.exception()  # retrieved: the stream has already ended
            self._close_later(session, outcome)

        inflight.add_done_callback(after)

    def _flush_later(self, session: ReadSession) -> None:
        """A periodic delivery evidence entry, written in the executor (the stream goes on)."""
        try:
            self.executor.submit(contextvars.copy_context().run, session.flush)
        except RuntimeError:
            session.flush()

    def _close_later(self, session: ReadSession, outcome: str) -> None:
        """Write the stream's delivery evidence without blocking (or inline when the executor is gone)."""
        ctx = contextvars.copy_context()
        try:
            self.executor.submit(ctx.run, session.close, outcome)
        except RuntimeError:
            ctx.run(session.close, outcome)

    # ---- registration --------------------------------------------------------------------------
    def handlers(self) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
        r, c, a, n = records_pb2, catalog_pb2, access_pb2, node_pb2
        return {
            "shulian.v1.Records": {
                "Query": grpc.unary_stream_rpc_method_handler(
                    self._stream("Query", self._query), safe_parser(r.QueryRequest.FromString),
                    serialize_query_response),
                "Push": grpc.stream_stream_rpc_method_handler(
                    self._stream("Push", self._push), safe_parser(parse_push_request),
                    serialize_push_response),
                "Subscribe": grpc.unary_stream_rpc_method_handler(
                    self._stream("Subscribe", self._subscribe), safe_parser(r.SubscribeRequest.FromString),
                    r.SubscribeResponse.SerializeToString),
            },
            "shulian.v1.Catalog": {
                "GetCatalog": grpc.unary_unary_rpc_method_handler(
                    self._unary("GetCatalog", self._get_catalog), safe_parser(c.GetCatalogRequest.FromString),
                    c.GetCatalogResponse.SerializeToString),
                "DescribeDataset": grpc.unary_unary_rpc_method_handler(
                    self._unary("DescribeDataset", self._describe), safe_parser(c.DescribeDatasetRequest.FromString),
                    c.DescribeDatasetResponse.SerializeToString),
            },
            "shulian.v1.Access": {
                "RequestAccess": grpc.unary_unary_rpc_method_handler(
                    self._unary("RequestAccess", self._request_access), safe_parser(a.RequestAccessRequest.FromString),
                    a.AccessRequestInfo.SerializeToString),
                "GetAccessRequest": grpc.unary_unary_rpc_method_handler(
                    self._unary("GetAccessRequest", self._get_access), safe_parser(a.GetAccessRequestRequest.FromString),
                    a.AccessRequestInfo.SerializeToString),
            },
            "shulian.v1.Node": {
                "GetStatus": grpc.unary_unary_rpc_method_handler(
                    self._unary("GetStatus", self._get_status), safe_parser(n.GetStatusRequest.FromString),
                    n.GetStatusResponse.SerializeToString),
            },
        }

    def register(self, server: grpc.aio.Server) -> None:
        for service, methods in self.handlers().items():
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))

    # ---- Records.Query -----------------------------------------------------------------------------
    def _delivery(self, session: ReadSession, rid: str) -> common_pb2.Delivery:
        d = session.decision
        return common_pb2.Delivery(
            reason=d.reason_code.value, dataset=d.dataset_id, provider=self.core.department, consumer=d.consumer_code,
            purpose=d.purpose or "", items=sorted(d.items) if d.items is not None else [],
            withheld=sorted(d.withheld), masking={k: r.spec for k, r in d.maskers.items()},
            grants=list(d.grant_ids), basis=d.basis or "", request_id=rid)

    async def _query(self, req: records_pb2.QueryRequest, peer: str, rid: str, context: Any
                     ) -> AsyncIterator[records_pb2.QueryResponse | bytes]:
        """Batches are produced (read, projected, encoded, signed) in the executor, up to
        :data:`_AHEAD` ahead of the one being sent; each is yielded as its encoded QueryResponse."""
        if not req.dataset:
            raise InputError("QueryRequest.dataset is required", reason="BAD_REQUEST")
        ids = list(req.ids)
        check_ids(ids)
        check_text("purpose", req.purpose)
        check_batch_size(req.batch_size)
        set_log_fields(dataset=req.dataset)
        session = await self.run(ReadSession, self.core, peer, req.dataset, req.purpose or None,
                                 list(req.items) or None, via="grpc.query", request_id=rid, auto_record=False)
        batches = session.query(ids=ids or None, modified_since_us=req.modified_since_us, limit=req.limit,
                                batch_size=req.batch_size)
        provider = self.core.department

        frame = ResponseFramer(session.dataset, provider, self.core.key_id)
        delivery: list[common_pb2.Delivery | None] = [self._delivery(session, rid)]  # with the first message only

        def next_message() -> tuple[OutBatch, bytes] | None:
            batch = next(batches, None)
            if batch is None:
                return None
            message = frame(batch, delivery[0])
            delivery[0] = None
            return batch, message

        outcome = "failed"
        sent = 0
        # batches are produced up to _AHEAD ahead of the one being sent
        prefetch = Prefetcher(self.executor, next_message, _AHEAD)
        handed: OutBatch | None = None  # the batch of the message grpc is sending
        try:
            first = True
            while (produced := await prefetch.get()) is not None:
                batch, message = produced
                first = False
                handed = batch
                yield message
                handed = None
                sent += batch.count
                if session.delivered(batch):
                    self._flush_later(session)
            if first:  # no records: one message still tells the consumer how it was decided
                empty = await self.run(empty_batch, session, provider)
                yield records_pb2.QueryResponse(batch=empty, delivery=self._delivery(session, rid))
            outcome = "complete"
        except (asyncio.CancelledError, GeneratorExit):  # GeneratorExit: the call ended while a message was out
            outcome = "cancelled"
            if handed is not None:  # that message was handed to the transport: it counts as delivered
                sent += handed.count
                session.delivered(handed)
            raise
        finally:
            prefetch.stop()
            self._finish(session, outcome, prefetch.finished)
            log.info("query delivered %d record(s)", sent, extra={"records": sent, "outcome": outcome})

    # ---- Records.Push --------------------------------------------------------------------------------
    def _push(self, requests: AsyncIterator[Any], peer: str, rid: str, context: Any
              ) -> AsyncIterator[records_pb2.PushResponse | bytes]:
        """The answers to a Push stream (see :class:`node.transport.grpc._push.PushStream`)."""
        return PushStream(self.core, self.run, self.notifier.notify).responses(requests, peer, rid)

    # ---- Records.Subscribe ----------------------------------------------------------------------------
    async def _subscribe(self, req: records_pb2.SubscribeRequest, peer: str, rid: str, context: Any
                         ) -> AsyncIterator[records_pb2.SubscribeResponse]:
        if not req.dataset:
            raise InputError("SubscribeRequest.dataset is required", reason="BAD_REQUEST")
        check_text("purpose", req.purpose)
        check_batch_size(req.batch_size)
        set_log_fields(dataset=req.dataset)
        session = await self.run(ReadSession, self.core, peer, req.dataset, req.purpose or None,
                                 list(req.items) or None, via="grpc.subscribe", request_id=rid, auto_record=False)
        provider = self.core.department
        cursor = req.after
        first = True
        sent = 0
        outcome = "failed"
        last_sent = time.monotonic()
        was_caught_up = False

        def poll(after: int, again: bool) -> tuple[OutBatch, common_pb2.RecordBatch]:
            if again:
                session.redecide()
            batch = session.changes(after, batch_size=req.batch_size)
            return batch, batch_message(batch, provider)

        inflight: asyncio.Future[tuple[OutBatch, common_pb2.RecordBatch]] | None = None
        try:
            while not self.shutdown.is_set():
                inflight = asyncio.ensure_future(self.run(poll, cursor, not first))
                batch, pb = await inflight
                cursor = batch.cursor
                now = time.monotonic()
                if first or pb.records or (batch.caught_up and not was_caught_up) \
                        or now - last_sent >= HEARTBEAT_SECONDS:
                    message = records_pb2.SubscribeResponse(batch=pb, cursor=cursor, caught_up=batch.caught_up)
                    if first:
                        message.delivery.CopyFrom(self._delivery(session, rid))
                    first = False
                    last_sent = now
                    yield message
                    sent += len(pb.records)
                if (pb.records or batch.skipped_invalid) and session.delivered(batch):
                    self._flush_later(session)
                was_caught_up = batch.caught_up
                if batch.caught_up:
                    if not req.follow:
                        break
                    await self.notifier.wait(min(POLL_SECONDS, HEARTBEAT_SECONDS))
            outcome = "complete" if not self.shutdown.is_set() else "shutdown"
        except (asyncio.CancelledError, GeneratorExit):  # GeneratorExit: the call ended while a message was out
            outcome = "cancelled"
            raise
        finally:
            self._finish(session, outcome, inflight)
            log.info("subscription delivered %d record(s) up to cursor %d", sent, cursor,
                     extra={"records": sent, "cursor": cursor, "outcome": outcome})

    # ---- Catalog -------------------------------------------------------------------------------------
    def _catalog_bytes(self, fmt: int) -> bytes:
        cached = self._catalog_cache.get(fmt)
        if cached is not None and time.monotonic() - cached[0] < _CATALOG_TTL:
            return cached[1]
        graph = build_catalog(self.core.cfg, self.core.store)
        data = serialize_catalog(graph, "json-ld" if fmt == catalog_pb2.JSON_LD else "turtle").encode("utf-8")
        self._catalog_cache[fmt] = (time.monotonic(), data)
        return data

    async def _get_catalog(self, req: catalog_pb2.GetCatalogRequest, peer: str, rid: str, context: Any
                           ) -> catalog_pb2.GetCatalogResponse:
        fmt = req.format or catalog_pb2.TURTLE
        if fmt not in (catalog_pb2.TURTLE, catalog_pb2.JSON_LD):
            raise InputError(f"unknown catalog format {req.format}; use TURTLE or JSON_LD", reason="BAD_REQUEST")
        content = await self.run(self._catalog_bytes, fmt)
        content_type = "application/ld+json" if fmt == catalog_pb2.JSON_LD else "text/turtle"
        return catalog_pb2.GetCatalogResponse(content_type=content_type, content=content)

    def _describe_sync(self, dataset: str) -> catalog_pb2.DescribeDatasetResponse:
        info: dict[str, Any] = dict(describe_dataset(self.core.cfg, self.core.store, dataset))
        schema = info.pop("json_schema")
        shapes = info.pop("shapes_turtle")
        return catalog_pb2.DescribeDatasetResponse(
            dataset=str(info["id"]), record_type=str(info["record_type"]),
            metadata_json=json.dumps(info, ensure_ascii=False, default=str, indent=2).encode("utf-8"),
            json_schema=json.dumps(schema, ensure_ascii=False, indent=2).encode("utf-8"), shapes_turtle=shapes)

    async def _describe(self, req: catalog_pb2.DescribeDatasetRequest, peer: str, rid: str, context: Any
                        ) -> catalog_pb2.DescribeDatasetResponse:
        if not req.dataset:
            raise InputError("DescribeDatasetRequest.dataset is required", reason="BAD_REQUEST")
        set_log_fields(dataset=req.dataset)
        return await self.run(self._describe_sync, req.dataset)

    # ---- Access --------------------------------------------------------------------------------------
    async def _request_access(self, req: access_pb2.RequestAccessRequest, peer: str, rid: str, context: Any
                              ) -> access_pb2.AccessRequestInfo:
        if not req.dataset:
            raise InputError("RequestAccessRequest.dataset is required", reason="BAD_REQUEST")
        for name in ("purpose", "scenario"):
            check_text(name, getattr(req, name), 2000)
        until: dt.date | None = None
        if req.until:
            try:
                until = dt.date.fromisoformat(req.until)
            except ValueError as exc:
                raise InputError(f"until {req.until!r} is not a date (YYYY-MM-DD)", reason="BAD_REQUEST") from exc
        set_log_fields(dataset=req.dataset)
        stored = await self.run(file_request, self.core, peer, dataset=req.dataset, purpose=req.purpose,
                                scenario=req.scenario, items=list(req.items), until=until, via="grpc",
                                request_id=rid)
        log.info("access request %s filed", stored.id, extra={"access_request": stored.id})
        return access_info(stored)

    async def _get_access(self, req: access_pb2.GetAccessRequestRequest, peer: str, rid: str, context: Any
                          ) -> access_pb2.AccessRequestInfo:
        check_text("id", req.id, 200)
        return access_info(await self.run(get_request, self.core, peer, req.id))

    # ---- Node ----------------------------------------------------------------------------------------
    def _datasets(self) -> list[node_pb2.DatasetStatus]:
        store = self.core.store
        return [node_pb2.DatasetStatus(id=d.id, record_type=d.record_type or "", records=store.count_records(d.id))
                for d in store.list_datasets()]

    async def _get_status(self, req: node_pb2.GetStatusRequest, peer: str, rid: str, context: Any
                          ) -> node_pb2.GetStatusResponse:
        components = await self._status() if self._status else {"grpc": "ok", "store": "ok"}
        datasets = await self.run(self._datasets)
        latest = await self.run(self.core.store.latest_seq)
        state = "ok" if all(v in ("ok", "off") for v in components.values()) else "degraded"
        try:
            version = importlib.metadata.version("shulian")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return node_pb2.GetStatusResponse(
            department=self.core.department, name=self.core.cfg.department.name, version=version, state=state,
            components=components, caller=peer, datasets=datasets, latest_seq=latest)


