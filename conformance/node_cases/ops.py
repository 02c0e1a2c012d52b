"""Operability and robustness: health (OPS-01) and reflection (OPS-02) answer; malformed requests get
INVALID_ARGUMENT with a reason and the node still answers afterwards (INP-01)."""

from __future__ import annotations

import logging
from typing import Any

from conformance._node import NodeContext
from conformance._registry import case
from conformance.node_cases._support import (
    CallResult,
    bidi_stream,
    ensure_ready,
    push,
    require_ok,
    server_stream,
    unary,
)

__all__ = ["health_serving", "reflection_lists_services", "malformed_requests"]

log = logging.getLogger(__name__)

SHULIAN_SERVICES = ("shulian.v1.Records", "shulian.v1.Catalog", "shulian.v1.Access", "shulian.v1.Node")
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def _health(ctx: NodeContext, service: str) -> str:
    from grpc_health.v1 import health_pb2

    r = unary(ctx, f"/{HEALTH_SERVICE}/Check", health_pb2.HealthCheckRequest(service=service),
              health_pb2.HealthCheckResponse)
    if not r.ok and r.code == "NOT_FOUND":
        return "NOT_FOUND (not registered with the health service)"
    status: int = require_ok(ctx, r)[0].status
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


@case("OPS-01")
def health_serving(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    answers = {name or '""': _health(ctx, name) for name in ("", *SHULIAN_SERVICES)}
    bad = {k: v for k, v in answers.items() if v != "SERVING"}
    ctx.check(not bad, "the health service does not say SERVING for " + ", ".join(f"{k} ({v})" for k, v in bad.items()))
    ctx.note(f"SERVING: {', '.join(answers)}")


def _reflect(ctx: NodeContext, **request: Any) -> Any:
    from grpc_reflection.v1alpha import reflection_pb2

    messages = require_ok(ctx, bidi_stream(ctx, REFLECTION, [reflection_pb2.ServerReflectionRequest(**request)],
                                           reflection_pb2.ServerReflectionResponse))
    ctx.check(len(messages) == 1, f"one reflection request got {len(messages)} answers")
    answer = messages[0]
    ctx.check(not answer.HasField("error_response"),
              f"reflection answered an error: {answer.error_response.error_message}")
    return answer


@case("OPS-02")
def reflection_lists_services(ctx: NodeContext) -> None:
    from google.protobuf import descriptor_pb2

    ensure_ready(ctx)
    listed = {s.name for s in _reflect(ctx, list_services="").list_services_response.service}
    missing = [s for s in (*SHULIAN_SERVICES, HEALTH_SERVICE) if s not in listed]
    ctx.check(not missing, f"reflection does not list {', '.join(missing)} (it lists {sorted(listed)})")
    answer = _reflect(ctx, file_containing_symbol="shulian.v1.Records")
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in answer.file_descriptor_response.file_descriptor_proto]
    methods = {m.name for f in files if f.package == "shulian.v1" for s in f.service if s.name == "Records"
               for m in s.method}
    ctx.check({"Query", "Push", "Subscribe"} <= methods,
              f"reflection describes shulian.v1.Records with methods {sorted(methods)}, expected Query, Push, Subscribe")
    ctx.note(f"reflection lists {len(listed)} service(s) and describes shulian.v1.Records")


# truncated: field 1 says 5 bytes follow, 2 do
_TRUNCATED = b"\x0a\x05ab"
# a string field that is not UTF-8 (proto3 strings must be)
_NOT_UTF8 = b"\x0a\x02\xff\xfe"


def _invalid(ctx: NodeContext, label: str, result: CallResult) -> str:
    """The probe must end in INVALID_ARGUMENT with a message; returns a short account."""
    if result.code == "UNAVAILABLE":
        ctx.fail(f"{label}: the node dropped the connection ({result.details}); a malformed request must get "
                 "INVALID_ARGUMENT")
    ctx.check(result.code == "INVALID_ARGUMENT", f"{label}: expected INVALID_ARGUMENT; {result.describe()}")
    ctx.check(bool(result.details.strip()), f"{label}: INVALID_ARGUMENT without a reason")
    return f"{label}: INVALID_ARGUMENT{' ' + result.reason if result.reason else ''}"


@case("INP-01")
def malformed_requests(ctx: NodeContext) -> None:
    from node._generated.shulian.v1 import catalog_pb2, node_pb2, records_pb2

    ensure_ready(ctx)
    dataset = ctx.target.params.get("push_dataset") or ctx.target.params.get("unconditional_dataset") or "x"
    query, response = "/shulian.v1.Records/Query", records_pb2.QueryResponse
    seen = [
        _invalid(ctx, "Query, truncated message", server_stream(ctx, query, _TRUNCATED, response)),
        _invalid(ctx, "Query, string not UTF-8", server_stream(ctx, query, _NOT_UTF8, response)),
        _invalid(ctx, "Query, no dataset", server_stream(ctx, query, records_pb2.QueryRequest(), response)),
        _invalid(ctx, "Query, bad record id", server_stream(
            ctx, query, records_pb2.QueryRequest(dataset=dataset, ids=["../../etc/passwd"]), response)),
        _invalid(ctx, "Push, truncated message", push(ctx, [_TRUNCATED])),
        _invalid(ctx, "Push, first message without a dataset", push(ctx, [records_pb2.PushRequest()])),
        _invalid(ctx, "DescribeDataset, truncated message", unary(
            ctx, "/shulian.v1.Catalog/DescribeDataset", _TRUNCATED, catalog_pb2.DescribeDatasetResponse)),
    ]
    status = require_ok(ctx, unary(ctx, "/shulian.v1.Node/GetStatus", node_pb2.GetStatusRequest(),
                                   node_pb2.GetStatusResponse))[0]
    ctx.check(status.department, "after the malformed requests GetStatus answers without the node's department")
    ctx.note(f"{len(seen)} malformed requests refused with INVALID_ARGUMENT; the node still answers GetStatus")
    for line in seen:
        ctx.note(line)
