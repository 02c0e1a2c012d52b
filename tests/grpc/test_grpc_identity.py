"""Mutual TLS: only federation members with a valid certificate from the federation CA get in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import grpc_testkit as kit
import pytest

from node._generated.shulian.v1 import node_pb2
from node.errors import ShulianError, Unauthenticated, Unavailable
from node.pki import create_ca, issue_node_certificate
from node.transport.grpc import NodeClient

pytestmark = pytest.mark.integration


def _client(address: str, ca: bytes, cert: bytes, key: bytes) -> NodeClient:
    return NodeClient(address, ca=ca, cert=cert, key=key, timeout=10)


async def _status(client: NodeClient) -> Any:
    async with client:
        return await client.status()


def _attempt(fed: kit.Federation, make: Any) -> Any:
    async def main() -> Any:
        async with kit.InProcessNode(fed.provider.config()) as node:
            try:
                return await _status(make(node.address))
            except ShulianError as exc:
                return exc

    return asyncio.run(main())


def test_member_is_identified_by_its_certificate(fed: kit.Federation) -> None:
    ca, cert, key = fed.nodes["consumer"].tls
    status = _attempt(fed, lambda address: _client(address, ca, cert, key))
    assert status["caller"] == kit.CONSUMER and status["department"] == kit.PROVIDER


def test_certificate_of_a_non_member_is_refused(fed: kit.Federation) -> None:
    outsider = fed.issue(kit.OUTSIDER, "联盟外单位")
    ca = fed.nodes["consumer"].tls[0]
    err = _attempt(fed, lambda address: _client(address, ca, outsider.cert_pem, outsider.key_pem))
    assert isinstance(err, Unauthenticated) and err.reason == "NOT_A_MEMBER"
    assert kit.OUTSIDER in err.message


def test_certificate_from_an_unknown_ca_is_refused(fed: kit.Federation, tmp_path: Path) -> None:
    rogue_ca = create_ca(tmp_path / "rogue")
    rogue = issue_node_certificate(rogue_ca, code=kit.CONSUMER, name="冒名")  # a member's code, wrong CA
    ca = fed.nodes["consumer"].tls[0]
    err = _attempt(fed, lambda address: _client(address, ca, rogue.cert_pem, rogue.key_pem))
    assert isinstance(err, Unavailable | Unauthenticated), err  # the TLS handshake fails


def test_expired_certificate_is_refused(fed: kit.Federation) -> None:
    expired = fed.issue(kit.CONSUMER, "过期证书", days=-1)
    ca = fed.nodes["consumer"].tls[0]
    err = _attempt(fed, lambda address: _client(address, ca, expired.cert_pem, expired.key_pem))
    assert isinstance(err, Unavailable | Unauthenticated), err
    if isinstance(err, Unauthenticated):
        assert err.reason == "CERT_EXPIRED"


def test_plaintext_is_refused(fed: kit.Federation) -> None:
    async def main() -> grpc.StatusCode:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with grpc.aio.insecure_channel(node.address) as channel:
                call = channel.unary_unary("/shulian.v1.Node/GetStatus",
                                           node_pb2.GetStatusRequest.SerializeToString,
                                           node_pb2.GetStatusResponse.FromString)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(node_pb2.GetStatusRequest(), timeout=5)
                return info.value.code()

    assert asyncio.run(main()) == grpc.StatusCode.UNAVAILABLE


def test_server_certificate_is_checked_by_the_client(fed: kit.Federation, tmp_path: Path) -> None:
    """A client trusting only another CA does not talk to the node."""
    other = create_ca(tmp_path / "other")
    _, cert, key = fed.nodes["consumer"].tls
    err = _attempt(fed, lambda address: _client(address, other.cert_pem, cert, key))
    assert isinstance(err, Unavailable)
