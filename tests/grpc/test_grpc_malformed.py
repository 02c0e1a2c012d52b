"""Bad requests get INVALID_ARGUMENT / NOT_FOUND with a reason, and the node keeps answering.
Health checking and reflection are on."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc_testkit as kit
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from node._generated.shulian.v1 import common_pb2, records_pb2
from node.transport.grpc import channel_credentials

pytestmark = pytest.mark.integration

INVALID_UTF8_STRING = b"\x0a\x02\xff\xfe"  # field 1 (a string) holding bytes that are not UTF-8
TRUNCATED = b"\x0a\x10abc"  # a length that runs past the end
BAD_TAG = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"

UNARY_STREAM = ["/shulian.v1.Records/Query", "/shulian.v1.Records/Subscribe"]
UNARY = ["/shulian.v1.Catalog/GetCatalog", "/shulian.v1.Catalog/DescribeDataset", "/shulian.v1.Access/RequestAccess",
         "/shulian.v1.Access/GetAccessRequest", "/shulian.v1.Node/GetStatus"]


def _ident(b: bytes) -> bytes:
    return b


def _meta(err: grpc.aio.AioRpcError) -> dict[str, Any]:
    return dict(err.trailing_metadata() or ())


def _channel(fed: kit.Federation, address: str) -> grpc.aio.Channel:
    ca, cert, key = fed.nodes["consumer"].tls
    return grpc.aio.secure_channel(address, channel_credentials(ca, cert, key))


def test_unparseable_messages_are_invalid_argument_and_the_node_keeps_serving(fed: kit.Federation) -> None:
    async def main() -> list[tuple[str, grpc.StatusCode, str]]:
        out: list[tuple[str, grpc.StatusCode, str]] = []
        async with kit.InProcessNode(fed.provider.config()) as node, _channel(fed, node.address) as ch:
            for raw in (INVALID_UTF8_STRING, TRUNCATED, BAD_TAG):
                # GetStatusRequest has no field 1 and GetCatalogRequest's is an enum: for them the
                # not-UTF-8 string is an unknown field, which protobuf keeps and ignores
                unary = UNARY if raw != INVALID_UTF8_STRING else UNARY[1:4]
                for method in unary:
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await ch.unary_unary(method, _ident, _ident)(raw, timeout=10)
                    out.append((method, info.value.code(), _meta(info.value).get("shulian-reason", "")))
                for method in UNARY_STREAM:
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        async for _ in ch.unary_stream(method, _ident, _ident)(raw, timeout=10):
                            pass
                    out.append((method, info.value.code(), _meta(info.value).get("shulian-reason", "")))

                async def requests(raw: bytes = raw) -> Any:
                    yield raw

                with pytest.raises(grpc.aio.AioRpcError) as info:
                    async for _ in ch.stream_stream("/shulian.v1.Records/Push", _ident, _ident)(requests(),
                                                                                             timeout=10):
                        pass
                out.append(("Push", info.value.code(), _meta(info.value).get("shulian-reason", "")))
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                status = await client.status()
                assert status["state"] == "ok"
                records, _ = await client.query_all("enterprises", limit=2)
                assert len(records) == 2
        return out

    results = asyncio.run(main())
    assert len(results) == 8 + 8 + 6
    for method, code, reason in results:
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_REQUEST"), method


@pytest.mark.parametrize(("request_", "code", "reason"), [
    (records_pb2.QueryRequest(dataset="nope"), grpc.StatusCode.NOT_FOUND, "UNKNOWN_DATASET"),
    (records_pb2.QueryRequest(), grpc.StatusCode.INVALID_ARGUMENT, "BAD_REQUEST"),
    (records_pb2.QueryRequest(dataset="enterprises", ids=["not an id"]), grpc.StatusCode.INVALID_ARGUMENT,
     "BAD_REQUEST"),
    (records_pb2.QueryRequest(dataset="enterprises", batch_size=1_000_000), grpc.StatusCode.INVALID_ARGUMENT,
     "BAD_REQUEST"),
    (records_pb2.QueryRequest(dataset="enterprises", purpose="长" * 5000), grpc.StatusCode.INVALID_ARGUMENT,
     "BAD_REQUEST"),
])
def test_bad_query_fields(fed: kit.Federation, request_: Any, code: grpc.StatusCode, reason: str) -> None:
    async def main() -> grpc.aio.AioRpcError:
        async with kit.InProcessNode(fed.provider.config()) as node, _channel(fed, node.address) as ch:
            call = ch.unary_stream("/shulian.v1.Records/Query", records_pb2.QueryRequest.SerializeToString,
                                   records_pb2.QueryResponse.FromString)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in call(request_, timeout=10):
                    pass
            return info.value

    err = asyncio.run(main())
    assert err.code() == code
    meta = _meta(err)
    assert meta["shulian-reason"] == reason and meta["x-request-id"]
    detail = common_pb2.ErrorDetail.FromString(meta["shulian-error-bin"])
    assert detail.reason == reason and detail.domain == "shulian" and detail.message == err.details()


def test_health_and_reflection(fed: kit.Federation) -> None:
    async def main() -> tuple[list[int], list[str]]:
        async with kit.InProcessNode(fed.provider.config()) as node, _channel(fed, node.address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            statuses = [(await health.Check(health_pb2.HealthCheckRequest(service=s), timeout=10)).status
                        for s in ("", "shulian.v1.Records", "shulian.v1.Access")]
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)

            async def ask() -> Any:
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            names: list[str] = []
            async for answer in stub.ServerReflectionInfo(ask(), timeout=10):
                names = [s.name for s in answer.list_services_response.service]
        return statuses, names

    statuses, names = asyncio.run(main())
    assert statuses == [health_pb2.HealthCheckResponse.SERVING] * 3
    assert {"shulian.v1.Records", "shulian.v1.Catalog", "shulian.v1.Access", "shulian.v1.Node",
            "grpc.health.v1.Health"} <= set(names)
