"""A client for another node's gRPC services (mutual TLS with this node's certificate).

    async with NodeClient.from_config(cfg, "127.0.0.1:50051") as peer:
        status = await peer.status()
        async for batch in peer.query("population", purpose="养老金发放"):
            for rec in batch.records:
                rec.id, rec.data                      # the projected, masked record
        summary = await peer.push("population", [record_dict, ...])   # batches of 500
        async for change in peer.subscribe("population", purpose="...", after=cursor, follow=True):
            save(change.records); cursor = change.cursor
        req = await peer.request_access("population", purpose=..., scenario=..., items=[...])

Failed calls raise the matching :class:`~node.errors.ShulianError` (PolicyDenied,
NotFound, InputError, Unauthenticated, Unavailable ...) with ``reason``, ``code``,
``detail`` and ``request_id``. With a federation directory, every batch's signature is
checked against the provider's signing key (:class:`~node.errors.IntegrityError` if it
fails).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc

from node._generated.shulian.v1 import (
    access_pb2,
    catalog_pb2,
    common_pb2,
    node_pb2,
    records_pb2,
)
from node.config import NodeConfig
from node.errors import InputError
from node.federation import FederationDirectory
from node.service import new_request_id, verify_batch
from node.store import datetime_to_us
from node.transport.grpc._errors import REQUEST_ID_KEY, error_from_rpc

__all__ = [
    "NodeClient",
    "ReceivedRecord",
    "ReceivedBatch",
    "RecordResultView",
    "PushSummary",
    "channel_credentials",
    "CLIENT_OPTIONS",
]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CLIENT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)
_STATUS = {records_pb2.RecordResult.STORED: "stored", records_pb2.RecordResult.UNCHANGED: "unchanged",
           records_pb2.RecordResult.REJECTED: "rejected", records_pb2.RecordResult.STATUS_UNSPECIFIED: "unknown"}


def _read(value: bytes | str | Path) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise InputError(f"{value}: cannot read: {exc.strerror}") from exc


def channel_credentials(ca: bytes | str | Path, cert: bytes | str | Path, key: bytes | str | Path
                        ) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=_read(ca), private_key=_read(key),
                                        certificate_chain=_read(cert))


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    id: str
    version: int
    modified_us: int
    deleted: bool
    payload: bytes

    @property
    def data(self) -> dict[str, Any] | None:
        """The record as a dict (None for a tombstone)."""
        if self.deleted or not self.payload:
            return None
        value: dict[str, Any] = json.loads(self.payload)
        return value


@dataclass(frozen=True, slots=True)
class ReceivedBatch:
    dataset: str
    provider: str
    records: list[ReceivedRecord]
    delivery: dict[str, Any] | None = None  # on the first batch of a stream
    cursor: int = 0  # subscriptions
    caught_up: bool = False
    verified: bool = False  # the batch signature was checked


@dataclass(frozen=True, slots=True)
class RecordResultView:
    id: str
    status: str  # stored | unchanged | rejected
    version: int
    violations: tuple[dict[str, str], ...] = ()
    error: str = ""


@dataclass
class PushSummary:
    dataset: str
    accepted: int = 0
    rejected: int = 0
    batches: int = 0
    rejections: list[RecordResultView] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # ids of accepted records, if asked for


def _delivery(d: common_pb2.Delivery) -> dict[str, Any]:
    return {"reason": d.reason, "dataset": d.dataset, "provider": d.provider, "consumer": d.consumer,
            "purpose": d.purpose, "items": list(d.items), "withheld": list(d.withheld), "masking": dict(d.masking),
            "grants": list(d.grants), "basis": d.basis, "request_id": d.request_id}


def _result(r: records_pb2.RecordResult) -> RecordResultView:
    return RecordResultView(
        r.id, _STATUS.get(r.status, "unknown"), r.version,
        tuple({"path": v.path, "constraint": v.constraint, "severity": v.severity, "message_zh": v.message_zh,
               "message_en": v.message_en} for v in r.violations), r.error)


def _access(info: access_pb2.AccessRequestInfo) -> dict[str, Any]:
    return {"id": info.id, "dataset": info.dataset, "consumer": info.consumer, "purpose": info.purpose,
            "scenario": info.scenario, "items": list(info.items), "until": info.until or None, "status": info.status,
            "reason": info.reason, "filed_at": info.filed_at, "deadline": info.deadline,
            "decided_at": info.decided_at or None}


def _encode_record(record: Mapping[str, Any] | tuple[str, bytes]) -> common_pb2.Record:
    if isinstance(record, tuple):
        return common_pb2.Record(id=record[0], payload=record[1])
    rid = record.get("id")
    return common_pb2.Record(id=rid if isinstance(rid, str) else "",
                             payload=json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class NodeClient:
    """A connection to one node (an async context manager)."""

    def __init__(self, address: str, *, ca: bytes | str | Path, cert: bytes | str | Path, key: bytes | str | Path,
                 directory: FederationDirectory | None = None, timeout: float | None = 60.0,
                 options: Sequence[tuple[str, Any]] = ()) -> None:
        self.address = address
        self.directory = directory
        self.timeout = timeout
        self._channel = grpc.aio.secure_channel(address, channel_credentials(ca, cert, key),
                                                options=[*CLIENT_OPTIONS, *options])
        ch = self._channel
        r, c, a, n = records_pb2, catalog_pb2, access_pb2, node_pb2
        self._query = ch.unary_stream("/shulian.v1.Records/Query", r.QueryRequest.SerializeToString,
                                      r.QueryResponse.FromString)
        self._push = ch.stream_stream("/shulian.v1.Records/Push", r.PushRequest.SerializeToString,
                                      r.PushResponse.FromString)
        self._subscribe = ch.unary_stream("/shulian.v1.Records/Subscribe", r.SubscribeRequest.SerializeToString,
                                          r.SubscribeResponse.FromString)
        self._catalog = ch.unary_unary("/shulian.v1.Catalog/GetCatalog", c.GetCatalogRequest.SerializeToString,
                                       c.GetCatalogResponse.FromString)
        self._describe = ch.unary_unary("/shulian.v1.Catalog/DescribeDataset",
                                        c.DescribeDatasetRequest.SerializeToString,
                                        c.DescribeDatasetResponse.FromString)
        self._request_access = ch.unary_unary("/shulian.v1.Access/RequestAccess",
                                              a.RequestAccessRequest.SerializeToString, a.AccessRequestInfo.FromString)
        self._get_access = ch.unary_unary("/shulian.v1.Access/GetAccessRequest",
                                          a.GetAccessRequestRequest.SerializeToString, a.AccessRequestInfo.FromString)
        self._status = ch.unary_unary("/shulian.v1.Node/GetStatus", n.GetStatusRequest.SerializeToString,
                                      n.GetStatusResponse.FromString)

    @classmethod
    def from_config(cls, cfg: NodeConfig, address: str | None = None, *, peer: str | None = None,
                    directory: FederationDirectory | None = None, timeout: float | None = 60.0) -> NodeClient:
        """A client using this node's certificate; ``address`` or a configured peer's code."""
        if address is None:
            if peer is None:
                raise InputError("give the node's address or a configured peer's code")
            address = cfg.peer(peer).address
        return cls(address, ca=cfg.tls.ca, cert=cfg.tls.cert, key=cfg.tls.key, directory=directory, timeout=timeout)

    @property
    def channel(self) -> grpc.aio.Channel:
        return self._channel

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _metadata(self, request_id: str | None) -> tuple[tuple[str, str], ...]:
        return ((REQUEST_ID_KEY, request_id or new_request_id()),)

    # ---- node -------------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        try:
            r = await self._status(node_pb2.GetStatusRequest(), timeout=self.timeout, metadata=self._metadata(None))
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        return {"department": r.department, "name": r.name, "version": r.version, "state": r.state,
                "components": dict(r.components), "caller": r.caller, "latest_seq": r.latest_seq,
                "datasets": [{"id": d.id, "record_type": d.record_type, "records": d.records} for d in r.datasets]}

    async def health(self, service: str = "") -> str:
        """The health service's answer for ``service``: SERVING, NOT_SERVING, ..."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            r = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(r.status))

    # ---- catalog -----------------------------------------------------------------------------
    async def get_catalog(self, fmt: str = "turtle") -> str:
        formats = {"turtle": catalog_pb2.TURTLE, "json-ld": catalog_pb2.JSON_LD, "jsonld": catalog_pb2.JSON_LD}
        if fmt not in formats:
            raise InputError(f"unknown catalog format {fmt!r}; use turtle or json-ld")
        try:
            r = await self._catalog(catalog_pb2.GetCatalogRequest(format=formats[fmt]), timeout=self.timeout,
                                    metadata=self._metadata(None))
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        return bytes(r.content).decode("utf-8")

    async def describe_dataset(self, dataset: str) -> dict[str, Any]:
        try:
            r = await self._describe(catalog_pb2.DescribeDatasetRequest(dataset=dataset), timeout=self.timeout,
                                     metadata=self._metadata(None))
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        return {"dataset": r.dataset, "record_type": r.record_type, "metadata": json.loads(r.metadata_json or b"{}"),
                "json_schema": json.loads(r.json_schema or b"{}"), "shapes": r.shapes_turtle}

    # ---- records ------------------------------------------------------------------------------
    def _batch(self, pb: common_pb2.RecordBatch, verify: bool) -> tuple[list[ReceivedRecord], bool]:
        records = [ReceivedRecord(r.id, r.version, r.modified_us, r.deleted, r.payload) for r in pb.records]
        checked = False
        if verify and self.directory is not None:
            key = self.directory.member(pb.provider).signing_public_key()
            verify_batch(key, pb.dataset, [(r.id, r.version, r.deleted, r.payload) for r in records], pb.signature)
            checked = True
        return records, checked

    async def query(self, dataset: str, *, purpose: str | None = None, ids: Iterable[str] | None = None,
                    modified_since: dt.datetime | None = None, limit: int = 0, items: Iterable[str] | None = None,
                    batch_size: int = 0, verify: bool = True, request_id: str | None = None
                    ) -> AsyncIterator[ReceivedBatch]:
        """The dataset's records as the provider's policy lets this node see them, batch by batch."""
        req = records_pb2.QueryRequest(dataset=dataset, purpose=purpose or "", ids=list(ids or ()),
                                       modified_since_us=datetime_to_us(modified_since) if modified_since else 0,
                                       limit=limit, items=list(items or ()), batch_size=batch_size)
        call = self._query(req, timeout=None, metadata=self._metadata(request_id))
        try:
            async for msg in call:
                records, checked = self._batch(msg.batch, verify)
                yield ReceivedBatch(msg.batch.dataset, msg.batch.provider, records,
                                    _delivery(msg.delivery) if msg.HasField("delivery") else None, verified=checked)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        finally:
            call.cancel()

    async def query_all(self, dataset: str, **kwargs: Any) -> tuple[list[ReceivedRecord], dict[str, Any] | None]:
        """Every record of a query, and the delivery (how the provider decided)."""
        out: list[ReceivedRecord] = []
        delivery: dict[str, Any] | None = None
        async for batch in self.query(dataset, **kwargs):
            if batch.delivery is not None:
                delivery = batch.delivery
            out.extend(batch.records)
        return out, delivery

    async def subscribe(self, dataset: str, *, purpose: str | None = None, after: int = 0, follow: bool = False,
                        items: Iterable[str] | None = None, batch_size: int = 0, verify: bool = True,
                        request_id: str | None = None) -> AsyncIterator[ReceivedBatch]:
        """The dataset's change feed after cursor ``after``; persist each batch's ``cursor`` to resume."""
        req = records_pb2.SubscribeRequest(dataset=dataset, purpose=purpose or "", after=after, follow=follow,
                                           items=list(items or ()), batch_size=batch_size)
        call = self._subscribe(req, timeout=None, metadata=self._metadata(request_id))
        try:
            async for msg in call:
                records, checked = self._batch(msg.batch, verify)
                yield ReceivedBatch(msg.batch.dataset, msg.batch.provider, records,
                                    _delivery(msg.delivery) if msg.HasField("delivery") else None,
                                    cursor=msg.cursor, caught_up=msg.caught_up, verified=checked)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        finally:
            call.cancel()

    async def push_batches(self, dataset: str,
                           batches: AsyncIterable[Sequence[Mapping[str, Any] | tuple[str, bytes]]]
                           | Iterable[Sequence[Mapping[str, Any] | tuple[str, bytes]]],
                           *, request_id: str | None = None) -> AsyncIterator[records_pb2.PushResponse]:
        """Send batches; yields each batch's response once the provider stored it durably."""

        async def requests() -> AsyncIterator[records_pb2.PushRequest]:
            first = True
            if isinstance(batches, AsyncIterable):
                async for batch in batches:
                    yield records_pb2.PushRequest(dataset=dataset if first else "",
                                                  records=[_encode_record(r) for r in batch])
                    first = False
            else:
                for batch in batches:
                    yield records_pb2.PushRequest(dataset=dataset if first else "",
                                                  records=[_encode_record(r) for r in batch])
                    first = False

        call = self._push(requests(), timeout=None, metadata=self._metadata(request_id))
        try:
            async for response in call:
                yield response
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        finally:
            call.cancel()

    async def push(self, dataset: str, records: Iterable[Mapping[str, Any] | tuple[str, bytes]], *,
                   batch_size: int = 500, keep_ids: bool = False, request_id: str | None = None) -> PushSummary:
        """Push records in batches of ``batch_size``; returns counts and every rejection."""
        if batch_size < 1:
            raise InputError("batch_size must be at least 1")

        def chunks() -> Iterable[list[Mapping[str, Any] | tuple[str, bytes]]]:
            chunk: list[Mapping[str, Any] | tuple[str, bytes]] = []
            for r in records:
                chunk.append(r)
                if len(chunk) >= batch_size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

        summary = PushSummary(dataset)
        async for response in self.push_batches(dataset, chunks(), request_id=request_id):
            summary.batches += 1
            summary.accepted += response.accepted
            summary.rejected += response.rejected
            for r in response.results:
                if r.status == records_pb2.RecordResult.REJECTED:
                    summary.rejections.append(_result(r))
                elif keep_ids:
                    summary.acknowledged.append(r.id)
        return summary

    # ---- access -------------------------------------------------------------------------------
    async def request_access(self, dataset: str, *, purpose: str, scenario: str, items: Iterable[str],
                             until: dt.date | None = None) -> dict[str, Any]:
        req = access_pb2.RequestAccessRequest(dataset=dataset, purpose=purpose, scenario=scenario, items=list(items),
                                              until=until.isoformat() if until else "")
        try:
            r = await self._request_access(req, timeout=self.timeout, metadata=self._metadata(None))
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        return _access(r)

    async def get_access_request(self, request_id: str) -> dict[str, Any]:
        try:
            r = await self._get_access(access_pb2.GetAccessRequestRequest(id=request_id), timeout=self.timeout,
                                       metadata=self._metadata(None))
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, address=self.address) from exc
        return _access(r)
