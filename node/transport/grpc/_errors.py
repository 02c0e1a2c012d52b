"""Errors on the wire: ShulianError <-> gRPC status + machine-readable reason.

Server side, an error becomes the status code its class names (``grpc_status``),
its message as the status details, and in the trailing metadata:

- ``shulian-reason``: the reason as ASCII text (e.g. ``NOT_SHARED``);
- ``shulian-error-bin``: a serialized ``shulian.v1.ErrorDetail`` (reason, domain,
  English and Chinese messages, metadata such as the policy basis);
- ``x-request-id``: the request id (also in the logs).

``grpcio-status`` (google.rpc.Status in ``grpc-status-details-bin``) is not installed
in this project's environment, hence the project's own detail message.

Client side, :func:`error_from_rpc` turns a failed call back into the matching
ShulianError subclass with ``reason``, ``code`` (status name), ``detail`` and
``request_id`` attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import grpc

from node.errors import (
    AlreadyExists,
    InputError,
    IntegrityError,
    NotFound,
    PolicyDenied,
    ShulianError,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "REASON_KEY",
    "DETAIL_KEY",
    "REQUEST_ID_KEY",
    "BadMessage",
    "status_code_of",
    "error_metadata",
    "abort_with",
    "error_from_rpc",
    "RemoteError",
]

log = logging.getLogger(__name__)

REASON_KEY = "shulian-reason"
DETAIL_KEY = "shulian-error-bin"
REQUEST_ID_KEY = "x-request-id"
DOMAIN = "shulian"


class BadMessage:
    """What the server's safe deserializer returns for bytes that are not the expected message."""

    __slots__ = ("error", "size")

    def __init__(self, error: str, size: int) -> None:
        self.error = error
        self.size = size


class RemoteError(ShulianError):
    """An error reported by a remote node whose status has no closer ShulianError class."""

    def __init__(self, message: str, *, reason: str | None = None, grpc_status: str = "UNKNOWN") -> None:
        super().__init__(message, reason=reason)
        self.grpc_status = grpc_status


def status_code_of(exc: ShulianError) -> grpc.StatusCode:
    code = getattr(grpc.StatusCode, str(exc.grpc_status), None)
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.INTERNAL


def _ascii(value: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in value)


def error_metadata(exc: ShulianError, request_id: str | None,
                   metadata: Mapping[str, str] | None = None) -> tuple[tuple[str, str | bytes], ...]:
    from node._generated.shulian.v1 import common_pb2

    extra = {k: str(v) for k, v in (metadata or {}).items() if v is not None}
    for attr in ("file", "key"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            extra.setdefault(attr, value)
    detail = common_pb2.ErrorDetail(reason=exc.reason, domain=DOMAIN, message=exc.message,
                                    message_zh=str(getattr(exc, "message_zh", "") or ""), metadata=extra)
    out: list[tuple[str, str | bytes]] = [(REASON_KEY, _ascii(exc.reason)), (DETAIL_KEY, detail.SerializeToString())]
    if request_id:
        out.append((REQUEST_ID_KEY, _ascii(request_id)))
    return tuple(out)


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: ShulianError, request_id: str | None,
                     metadata: Mapping[str, str] | None = None) -> NoReturn:
    """End the call with the status, details and trailing metadata for ``exc``."""
    await context.abort(status_code_of(exc), exc.message, error_metadata(exc, request_id, metadata))
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


_BY_CODE: dict[grpc.StatusCode, type[ShulianError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InputError,
    grpc.StatusCode.PERMISSION_DENIED: PolicyDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.DATA_LOSS: IntegrityError,
}


def _metadata_dict(md: Sequence[tuple[str, str | bytes]] | None) -> dict[str, str | bytes]:
    return {k: v for k, v in (md or ())}


def error_from_rpc(err: grpc.RpcError, *, address: str = "") -> ShulianError:
    """The ShulianError for a failed call (use as ``raise error_from_rpc(e) from e``)."""
    from google.protobuf.message import DecodeError

    from node._generated.shulian.v1 import common_pb2

    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or code.name
    md = _metadata_dict(err.trailing_metadata() if hasattr(err, "trailing_metadata") else None)
    reason = md.get(REASON_KEY)
    detail: dict[str, Any] = {}
    raw = md.get(DETAIL_KEY)
    if isinstance(raw, bytes):
        try:
            parsed = common_pb2.ErrorDetail.FromString(raw)
            detail = {"reason": parsed.reason, "domain": parsed.domain, "message": parsed.message,
                      "message_zh": parsed.message_zh, "metadata": dict(parsed.metadata)}
            reason = reason or parsed.reason
        except DecodeError:
            log.debug("unparseable %s from %s", DETAIL_KEY, address)
    if not isinstance(reason, str) or not reason:
        reason = code.name
    where = f"{address}: " if address and code in (grpc.StatusCode.UNAVAILABLE,
                                                   grpc.StatusCode.DEADLINE_EXCEEDED) else ""
    cls = _BY_CODE.get(code)
    exc: ShulianError
    if cls is None:
        exc = RemoteError(f"{where}{details}", reason=reason, grpc_status=code.name)
    else:
        exc = cls(f"{where}{details}", reason=reason)
    exc.code = code.name  # type: ignore[attr-defined]
    exc.detail = detail  # type: ignore[attr-defined]
    rid = md.get(REQUEST_ID_KEY)
    exc.request_id = rid if isinstance(rid, str) else None  # type: ignore[attr-defined]
    return exc
