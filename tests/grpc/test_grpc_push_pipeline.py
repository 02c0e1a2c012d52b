"""Push's pipeline: batches prepared in the helper process (and in a thread when it is not up, or
fails) give the same answers and the same stored records; answers come in order, and a bad request
is refused only after every batch before it was stored and answered."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import grpc_testkit as kit
import pytest

from node._generated.shulian.v1 import common_pb2, records_pb2
from node.evidence import EvidenceLog
from node.pki import load_signing_key
from node.service import NodeCore, PreparePool
from node.store import Store, canonical_body, content_hash
from node.transport.grpc._push import POOL_MIN_RECORDS, push_records

pytestmark = pytest.mark.integration

BATCH = 100
assert BATCH >= POOL_MIN_RECORDS


def _records(start: int, n: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for i in range(start, start + n):
        p = kit.person(i, "pl")
        if i % 17 == 3:
            p["sex"] = "7"  # a violation
        elif i % 19 == 5:
            p["sex"] = "1" if p["sex"] == "2" else "2"  # a warning only (parity)
        out.append((p["id"], json.dumps(p, ensure_ascii=False).encode()))
    if n > 10:
        out[10] = (out[10][0], b'{"id": "broken", ')  # not JSON
    return out


def _request(dataset: str, records: list[tuple[str, bytes]]) -> records_pb2.PushRequest:
    return records_pb2.PushRequest(dataset=dataset, records=[common_pb2.Record(id=i, payload=p) for i, p in records])


async def _wait_for_helper(core: NodeCore) -> PreparePool:
    pool = core.prepare_pool(push_records)
    assert pool is not None
    deadline = time.monotonic() + 120
    while not pool.available():
        assert time.monotonic() < deadline, "the prepare helper did not start"
        await asyncio.sleep(0.05)
    return pool


def _answers(responses: list[records_pb2.PushResponse]) -> list[tuple[Any, ...]]:
    return [(r.id, r.status, r.version, r.error, tuple((v.path, v.severity) for v in r.violations))
            for response in responses for r in response.results]


def _expected(core: NodeCore, batches: list[list[tuple[str, bytes]]], version: int, stored: bool
              ) -> list[tuple[Any, ...]]:
    status = records_pb2.RecordResult
    out = []
    for batch in batches:
        prepared = core.prepare("inbox", batch)
        for i, (rid, _) in enumerate(batch):
            o = prepared.outcomes[i]
            if o is not None:
                out.append((o.id, status.REJECTED, 0, o.error or "", tuple((v.path, v.severity) for v in o.violations)))
            else:
                warnings = tuple((v.path, v.severity) for v in prepared.warnings.get(i, ()))
                out.append((rid, status.STORED if stored else status.UNCHANGED, version, "", warnings))
    return out


def test_the_helper_and_the_thread_give_the_same_answers(fed: kit.Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[int] = []
    submit = PreparePool.submit

    def counting(self: PreparePool, *args: Any) -> Any:
        submitted.append(1)
        return submit(self, *args)

    monkeypatch.setattr(PreparePool, "submit", counting)
    batches = [_records(b * BATCH, BATCH) for b in range(5)]

    async def main() -> tuple[list[Any], list[Any], list[Any]]:
        async with kit.InProcessNode(fed.provider.config()) as node:
            await _wait_for_helper(node.core)
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                call = client._push(iter([_request("inbox", b) for b in batches]))
                first = [r async for r in call]
                call = client._push(iter([_request("inbox", b) for b in batches]))
                again = [r async for r in call]
            expected = [_expected(node.core, batches, 1, True), _expected(node.core, batches, 1, False)]
            return [first, again], expected, [r.batch for r in first]

    (first, again), expected, order = asyncio.run(main())
    assert len(submitted) == 10  # every batch went to the helper
    assert order == [0, 1, 2, 3, 4]
    assert _answers(first) == expected[0] and _answers(again) == expected[1]
    assert any(a[1] == records_pb2.RecordResult.REJECTED for a in _answers(first))
    assert any(a[4] and a[1] == records_pb2.RecordResult.STORED for a in _answers(first))  # stored with a warning

    cfg = fed.provider.config()
    with Store(cfg.store) as store:
        stored = {r.id: r.body for r in store.iter_records("inbox")}
        entries = list(EvidenceLog(store, load_signing_key(cfg.signing_key)).entries())
    good = {a[0] for a in expected[0] if a[1] == records_pb2.RecordResult.STORED}
    assert set(stored) == good
    payloads = {rid: p for b in batches for rid, p in b}
    assert all(stored[rid] == canonical_body(json.loads(payloads[rid])) for rid in good)
    pushed = [e for e in entries if e.kind == "push.accepted"]
    assert len(pushed) == 10 and [e.details["stored"] for e in pushed[5:]] == [0] * 5


def test_a_failing_helper_is_given_up(fed: kit.Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def broken(self: PreparePool, *args: Any) -> concurrent.futures.Future[Any]:
        calls.append(1)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_exception(BrokenProcessPool("the helper died"))
        return future

    monkeypatch.setattr(PreparePool, "submit", broken)
    batches = [_records(b * BATCH, BATCH) for b in range(3)]

    async def main() -> tuple[list[Any], list[Any], bool]:
        async with kit.InProcessNode(fed.provider.config()) as node:
            pool = await _wait_for_helper(node.core)
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                responses = [r async for r in client._push(iter([_request("inbox", b) for b in batches]))]
            return responses, _expected(node.core, batches, 1, True), pool.failed

    responses, expected, failed = asyncio.run(main())
    assert calls == [1] and failed  # tried once, then every batch prepared in a thread
    assert _answers(responses) == expected


def test_a_bad_request_comes_after_the_answers_to_every_batch_before_it(fed: kit.Federation) -> None:
    batches = [_records(b * BATCH, BATCH) for b in range(4)]

    async def main() -> tuple[list[records_pb2.PushResponse], Exception]:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                requests = [_request("inbox" if i == 0 else "", b) for i, b in enumerate(batches)]
                requests.append(records_pb2.PushRequest(dataset="population", records=[]))
                answers: list[records_pb2.PushResponse] = []
                with pytest.raises(Exception) as info:
                    async for answer in client._push(iter(requests)):
                        answers.append(answer)
                return answers, info.value

    answers, err = asyncio.run(main())
    assert [a.batch for a in answers] == [0, 1, 2, 3]
    assert "batch #4 names 'population'" in str(err)
    with Store(fed.provider.config().store) as store:
        assert store.count_records("inbox") == sum(a.accepted for a in answers) > 0


def test_new_unchanged_and_updated_records_through_the_helper(fed: kit.Federation) -> None:
    def clean(start: int, n: int, **change: Any) -> list[tuple[str, bytes]]:
        return [(f"cl{i:07d}", json.dumps(dict(kit.person(i, "cl"), **change), ensure_ascii=False).encode())
                for i in range(start, start + n)]

    status = records_pb2.RecordResult
    rounds = [
        ([clean(0, BATCH), clean(BATCH, BATCH)], [(status.STORED, 1)] * 2 * BATCH),       # new
        ([clean(0, BATCH), clean(BATCH, BATCH)], [(status.UNCHANGED, 1)] * 2 * BATCH),    # unchanged
        ([clean(0, BATCH, name="改名"), clean(2 * BATCH, BATCH)],                          # updated, then new
         [(status.STORED, 2)] * BATCH + [(status.STORED, 1)] * BATCH),
    ]

    async def main() -> list[list[records_pb2.PushResponse]]:
        async with kit.InProcessNode(fed.provider.config()) as node:
            await _wait_for_helper(node.core)
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                return [[r async for r in client._push(iter([_request("inbox", b) for b in batches]))]
                        for batches, _ in rounds]

    answers = asyncio.run(main())
    for (batches, expected), responses in zip(rounds, answers, strict=True):
        assert [r.batch for r in responses] == [0, 1]
        assert [(r.accepted, r.rejected) for r in responses] == [(BATCH, 0), (BATCH, 0)]
        got = [(r.id, r.status, r.version, r.error, len(r.violations)) for resp in responses for r in resp.results]
        assert got == [(rid, s, v, "", 0) for (rid, _), (s, v) in zip([x for b in batches for x in b], expected,
                                                                        strict=True)]
    with Store(fed.provider.config().store) as store:
        rec = store.get_record("inbox", "cl0000001")
        assert rec is not None and rec.version == 2 and rec.data is not None and rec.data["name"] == "改名"
        assert rec.hash == content_hash(canonical_body(rec.data)).hex()


def test_a_client_may_wait_for_each_answer_before_it_sends_more(fed: kit.Federation) -> None:
    """No answer waits for a later request: a client sending one batch at a time is answered."""
    batches = [_records(b * BATCH, BATCH) for b in range(3)] + [_records(3 * BATCH, 5)]

    async def main() -> list[records_pb2.PushResponse]:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                call = client._push()
                answers = []
                for i, batch in enumerate(batches):
                    await call.write(_request("inbox" if i == 0 else "", batch))
                    answers.append(await asyncio.wait_for(call.read(), 60))
                await call.done_writing()
                assert await call.read() == grpc_aio_eof()
                return answers

    answers = asyncio.run(main())
    assert [a.batch for a in answers] == [0, 1, 2, 3]
    assert [len(a.results) for a in answers] == [BATCH, BATCH, BATCH, 5]


def grpc_aio_eof() -> Any:
    import grpc

    return grpc.aio.EOF
