"""Transport security: a client certificate from a CA the federation does not know, or none at all, is
refused (TLS-01); a plaintext connection is refused (TLS-02). Each check first proves the kit's own
certificate works, so a refusal means something, and afterwards that the node still answers."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import grpc

from conformance._node import NodeContext
from conformance._registry import case
from conformance.node_cases._support import (
    CHANNEL_OPTIONS,
    CallResult,
    channel_options,
    ensure_ready,
    identity,
    require_ok,
    unary,
)
from node.errors import InputError, ShulianError

__all__ = ["unknown_ca_refused", "plaintext_refused", "throwaway_certificate"]

log = logging.getLogger(__name__)

#: statuses that mean "refused" (the handshake failed, or the node refused the caller)
REFUSED = ("UNAVAILABLE", "UNAUTHENTICATED", "PERMISSION_DENIED")
_FALLBACK_CODE = "11110000KC0000001A"


def throwaway_certificate(code: str) -> tuple[bytes, bytes]:
    """A client certificate naming ``code`` from a fresh CA nobody trusts: (cert PEM, key PEM)."""
    from node.pki import create_ca, issue_node_certificate

    with tempfile.TemporaryDirectory(prefix="shulian-kit-ca-") as tmp:
        ca = create_ca(Path(tmp) / "ca", name="数链符合性测试套件临时CA (untrusted)", days=1)
        issued = issue_node_certificate(ca, code=code, name="数链符合性测试套件", days=1)
    return issued.cert_pem, issued.key_pem


def _status(ctx: NodeContext, ch: grpc.Channel) -> CallResult:
    from node._generated.shulian.v1 import node_pb2

    try:
        return unary(ctx, "/shulian.v1.Node/GetStatus", node_pb2.GetStatusRequest(), node_pb2.GetStatusResponse,
                     ch=ch)
    finally:
        ch.close()


def _refused(ctx: NodeContext, label: str, result: CallResult) -> str:
    if result.ok:
        caller = getattr(result.messages[0], "caller", "")
        ctx.fail(f"{label}: the node accepted the connection and answered GetStatus"
                 f"{f' (as caller {caller})' if caller else ''}")
    ctx.check(result.code in REFUSED, f"{label}: expected the connection to be refused; {result.describe()}")
    return f"{label}: refused ({result.code}{' ' + result.reason if result.reason else ''})"


def _still_answers(ctx: NodeContext) -> None:
    from node._generated.shulian.v1 import node_pb2

    require_ok(ctx, unary(ctx, "/shulian.v1.Node/GetStatus", node_pb2.GetStatusRequest(),
                          node_pb2.GetStatusResponse))


@case("TLS-01")
def unknown_ca_refused(ctx: NodeContext) -> None:
    from node.pki import peer_department_from_cert

    ensure_ready(ctx)
    me = identity(ctx, "granted")
    try:
        code = peer_department_from_cert(me.cert)
    except ShulianError:
        code = _FALLBACK_CODE
    cert, key = throwaway_certificate(code)
    foreign = grpc.ssl_channel_credentials(root_certificates=me.ca, private_key=key, certificate_chain=cert)
    address, options = ctx.target.address, channel_options(ctx)
    seen = [_refused(ctx, f"a certificate for {code} from an unknown CA",
                     _status(ctx, grpc.secure_channel(address, foreign, options=options)))]
    anonymous = grpc.ssl_channel_credentials(root_certificates=me.ca)
    seen.append(_refused(ctx, "TLS without a client certificate",
                         _status(ctx, grpc.secure_channel(address, anonymous, options=options))))
    _still_answers(ctx)
    ctx.note("; ".join(seen))


@case("TLS-02")
def plaintext_refused(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    try:
        ch = grpc.insecure_channel(ctx.target.address, options=list(CHANNEL_OPTIONS))
    except ValueError as exc:  # pragma: no cover - a bad address was caught by the probe
        raise InputError(f"--target {ctx.target.address}: {exc}") from exc
    seen = _refused(ctx, "a plaintext connection", _status(ctx, ch))
    _still_answers(ctx)
    ctx.note(seen)
