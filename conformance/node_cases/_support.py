"""What the node checks share: the kit's identities, synchronous gRPC calls, and independent references.

The kit speaks only the public wire contract (``schemas/proto/shulian/v1``, messages from the
generated code) over its own channels; it never uses the node's client or service code, so a
bug there cannot hide a bug in the node. The references the checks compare against (masking
rules, the batch signature digest) are implemented here from the standard's text.

Identities (roles): ``granted`` (consumer A: ``--cert``/``--tls-key``, or the ``cert``/``key``
parameters), ``expired`` (consumer B) and ``nogrant`` (consumer C), all trusting the federation
CA (``--ca`` or the ``ca`` parameter).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from conformance._node import NodeContext
from node.errors import InputError, Unavailable

__all__ = [
    "CHANNEL_OPTIONS",
    "channel_options",
    "Identity",
    "CallResult",
    "identity",
    "param_path",
    "param_list",
    "channel",
    "ensure_ready",
    "unary",
    "server_stream",
    "bidi_stream",
    "push",
    "query",
    "subscribe",
    "delivery",
    "require_ok",
    "require_refusal",
    "records_of",
    "fixture_records",
    "MaskSpec",
    "parse_masking",
    "expected_projection",
    "projection_problems",
    "batch_digest",
    "verify_batches",
    "valid_person",
    "encode",
    "run_tag",
]

log = logging.getLogger(__name__)

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.use_local_subchannel_pool", 1),  # each identity gets its own connection
    ("grpc.enable_retries", 0),
)
_CREDENTIALS_HINT = ("--ca, --cert and --tls-key (or --params FILE from `shulian-conform fixture load`)")


# ------------------------------------------------------------------ parameters and identities


def param_path(ctx: NodeContext, name: str) -> Path:
    """A path parameter; relative paths are relative to the parameter file's folder."""
    p = Path(ctx.param(name))
    base = ctx.target.params.get("params_dir")
    return p if p.is_absolute() or not base else Path(base) / p


def param_list(ctx: NodeContext, name: str) -> list[str]:
    return [v.strip() for v in ctx.param(name).split(",") if v.strip()]


@dataclass(frozen=True)
class Identity:
    role: str
    ca: bytes
    cert: bytes
    key: bytes

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it: {exc.strerror or exc}") from exc


def _ca(ctx: NodeContext) -> bytes:
    if ctx.target.ca_cert is not None:
        return _read(ctx.target.ca_cert, "--ca")
    if "ca" not in ctx.target.params:
        ctx.cant_tell(f"{ctx.case.id} needs the federation CA certificate: {_CREDENTIALS_HINT}")
    return _read(param_path(ctx, "ca"), "the ca parameter")


def identity(ctx: NodeContext, role: str = "granted") -> Identity:
    """The kit's identity ``role`` (granted | expired | nogrant)."""
    if role == "granted":
        t = ctx.target
        if t.client_cert is not None or t.client_key is not None:
            if t.client_cert is None or t.client_key is None:
                ctx.cant_tell(f"{ctx.case.id}: give both --cert and --tls-key")
            return Identity(role, _ca(ctx), _read(t.client_cert, "--cert"), _read(t.client_key, "--tls-key"))
        if "cert" not in t.params or "key" not in t.params:
            ctx.cant_tell(f"{ctx.case.id} needs the kit's client certificate: {_CREDENTIALS_HINT}")
        return Identity(role, _ca(ctx), _read(param_path(ctx, "cert"), "the cert parameter"),
                        _read(param_path(ctx, "key"), "the key parameter"))
    return Identity(role, _ca(ctx), _read(param_path(ctx, f"{role}_cert"), f"the {role}_cert parameter"),
                    _read(param_path(ctx, f"{role}_key"), f"the {role}_key parameter"))


def channel_options(ctx: NodeContext) -> list[tuple[str, Any]]:
    options = list(CHANNEL_OPTIONS)
    name = ctx.target.params.get("tls_server_name")
    if name:
        options.append(("grpc.ssl_target_name_override", name))
    return options


def channel(ctx: NodeContext, role: str = "granted", credentials: grpc.ChannelCredentials | None = None,
            key: str | None = None) -> grpc.Channel:
    """A channel to the node as ``role`` (created once per run, closed at the end)."""

    def make() -> grpc.Channel:
        creds = credentials if credentials is not None else identity(ctx, role).credentials()
        ch = grpc.secure_channel(ctx.target.address, creds, options=channel_options(ctx))
        ctx.session.stack.callback(ch.close)
        return ch

    return ctx.shared(key or f"channel:{role}", make)


# ------------------------------------------------------------------ calls


@dataclass
class CallResult:
    """The messages a call returned, and how it ended (``code`` "OK" or a status name)."""

    what: str
    messages: list[Any] = field(default_factory=list)
    code: str = "OK"
    details: str = ""
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def describe(self) -> str:
        if self.ok:
            return f"{self.what}: OK ({len(self.messages)} message(s))"
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.what}: {self.code}{reason}: {self.details}"


def _metadata(ctx: NodeContext) -> tuple[tuple[str, str], ...]:
    return (("x-request-id", f"conformance-{ctx.case.id}-{uuid.uuid4().hex[:12]}"),)


def _failed(result: CallResult, err: grpc.RpcError) -> CallResult:
    from node._generated.shulian.v1 import common_pb2

    code = err.code() if hasattr(err, "code") else None
    result.code = getattr(code, "name", "UNKNOWN")
    result.details = (err.details() if hasattr(err, "details") else "") or ""
    md = dict(err.trailing_metadata() or ()) if hasattr(err, "trailing_metadata") else {}
    reason = md.get("shulian-reason")
    result.reason = reason if isinstance(reason, str) else ""
    raw = md.get("shulian-error-bin")
    if isinstance(raw, bytes):
        try:
            d = common_pb2.ErrorDetail.FromString(raw)
        except Exception:  # a node's malformed detail is reported by the check that needs it
            result.detail = {"unparseable": True}
        else:
            result.detail = {"reason": d.reason, "message": d.message, "message_zh": d.message_zh,
                             "metadata": dict(d.metadata)}
            result.reason = result.reason or d.reason
    return result


def unary(ctx: NodeContext, method: str, request: Any, response_type: Any, *, role: str = "granted",
          ch: grpc.Channel | None = None) -> CallResult:
    """Call a unary method (``/shulian.v1.Node/GetStatus``); ``request`` may be raw bytes."""
    serializer = None if isinstance(request, bytes) else type(request).SerializeToString
    stub = (ch or channel(ctx, role)).unary_unary(method, request_serializer=serializer,
                                                  response_deserializer=response_type.FromString)
    result = CallResult(method.rsplit("/", 1)[-1])
    try:
        result.messages.append(stub(request, timeout=ctx.target.timeout, metadata=_metadata(ctx)))
    except grpc.RpcError as err:
        return _failed(result, err)
    return result


def server_stream(ctx: NodeContext, method: str, request: Any, response_type: Any, *, role: str = "granted",
                  ch: grpc.Channel | None = None) -> CallResult:
    """Call a server-streaming method and collect every message (and how the stream ended)."""
    serializer = None if isinstance(request, bytes) else type(request).SerializeToString
    stub = (ch or channel(ctx, role)).unary_stream(method, request_serializer=serializer,
                                                   response_deserializer=response_type.FromString)
    result = CallResult(method.rsplit("/", 1)[-1])
    try:
        for message in stub(request, timeout=ctx.target.timeout, metadata=_metadata(ctx)):
            result.messages.append(message)
    except grpc.RpcError as err:
        return _failed(result, err)
    return result


def bidi_stream(ctx: NodeContext, method: str, requests: Sequence[Any], response_type: Any, *,
                role: str = "granted") -> CallResult:
    """Call a bidirectional method with these requests (messages or raw bytes); collects the answers."""

    def serialize(message: Any) -> bytes:
        return message if isinstance(message, bytes) else bytes(message.SerializeToString())

    stub = channel(ctx, role).stream_stream(method, request_serializer=serialize,
                                            response_deserializer=response_type.FromString)
    result = CallResult(method.rsplit("/", 1)[-1])
    try:
        for message in stub(iter(list(requests)), timeout=ctx.target.timeout, metadata=_metadata(ctx)):
            result.messages.append(message)
    except grpc.RpcError as err:
        return _failed(result, err)
    return result


def push(ctx: NodeContext, requests: Sequence[Any], *, role: str = "granted") -> CallResult:
    """Records/Push with these requests (PushRequest messages or raw bytes); one answer per request."""
    from node._generated.shulian.v1 import records_pb2

    return bidi_stream(ctx, "/shulian.v1.Records/Push", requests, records_pb2.PushResponse, role=role)


def query(ctx: NodeContext, dataset: str, *, role: str = "granted", purpose: str = "",
          items: Sequence[str] = (), ids: Sequence[str] = ()) -> CallResult:
    from node._generated.shulian.v1 import records_pb2

    req = records_pb2.QueryRequest(dataset=dataset, purpose=purpose, items=list(items), ids=list(ids))
    return server_stream(ctx, "/shulian.v1.Records/Query", req, records_pb2.QueryResponse, role=role)


def subscribe(ctx: NodeContext, dataset: str, *, role: str = "granted", purpose: str = "", after: int = 0,
              items: Sequence[str] = (), batch_size: int = 0) -> CallResult:
    from node._generated.shulian.v1 import records_pb2

    req = records_pb2.SubscribeRequest(dataset=dataset, purpose=purpose, after=after, items=list(items),
                                       batch_size=batch_size, follow=False)
    return server_stream(ctx, "/shulian.v1.Records/Subscribe", req, records_pb2.SubscribeResponse, role=role)


def delivery(ctx: NodeContext, result: CallResult) -> Any:
    """The Delivery of a read's first message (required by the wire contract)."""
    ctx.check(result.messages, f"{result.what} answered no message at all (even an empty read sends one)")
    first = result.messages[0]
    ctx.check(first.HasField("delivery"), f"the first {result.what} message carries no Delivery")
    return first.delivery


def require_ok(ctx: NodeContext, result: CallResult) -> list[Any]:
    """The messages of a call that must succeed: UNAVAILABLE -> the node is down; a deadline -> can't tell;
    any other error -> the case fails."""
    if result.ok:
        return result.messages
    if result.code == "UNAVAILABLE":
        raise Unavailable(f"the node is unavailable: {result.describe()}")
    if result.code == "DEADLINE_EXCEEDED":
        ctx.cant_tell(f"no answer within {ctx.target.timeout:g} s: {result.describe()}")
    ctx.fail(f"expected an answer; {result.describe()}")


def require_refusal(ctx: NodeContext, result: CallResult, code: str, reason: str | None) -> None:
    """The call must be refused with status ``code`` (and ``reason`` in ``shulian-reason``), with no records."""
    if result.ok:
        got = sum(len(m.batch.records) for m in result.messages if hasattr(m, "batch"))
        ctx.fail(f"expected {code}{' ' + reason if reason else ''}; the node answered OK with {got} record(s)")
    if result.code == "UNAVAILABLE":
        raise Unavailable(f"the node is unavailable: {result.describe()}")
    if result.code == "DEADLINE_EXCEEDED":
        ctx.cant_tell(f"no answer within {ctx.target.timeout:g} s: {result.describe()}")
    leaked = sum(len(m.batch.records) for m in result.messages if hasattr(m, "batch"))
    ctx.check(leaked == 0, f"{result.what} sent {leaked} record(s) before refusing with {result.code}")
    ctx.check(result.code == code, f"expected {code}; {result.describe()}")
    if reason is not None:
        ctx.check(result.reason == reason, f"expected reason {reason} (shulian-reason); {result.describe()}")
    ctx.check(bool(result.details.strip()), f"the refusal ({result.code} {result.reason}) gives no message")


def ensure_ready(ctx: NodeContext) -> None:
    """The kit reaches the node with its own certificate (once per run; the verdict is remembered).

    Without that no check can decide anything, so a failure here is not a verdict on the node:
    UNAVAILABLE (down, or the TLS handshake failed) ends the run as unavailable, anything else is
    "can't tell" with what to fix.
    """
    from node._generated.shulian.v1 import node_pb2

    def probe() -> CallResult | str:
        try:
            ch = channel(ctx, "granted")
        except Exception as exc:  # missing credentials etc.: remembered, re-raised per case
            return f"{type(exc).__name__}:{exc}"
        return unary(ctx, "/shulian.v1.Node/GetStatus", node_pb2.GetStatusRequest(), node_pb2.GetStatusResponse,
                     ch=ch)

    verdict = ctx.shared("ready", probe)
    if isinstance(verdict, str):
        identity(ctx, "granted")  # raises the proper can't-tell / input error again
        ctx.cant_tell(verdict)
    if verdict.ok:
        return
    if verdict.code == "UNAVAILABLE":
        raise Unavailable(f"the kit cannot open a mutual-TLS connection to {ctx.target.address} with its "
                          f"certificate: {verdict.details} (is --ca the federation CA that issued the node's "
                          "certificate, and --target the node's gRPC address?)")
    ctx.cant_tell(f"the node does not answer the kit's GetStatus ({verdict.code} {verdict.reason}: "
                  f"{verdict.details}); load the fixture (`shulian-conform fixture load`) so that the kit's "
                  "consumers are federation members")


# ------------------------------------------------------------------ records


def records_of(messages: Iterable[Any]) -> list[tuple[str, dict[str, Any] | None, Any]]:
    """(id, payload as a dict or None for a tombstone, the Record message) of every batch."""
    out: list[tuple[str, dict[str, Any] | None, Any]] = []
    for m in messages:
        for r in m.batch.records:
            if r.deleted or not r.payload:
                out.append((r.id, None, r))
                continue
            try:
                data = json.loads(bytes(r.payload).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise AssertionError(f"record {r.id!r}: the payload is not UTF-8 JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise AssertionError(f"record {r.id!r}: the payload is not a JSON object")
            out.append((r.id, data, r))
    return out


def fixture_records(ctx: NodeContext, name: str) -> dict[str, dict[str, Any]]:
    """The records a records parameter names (JSON Lines), by id."""
    path = param_path(ctx, name)
    out: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"the {name} parameter: {path}: cannot read it: {exc.strerror or exc}") from exc
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from exc
            out[str(value["id"])] = value
    return out


# ------------------------------------------------------------------ masking (the standard's rules, independently)


@dataclass(frozen=True)
class MaskSpec:
    method: str  # redact | keep | hash
    first: int = 0
    last: int = 0

    def apply(self, value: Any) -> Any:
        if value is None:
            return None
        if self.method == "redact":
            return "***"
        if self.method == "hash":
            raise ValueError("a hash cannot be recomputed without the provider's key")
        s = value if isinstance(value, str) else str(value)
        if len(s) <= self.first + self.last:
            return "*" * len(s)
        return s[:self.first] + "*" * (len(s) - self.first - self.last) + s[len(s) - self.last:]

    def __str__(self) -> str:
        return self.method if self.method != "keep" else f"keep:{self.first}:{self.last}"


_KEEP = re.compile(r"^keep:(\d+):(\d+)$")
_KEEP_ONE = re.compile(r"^keep-(first|last):(\d+)$")


def _mask_spec(text: str) -> MaskSpec:
    t = text.strip().lower()
    if t in ("redact", "hash"):
        return MaskSpec(t)
    m = _KEEP.match(t)
    if m:
        return MaskSpec("keep", int(m[1]), int(m[2]))
    m = _KEEP_ONE.match(t)
    if m:
        n = int(m[2])
        return MaskSpec("keep", n, 0) if m[1] == "first" else MaskSpec("keep", 0, n)
    raise InputError(f"masking rule {text!r} not understood (redact, hash, keep:F:L, keep-first:N, keep-last:N)")


def parse_masking(text: str | Mapping[str, str]) -> dict[str, MaskSpec]:
    """``item=rule;item=rule`` (or a mapping) -> item -> rule."""
    pairs = text.items() if isinstance(text, Mapping) else (
        p.split("=", 1) for p in re.split(r"[;；]", text) if p.strip())
    out: dict[str, MaskSpec] = {}
    for pair in pairs:
        key, rule = pair
        out[key.strip()] = _mask_spec(rule)
    return out


def expected_projection(original: Mapping[str, Any], items: Iterable[str], masking: Mapping[str, MaskSpec]
                        ) -> dict[str, Any]:
    """What a consumer granted ``items`` masked by ``masking`` receives of ``original`` (hashes left as is)."""
    keep = {"id", "type", *items}
    out: dict[str, Any] = {}
    for k, v in original.items():
        if k in keep:
            rule = masking.get(k)
            out[k] = v if rule is None or rule.method == "hash" else rule.apply(v)
    return out


def projection_problems(rid: str, got: Mapping[str, Any], original: Mapping[str, Any], items: Iterable[str],
                        masking: Mapping[str, MaskSpec]) -> list[str]:
    """How a delivered record differs from what the grant allows (empty: exactly as granted)."""
    want = expected_projection(original, items, masking)
    problems = [f"record {rid}: item {k!r} was delivered but is not granted" for k in sorted(set(got) - set(want))]
    problems += [f"record {rid}: granted item {k!r} is missing" for k in sorted(set(want) - set(got))]
    for k in sorted(set(want) & set(got)):
        rule = masking.get(k)
        if rule is not None and rule.method == "hash":
            v = got[k]
            if not (isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) and v != original.get(k)):
                problems.append(f"record {rid}: item {k!r} must be hashed (64 hex digits), got {v!r}")
        elif got[k] != want[k]:
            how = f"masked {rule}" if rule is not None else "unmasked"
            problems.append(f"record {rid}: item {k!r} must be {how} ({want[k]!r}), got {got[k]!r}")
    return problems


# ------------------------------------------------------------------ batch signatures (common.proto)


def batch_digest(dataset: str, records: Iterable[Any]) -> bytes:
    """The RecordBatch digest exactly as ``common.proto`` defines it."""
    h = hashlib.sha256(b"shulian.v1.RecordBatch\x00" + dataset.encode("utf-8") + b"\x00")
    for r in records:
        payload = bytes(r.payload)
        h.update(r.id.encode("utf-8") + b"\x00" + str(r.version).encode() + b"\x00"
                 + (b"1" if r.deleted else b"0") + b"\x00" + str(len(payload)).encode() + b"\x00")
        h.update(payload)
    return h.digest()


def verify_batches(ctx: NodeContext, messages: Sequence[Any]) -> str:
    """Check every batch's signature with ``provider_signing_key``; says what was checked."""
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key_b64 = ctx.target.params.get("provider_signing_key")
    if not key_b64:
        return "batch signatures not checked (no provider_signing_key parameter)"
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"the provider_signing_key parameter is not a base64 Ed25519 public key ({exc})") from exc
    for i, m in enumerate(messages):
        try:
            key.verify(bytes(m.batch.signature), batch_digest(m.batch.dataset, m.batch.records))
        except InvalidSignature:
            ctx.fail(f"batch #{i} of {m.batch.dataset!r} ({len(m.batch.records)} record(s)) does not verify "
                     "against the provider's signing key")
    return f"{len(messages)} batch signature(s) verified"


# ------------------------------------------------------------------ records the kit pushes

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def run_tag(ctx: NodeContext) -> str:
    """A tag unique to this run (record ids the kit pushes carry it, so runs never collide)."""
    return ctx.shared("run-tag", lambda: uuid.uuid4().hex[:10])


def valid_person(rid: str, n: int) -> dict[str, Any]:
    """A Person record that conforms to the standard."""
    import datetime as dt

    day = dt.date(1960, 1, 1) + dt.timedelta(days=(n * 97) % 15000)
    body = f"110105{day:%Y%m%d}{n % 1000:03d}"
    number = body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]
    return {"id": rid, "type": "Person", "identityNumber": number, "name": "测试" + "甲乙丙丁戊己庚辛"[n % 8],
            "sex": "1" if int(number[16]) % 2 else "2", "ethnicity": "01", "birthDate": day.isoformat(),
            "householdDivision": "110000"}


def encode(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

