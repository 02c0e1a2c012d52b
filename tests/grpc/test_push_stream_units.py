"""PushStream without a server: a client that goes away while a batch is being stored."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from grpc_testkit import person
from hypothesis import given, settings
from hypothesis import strategies as st

from node._generated.shulian.v1 import common_pb2, records_pb2
from node.service import StoredBatch
from node.service._batch import PreparedBatch, prepare_records
from node.transport.grpc._push import (
    PushStream,
    _uniform_results,
    push_response_bytes,
    serialize_push_response,
)
from node.validation import get_validator


class _SlowCore:
    """The parts of NodeCore a Push stream uses; storing batch 1 takes a while."""

    def __init__(self) -> None:
        self.validator = get_validator("fast")
        self.stored: list[int] = []
        self.storing = threading.Event()
        self.calls = 0

    def check_push(self, _source: str, _dataset: str, **_kw: Any) -> str:
        return "Person"

    def prepare_pool(self, _warm: Any = None) -> None:
        return None

    def prepare(self, dataset: str, pairs: Any, *, record_type: str | None = None) -> PreparedBatch:
        return prepare_records(self.validator, dataset, record_type or "Person", pairs)

    def store_batch(self, _peer: str, prepared: PreparedBatch, **_kw: Any) -> StoredBatch:
        index = self.calls
        self.calls += 1
        if index == 1:
            self.storing.set()
            time.sleep(0.5)
        self.stored.append(index)
        ids = prepared.good_ids()
        return StoredBatch(prepared, ids, [1] * len(ids), [True] * len(ids), 0)


def test_a_batch_being_stored_when_the_client_goes_away_is_stored_and_nothing_after_it() -> None:
    core = _SlowCore()

    async def run(fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))

    async def requests() -> AsyncIterator[records_pb2.PushRequest]:
        for b in range(5):
            yield records_pb2.PushRequest(dataset="inbox" if b == 0 else "", records=[
                common_pb2.Record(id=p["id"], payload=json.dumps(p).encode())
                for p in (person(b * 10 + i) for i in range(10))])

    async def scenario() -> None:
        stream = PushStream(core, run, lambda: None)  # type: ignore[arg-type]
        answers = stream.responses(requests(), "peer", "rid")
        first = await answers.__anext__()
        if isinstance(first, bytes):
            first = records_pb2.PushResponse.FromString(first)
        assert first.batch == 0 and first.accepted == 10
        await asyncio.to_thread(core.storing.wait, 10)  # batch 1 is being stored
        await answers.aclose()  # the client went away
        assert core.stored == [0, 1]  # batch 1 was stored all the same; nothing after it was
        await asyncio.sleep(0.2)
        assert core.stored == [0, 1]

    asyncio.run(scenario())


@settings(max_examples=300, deadline=None)
@given(batch=st.integers(0, 2**40), rows=st.lists(st.tuples(
    st.text(alphabet="abcXYZ019._~-", min_size=1, max_size=128), st.integers(0, 2**64 - 1), st.booleans()),
    max_size=20))
def test_push_answers_written_directly_are_the_message_bytes(batch: int, rows: list[tuple[str, int, bool]]) -> None:
    ids = [r[0] for r in rows]
    versions = [r[1] for r in rows]
    changed = [r[2] for r in rows]
    status = records_pb2.RecordResult
    message = records_pb2.PushResponse(batch=batch, accepted=len(ids), results=[
        status(id=i, status=status.STORED if c else status.UNCHANGED, version=v)
        for i, v, c in zip(ids, versions, changed, strict=True)])
    data = push_response_bytes(batch, ids, versions, changed)
    assert data == message.SerializeToString()
    assert records_pb2.PushResponse.FromString(data) == message
    assert serialize_push_response(data) is data and serialize_push_response(message) == data


@settings(max_examples=300, deadline=None)
@given(batch=st.integers(0, 2**20), size=st.integers(1, 128), count=st.integers(0, 40),
       version=st.integers(0, 300), new=st.booleans(), odd=st.sampled_from(["", "length", "version", "status", "utf8"]),
       data=st.data())
def test_push_answers_of_uniform_batches_take_one_join_and_are_the_message_bytes(
        batch: int, size: int, count: int, version: int, new: bool, odd: str, data: st.DataObject) -> None:
    """The usual batch (ids of one length, one status, one version) is written in one join; any
    batch that differs in one place takes the record-by-record path. Both give the message's bytes."""
    ids = [data.draw(st.text(alphabet="abcXYZ019._~-", min_size=size, max_size=size)) for _ in range(count)]
    versions = [version] * count
    changed = [new] * count
    odd = odd if count >= 2 else ""  # (one record alone always takes the join)
    if odd:
        at = data.draw(st.integers(0, count - 1))
        if odd == "length":
            ids[at] = ids[at] + "x" if size < 128 else ids[at][:-1]
        elif odd == "version":
            versions[at] = version + 1
        elif odd == "status":
            changed[at] = not new
        else:
            ids[at] = "证" + ids[at][1:]
    status = records_pb2.RecordResult
    message = records_pb2.PushResponse(batch=batch, accepted=len(ids), results=[
        status(id=i, status=status.STORED if c else status.UNCHANGED, version=v)
        for i, v, c in zip(ids, versions, changed, strict=True)])
    assert push_response_bytes(batch, ids, versions, changed) == message.SerializeToString()
    joined = _uniform_results(ids, versions, changed)
    usual = count > 0 and not odd and 0 < version < 128 and size < 122
    assert (joined is not None) == usual
