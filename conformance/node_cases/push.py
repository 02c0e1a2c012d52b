"""Push and subscribe cases: invalid records are rejected with their violations (PSH-01), valid ones
accepted (PSH-02), one bad record does not sink its batch (PSH-03); a subscription resumes from a
cursor (SUB-01). The kit pushes Person records into ``push_dataset`` as consumer A, with ids unique
to the run, and reads them back (the dataset is unconditional)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from conformance._node import NodeContext
from conformance._registry import case
from conformance.node_cases._support import (
    delivery,
    encode,
    ensure_ready,
    push,
    query,
    records_of,
    require_ok,
    run_tag,
    subscribe,
    valid_person,
)

__all__ = ["invalid_rejected", "valid_accepted", "batch_survives", "subscription_resumes"]

log = logging.getLogger(__name__)

_STATUS = {0: "STATUS_UNSPECIFIED", 1: "STORED", 2: "UNCHANGED", 3: "REJECTED"}
_ACCEPTED = {"STORED", "UNCHANGED"}


def _request(dataset: str, records: Sequence[Mapping[str, Any] | tuple[str, bytes]]) -> Any:
    from node._generated.shulian.v1 import common_pb2, records_pb2

    out = []
    for r in records:
        rid, payload = r if isinstance(r, tuple) else (str(r["id"]), encode(r))
        out.append(common_pb2.Record(id=rid, payload=payload))
    return records_pb2.PushRequest(dataset=dataset, records=out)


def _results(ctx: NodeContext, response: Any, ids: Sequence[str], index: int) -> dict[str, Any]:
    """The response's results by id; every record of the request must have exactly one."""
    by_id: dict[str, Any] = {}
    for r in response.results:
        ctx.check(r.id not in by_id, f"PushResponse #{index} answers record {r.id} twice")
        by_id[r.id] = r
    missing = [i for i in ids if i not in by_id]
    ctx.check(not missing, f"PushResponse #{index} has no result for record(s) {', '.join(missing)}")
    return by_id


def _stored(ctx: NodeContext, dataset: str, records: Sequence[Mapping[str, Any]]) -> None:
    """The pushed records can be read back, exactly as pushed."""
    ids = [str(r["id"]) for r in records]
    got = {rid: data for rid, data, _ in records_of(require_ok(ctx, query(ctx, dataset, ids=ids)))}
    for r in records:
        ctx.check(got.get(str(r["id"])) == dict(r), f"record {r['id']} was accepted but a query does not "
                                                    f"return it as pushed (got {got.get(str(r['id']))!r})")


def _bad_records(tag: str) -> list[tuple[dict[str, Any] | tuple[str, bytes], str, str | None]]:
    """Invalid Person records: (record, the path of the violation, its constraint); None: not JSON."""
    sex = valid_person(f"kit-{tag}-badsex", 11)
    sex["sex"] = "5"
    number = valid_person(f"kit-{tag}-badnumber", 12)
    last = number["identityNumber"][-1]
    number["identityNumber"] = number["identityNumber"][:-1] + ("0" if last != "0" else "1")
    noname = valid_person(f"kit-{tag}-noname", 13)
    del noname["name"]
    junk = (f"kit-{tag}-notjson", b'{"id": "kit-not-json", ')
    return [(sex, "sex", "In"), (number, "identityNumber", "GB11643Check"), (noname, "name", "MinCount"),
            (junk, "", None)]


@case("PSH-01")
def invalid_rejected(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    dataset, tag = ctx.param("push_dataset"), run_tag(ctx)
    bad = _bad_records(tag)
    ids = [r[0] if isinstance(r, tuple) else str(r["id"]) for r, _, _ in bad]
    responses = require_ok(ctx, push(ctx, [_request(dataset, [r for r, _, _ in bad])]))
    ctx.check(len(responses) == 1, f"one PushRequest got {len(responses)} PushResponse(s), expected one")
    response = responses[0]
    results = _results(ctx, response, ids, 0)
    for (_, path, constraint), rid in zip(bad, ids, strict=True):
        r = results[rid]
        status = _STATUS.get(r.status, str(r.status))
        ctx.check(status == "REJECTED", f"invalid record {rid} ({path or 'not JSON'}) was {status}, not REJECTED")
        if constraint is None:
            ctx.check(r.error.strip() or r.violations, f"record {rid} (not JSON) is rejected without a reason")
            continue
        found = {(v.path, v.constraint) for v in r.violations if v.severity == "Violation"}
        ctx.check((path, constraint) in found, f"record {rid} is rejected, but its violations "
                                               f"{sorted(found) or 'are missing'} do not name {path}: {constraint}")
        ctx.check(all(v.message_en.strip() or v.message_zh.strip() for v in r.violations),
                  f"record {rid}: a violation has no message")
    ctx.check(response.rejected == len(bad) and response.accepted == 0,
              f"the PushResponse counts {response.accepted} accepted and {response.rejected} rejected, "
              f"expected 0 and {len(bad)}")
    leaked = records_of(require_ok(ctx, query(ctx, dataset, ids=ids)))
    ctx.check(not leaked, f"rejected record(s) {[rid for rid, _, _ in leaked]} were stored anyway")
    ctx.note(f"{len(bad)} invalid record(s) rejected with their violations (In, GB11643Check, MinCount, not JSON)")


@case("PSH-02")
def valid_accepted(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    dataset, tag = ctx.param("push_dataset"), run_tag(ctx)
    records = [valid_person(f"kit-{tag}-ok-{n}", 20 + n) for n in range(3)]
    ids = [str(r["id"]) for r in records]
    responses = require_ok(ctx, push(ctx, [_request(dataset, records)]))
    ctx.check(len(responses) == 1, f"one PushRequest got {len(responses)} PushResponse(s), expected one")
    results = _results(ctx, responses[0], ids, 0)
    for rid in ids:
        r = results[rid]
        status = _STATUS.get(r.status, str(r.status))
        ctx.check(status in _ACCEPTED, f"valid record {rid} was {status}: {r.error or list(r.violations)}")
        ctx.check(r.version > 0, f"record {rid} was {status} without a version")
    ctx.check(responses[0].accepted == len(records), f"the PushResponse counts {responses[0].accepted} "
                                                     f"accepted, expected {len(records)}")
    _stored(ctx, dataset, records)
    ctx.note(f"{len(records)} valid record(s) stored and read back")


@case("PSH-03")
def batch_survives(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    dataset, tag = ctx.param("push_dataset"), run_tag(ctx)
    good = [valid_person(f"kit-{tag}-mixed-{n}", 40 + n) for n in range(2)]
    bad = valid_person(f"kit-{tag}-mixed-bad", 42)
    bad["sex"] = "5"
    later = [valid_person(f"kit-{tag}-after", 43)]
    first = [good[0], bad, good[1]]
    responses = require_ok(ctx, push(ctx, [_request(dataset, first), _request("", later)]))
    ctx.check(len(responses) == 2, f"two PushRequests got {len(responses)} PushResponse(s): a bad record "
                                   "must not end the stream")
    ctx.check([r.batch for r in responses] == [0, 1], f"the PushResponses answer batches "
                                                      f"{[r.batch for r in responses]}, expected [0, 1]")
    results = _results(ctx, responses[0], [str(r["id"]) for r in first], 0)
    for r in good:
        status = _STATUS.get(results[str(r["id"])].status, "?")
        ctx.check(status in _ACCEPTED, f"valid record {r['id']} beside an invalid one was {status}: the bad "
                                       "record sank its batch")
    after = _results(ctx, responses[1], [str(later[0]["id"])], 1)
    status = _STATUS.get(after[str(later[0]["id"])].status, "?")
    ctx.check(status in _ACCEPTED, f"the batch after the bad record was {status}")
    _stored(ctx, dataset, [*good, *later])
    bad_status = _STATUS.get(results[str(bad["id"])].status, "?")
    ctx.note(f"the valid records beside a bad one, and the next batch, were stored (the bad one: {bad_status})")


def _sub(ctx: NodeContext, dataset: str, after: int, batch_size: int = 0) -> list[Any]:
    result = subscribe(ctx, dataset, after=after, batch_size=batch_size)
    messages = require_ok(ctx, result)
    delivery(ctx, result)
    ctx.check(messages[-1].caught_up, f"a subscription after {after} ended before it was caught up")
    cursors = [m.cursor for m in messages]
    ctx.check(cursors == sorted(cursors), f"the cursors of one subscription went backwards: {cursors}")
    return messages


def _ids(messages: Sequence[Any]) -> list[str]:
    return [r.id for m in messages for r in m.batch.records]


@case("SUB-01")
def subscription_resumes(ctx: NodeContext) -> None:
    ensure_ready(ctx)
    dataset, tag = ctx.param("push_dataset"), run_tag(ctx)
    start = _sub(ctx, dataset, 0)[-1].cursor
    first = [valid_person(f"kit-{tag}-sub-{n}", 60 + n) for n in range(3)]
    require_ok(ctx, push(ctx, [_request(dataset, first)]))
    want = [str(r["id"]) for r in first]
    stream = _sub(ctx, dataset, start, batch_size=1)
    sizes = [len(m.batch.records) for m in stream]
    ctx.check(max(sizes) <= 1, f"a subscription with batch_size 1 sent messages of {max(sizes)} records")
    got = _ids(stream)
    ctx.check([i for i in got if i in want] == want, f"after cursor {start} the subscription delivered {got}, "
                                                     f"expected the records pushed since: {want}")
    delivered = {rid: data for rid, data, _ in records_of(stream)}
    for r in first:
        ctx.check(delivered.get(str(r["id"])) == r, f"record {r['id']} is not delivered as pushed")
    middle = next(m.cursor for m in stream if any(r.id == want[0] for r in m.batch.records))
    rest = _ids(_sub(ctx, dataset, middle))
    ctx.check(want[0] not in rest, f"resuming after cursor {middle} delivered {want[0]} again")
    ctx.check([i for i in rest if i in want] == want[1:], f"resuming after cursor {middle} delivered {rest}, "
                                                          f"expected {want[1:]}")
    end = stream[-1].cursor
    second = [valid_person(f"kit-{tag}-sub-{n}", 60 + n) for n in range(3, 5)]
    require_ok(ctx, push(ctx, [_request(dataset, second)]))
    latest = _ids(_sub(ctx, dataset, end))
    ctx.check(not set(latest) & set(want), f"resuming after cursor {end} delivered earlier records again: "
                                           f"{sorted(set(latest) & set(want))}")
    ctx.check([i for i in latest if i.startswith(f"kit-{tag}-sub-")] == [str(r["id"]) for r in second],
              f"resuming after cursor {end} delivered {latest}, expected {[r['id'] for r in second]}")
    foreign = [i for i in got + rest + latest if not i.startswith(f"kit-{tag}-")]
    if foreign:
        ctx.note(f"other writers' records were also delivered: {foreign[:5]}")
    ctx.note(f"resumed from cursors {start}, {middle} and {end} without losing or repeating a record")
