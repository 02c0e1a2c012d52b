"""Query and access cases: an unconditional dataset is answered with conforming records (QRY-01);
a conditional one only within a grant: its consumer, purpose and expiry (ACC-01..03), projected and
masked exactly as granted (ACC-04); a not-shared one never, citing its basis (ACC-05)."""

from __future__ import annotations

import logging
from typing import Any

from conformance._node import NodeContext
from conformance._registry import case
from conformance.node_cases._support import (
    CallResult,
    delivery,
    ensure_ready,
    fixture_records,
    param_list,
    parse_masking,
    projection_problems,
    query,
    records_of,
    require_ok,
    require_refusal,
    subscribe,
    unary,
    verify_batches,
)

__all__ = [
    "unconditional_query",
    "refused_without_grant",
    "refused_for_other_purpose",
    "refused_after_expiry",
    "projected_and_masked",
    "not_shared_refused",
]

log = logging.getLogger(__name__)


def _record_type(ctx: NodeContext, dataset: str) -> str | None:
    from node._generated.shulian.v1 import catalog_pb2

    r = unary(ctx, "/shulian.v1.Catalog/DescribeDataset", catalog_pb2.DescribeDatasetRequest(dataset=dataset),
              catalog_pb2.DescribeDatasetResponse)
    return (r.messages[0].record_type or None) if r.ok else None


@case("QRY-01")
def unconditional_query(ctx: NodeContext) -> None:
    from node.validation import get_validator

    ensure_ready(ctx)
    dataset = ctx.param("unconditional_dataset")
    result = query(ctx, dataset)
    messages = require_ok(ctx, result)
    d = delivery(ctx, result)
    ctx.check(d.reason == "UNCONDITIONAL", f"the Delivery gives reason {d.reason!r}, expected UNCONDITIONAL")
    ctx.check(all(m.batch.dataset == dataset for m in messages), "a batch names another dataset")
    got = records_of(messages)
    ids = [rid for rid, _, _ in got]
    ctx.check(len(ids) == len(set(ids)), "the query delivered a record twice")
    ctx.check(got, f"the query of {dataset} delivered no record")
    validator = get_validator(ctx.engine, ctx.standard_dir)
    rtype = _record_type(ctx, dataset)
    for rid, data, _ in got:
        ctx.check(data is not None, f"record {rid}: a query delivered a tombstone")
        assert data is not None
        ctx.check(data.get("id") == rid, f"record {rid}: the payload's id is {data.get('id')!r}")
        report = validator.validate(data, rtype)
        if not report.valid:
            found = "; ".join(f"{v.path}: {v.constraint}" for v in report.violations if v.severity == "Violation")
            ctx.fail(f"record {rid} does not conform to the standard: {found or report.error}")
    if "unconditional_records" in ctx.target.params:
        expected = fixture_records(ctx, "unconditional_records")
        ctx.check(set(ids) == set(expected), f"the query delivered {sorted(set(ids) - set(expected))[:5]} "
                                             f"more and {sorted(set(expected) - set(ids))[:5]} fewer records "
                                             "than the dataset holds")
        for rid, data, _ in got:
            ctx.check(data == expected[rid], f"record {rid} differs from the record the dataset holds")
    signatures = verify_batches(ctx, messages)
    one = ids[0]
    picked = records_of(require_ok(ctx, query(ctx, dataset, ids=[one])))
    ctx.check([rid for rid, _, _ in picked] == [one],
              f"a query for id {one} delivered {[rid for rid, _, _ in picked]}")
    ctx.note(f"{len(got)} conforming record(s) of {dataset}; {signatures}")


def _refused_everywhere(ctx: NodeContext, dataset: str, role: str, purpose: str, reason: str) -> None:
    require_refusal(ctx, query(ctx, dataset, role=role, purpose=purpose), "PERMISSION_DENIED", reason)
    require_refusal(ctx, subscribe(ctx, dataset, role=role, purpose=purpose), "PERMISSION_DENIED", reason)


@case("ACC-01")
def refused_without_grant(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    _refused_everywhere(ctx, ctx.param("conditional_dataset"), "nogrant", ctx.param("purpose"), "NO_GRANT")
    ctx.note("Query and Subscribe refused: PERMISSION_DENIED NO_GRANT")


@case("ACC-02")
def refused_for_other_purpose(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    dataset = ctx.param("conditional_dataset")
    _refused_everywhere(ctx, dataset, "granted", ctx.param("other_purpose"), "PURPOSE_NOT_COVERED")
    require_refusal(ctx, query(ctx, dataset, purpose=""), "PERMISSION_DENIED", None)
    ctx.note("Query and Subscribe for an uncovered purpose, and a query without a purpose, refused")


@case("ACC-03")
def refused_after_expiry(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    _refused_everywhere(ctx, ctx.param("conditional_dataset"), "expired", ctx.param("expired_purpose"),
                        "GRANT_EXPIRED")
    ctx.note("Query and Subscribe refused: PERMISSION_DENIED GRANT_EXPIRED")


def _check_read(ctx: NodeContext, result: CallResult, expected: dict[str, dict[str, Any]], items: list[str],
                masking: dict[str, Any], *, all_records: bool) -> tuple[int, str]:
    messages = require_ok(ctx, result)
    d = delivery(ctx, result)
    ctx.check(d.reason == "GRANTED", f"{result.what}: the Delivery gives reason {d.reason!r}, expected GRANTED")
    ctx.check(sorted(d.items) == sorted(items), f"{result.what}: the Delivery names items {sorted(d.items)}, "
                                                f"the grant gives {sorted(items)}")
    claimed = parse_masking(dict(d.masking))
    wanted = {k: v for k, v in masking.items() if k in items}
    ctx.check(claimed == wanted, f"{result.what}: the Delivery names masking "
                                 f"{ {k: str(v) for k, v in claimed.items()} }, the grant gives "
                                 f"{ {k: str(v) for k, v in wanted.items()} }")
    got = records_of(messages)
    problems: list[str] = []
    for rid, data, _ in got:
        if data is None:
            continue
        original = expected.get(rid)
        if original is None:
            problems.append(f"record {rid} is not one the conditional dataset holds")
            continue
        problems += projection_problems(rid, data, original, items, wanted)
    if problems:
        ctx.fail(f"{result.what}: {len(problems)} problem(s): " + "; ".join(problems[:4]))
    if all_records:
        delivered = {rid for rid, data, _ in got if data is not None}
        ctx.check(delivered == set(expected), f"{result.what} delivered {len(delivered)} of the "
                                              f"{len(expected)} records the dataset holds")
    return len(got), verify_batches(ctx, messages)


@case("ACC-04")
def projected_and_masked(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    dataset, purpose = ctx.param("conditional_dataset"), ctx.param("purpose")
    items = param_list(ctx, "granted_items")
    masking = parse_masking(ctx.target.params.get("masking", ""))
    expected = fixture_records(ctx, "conditional_records")
    n, signatures = _check_read(ctx, query(ctx, dataset, purpose=purpose), expected, items, masking,
                                all_records=True)
    _check_read(ctx, subscribe(ctx, dataset, purpose=purpose), expected, items, masking, all_records=True)
    one = sorted(masking)[0] if masking else items[0]
    _check_read(ctx, query(ctx, dataset, purpose=purpose, items=[one]), expected, [one], masking, all_records=True)
    ungranted = ctx.target.params.get("ungranted_item")
    if ungranted:
        require_refusal(ctx, query(ctx, dataset, purpose=purpose, items=[ungranted]), "PERMISSION_DENIED",
                        "ITEM_NOT_GRANTED")
    ctx.note(f"{n} record(s) projected to {', '.join(items)} and masked as granted (Query and Subscribe); "
             f"a request for {one} alone gets only it" + (f"; {ungranted} is refused" if ungranted else "")
             + f"; {signatures}")


@case("ACC-05")
def not_shared_refused(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    dataset = ctx.param("not_shared_dataset")
    for result in (query(ctx, dataset), subscribe(ctx, dataset)):
        require_refusal(ctx, result, "PERMISSION_DENIED", "NOT_SHARED")
        basis = str(result.detail.get("metadata", {}).get("basis", "")).strip()
        ctx.check(basis, f"{result.what}: the refusal gives no basis (shulian-error-bin metadata[\"basis\"]): "
                         f"{result.describe()}")
        want = ctx.target.params.get("not_shared_basis")
        if want:
            ctx.check(" ".join(want.split()) in " ".join(basis.split()),
                      f"{result.what}: the refusal cites {basis!r}, not the dataset's basis {want!r}")
    ctx.note("Query and Subscribe refused: PERMISSION_DENIED NOT_SHARED, citing the basis")
