"""The certificates work for gRPC mutual TLS, and check_peer runs on the auth context.

A real gRPC server on 127.0.0.1:0 with a generic (proto-less) method; the same
node certificate serves as server and client certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from node.errors import Unauthenticated
from node.pki import (
    CertificateAuthority,
    IssuedCertificate,
    cert_from_auth_context,
    check_peer,
    create_ca,
    issue_node_certificate,
)

pytestmark = pytest.mark.integration

CODE_A = "91110000600037341L"
CODE_B = "91110108551385082Q"
CODE_C = "91350200MA2YJ1XR9G"


class Federation:
    def __init__(self, tmp: Path) -> None:
        self.ca: CertificateAuthority = create_ca(tmp / "ca")
        self.members = {CODE_A, CODE_B}
        self.server_cert: IssuedCertificate = issue_node_certificate(self.ca, code=CODE_A, name="A")


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[Federation, int]]:
    fed = Federation(tmp_path)

    def whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            code = check_peer(cert_from_auth_context(context.auth_context()), fed.ca.cert, fed.members)
        except Unauthenticated as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{exc.reason}: {exc}")
        return code.encode()

    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    srv.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "shulian.test.Who", {"Am": grpc.unary_unary_rpc_method_handler(whoami)}),))
    creds = grpc.ssl_server_credentials([(fed.server_cert.key_pem, fed.server_cert.cert_pem)],
                                        root_certificates=fed.ca.cert_pem, require_client_auth=True)
    port = srv.add_secure_port("127.0.0.1:0", creds)
    srv.start()
    try:
        yield fed, port
    finally:
        srv.stop(None)


def call(port: int, ca_pem: bytes, client: IssuedCertificate, host: str = "127.0.0.1") -> bytes:
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem, private_key=client.key_pem,
                                         certificate_chain=client.cert_pem)
    with grpc.secure_channel(f"{host}:{port}", creds) as channel:
        stub = channel.unary_unary("/shulian.test.Who/Am")
        result: bytes = stub(b"", timeout=10)
        return result


def test_member_is_identified_by_its_certificate(server: tuple[Federation, int]) -> None:
    fed, port = server
    client = issue_node_certificate(fed.ca, code=CODE_B, name="B")
    assert call(port, fed.ca.cert_pem, client) == CODE_B.encode()
    assert call(port, fed.ca.cert_pem, client, host="localhost") == CODE_B.encode()


def test_same_certificate_as_client_and_server(server: tuple[Federation, int]) -> None:
    fed, port = server
    assert call(port, fed.ca.cert_pem, fed.server_cert) == CODE_A.encode()


def test_non_member_is_refused(server: tuple[Federation, int]) -> None:
    fed, port = server
    outsider = issue_node_certificate(fed.ca, code=CODE_C, name="C")
    with pytest.raises(grpc.RpcError) as exc:
        call(port, fed.ca.cert_pem, outsider)
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "NOT_A_MEMBER" in (exc.value.details() or "")


def test_unknown_ca_fails_the_handshake(server: tuple[Federation, int], tmp_path: Path) -> None:
    fed, port = server
    rogue = create_ca(tmp_path / "rogue")
    forged = issue_node_certificate(rogue, code=CODE_B, name="B")
    with pytest.raises(grpc.RpcError) as exc:
        call(port, fed.ca.cert_pem, forged)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_expired_client_fails_the_handshake(server: tuple[Federation, int]) -> None:
    fed, port = server
    expired = issue_node_certificate(fed.ca, code=CODE_B, name="B", days=-1)
    with pytest.raises(grpc.RpcError) as exc:
        call(port, fed.ca.cert_pem, expired)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
