"""PushStream without a server: a client that goes away while a batch is being stored."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from grpc_testkit import person
from hypothesis import given, settings
from hypothesis import strategies as st

import node.transport.grpc._push as push_mod
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


class _Store:
    """A store's transaction(): counts the commits and which batches each held."""

    def __init__(self) -> None:
        self.depth = 0
        self.commits: list[list[int]] = []
        self.open: list[int] = []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        except BaseException:
            if self.depth == 1:
                self.open = []
            raise
        finally:
            self.depth -= 1
        if self.depth == 0:
            self.commits.append(self.open)
            self.open = []


class _SlowCore:
    """The parts of NodeCore a Push stream uses; storing batch 1 takes a while."""

    def __init__(self) -> None:
        self.validator = get_validator("fast")
        self.store = _Store()
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
        self.store.open.append(index)
        ids = prepared.good_ids()
        return StoredBatch(prepared, ids, [1] * len(ids), [True] * len(ids), 0)


def test_a_batch_being_stored_when_the_client_goes_away_is_stored_and_nothing_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push_mod, "GROUP_BATCHES", 1)  # one batch a commit (groups: see below)
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


class _GroupCore(_SlowCore):
    """Storing batch 0 takes a while (the next ones are prepared meanwhile); batch ``fail`` fails."""

    def __init__(self, fail: int | None = None) -> None:
        super().__init__()
        self.fail = fail

    def store_batch(self, peer: str, prepared: PreparedBatch, **kw: Any) -> StoredBatch:
        index = self.calls
        if index == 0:
            time.sleep(0.3)
        if index == self.fail:
            self.calls += 1
            raise RuntimeError(f"batch {index} failed")
        if index == 1:
            self.calls += 1  # _SlowCore's pause is for batch 1: not here
            self.stored.append(index)
            self.store.open.append(index)
            ids = prepared.good_ids()
            return StoredBatch(prepared, ids, [1] * len(ids), [True] * len(ids), 0)
        return super().store_batch(peer, prepared, **kw)


def _stream_all(core: _SlowCore, batches: int) -> tuple[list[int], BaseException | None]:
    """Push ``batches`` batches of 10; the batch numbers answered, and the error the stream ended with."""

    async def run(fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))

    async def requests() -> AsyncIterator[records_pb2.PushRequest]:
        for b in range(batches):
            yield records_pb2.PushRequest(dataset="inbox" if b == 0 else "", records=[
                common_pb2.Record(id=p["id"], payload=json.dumps(p).encode())
                for p in (person(b * 10 + i) for i in range(10))])

    async def scenario() -> tuple[list[int], BaseException | None]:
        answered: list[int] = []
        try:
            async for answer in PushStream(core, run, lambda: None).responses(  # type: ignore[arg-type]
                    requests(), "peer", "rid"):
                message = records_pb2.PushResponse.FromString(answer) if isinstance(answer, bytes) else answer
                answered.append(message.batch)
        except Exception as exc:  # noqa: BLE001 - the stream's error is what the test looks at
            return answered, exc
        return answered, None

    return asyncio.run(scenario())


def test_batches_prepared_while_one_is_stored_commit_together_and_are_answered_in_order() -> None:
    core = _GroupCore()
    answered, error = _stream_all(core, 3)
    assert error is None and answered == [0, 1, 2]
    # storing batch 0 takes a while: the batches prepared meanwhile join a commit (which, depends on
    # when each was ready), every batch once, in order
    assert sum(core.store.commits, []) == [0, 1, 2] and len(core.store.commits) < 3


def test_a_failing_batch_in_a_group_ends_the_stream_after_the_ones_before_it() -> None:
    core = _GroupCore(fail=2)
    answered, error = _stream_all(core, 4)
    assert answered == [0, 1] and isinstance(error, RuntimeError) and "batch 2 failed" in str(error)
    assert sum(core.store.commits, []) == [0, 1]  # 0 and 1 committed (and answered); 2 not, 3 never stored


def test_a_group_whose_first_batch_fails_stores_nothing_of_it() -> None:
    core = _GroupCore(fail=1)
    answered, error = _stream_all(core, 3)
    assert answered == [0] and isinstance(error, RuntimeError) and "batch 1 failed" in str(error)
    assert sum(core.store.commits, []) == [0]


def test_a_stream_reads_ahead_no_more_than_its_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a batch is stored, the reader takes the next requests only as long as the ones it holds
    stay within PREPARE_BYTES (one request always goes through); every batch is still answered."""
    first = records_pb2.PushRequest(dataset="inbox", records=[
        common_pb2.Record(id=p["id"], payload=json.dumps(p).encode()) for p in (person(i) for i in range(10))])
    monkeypatch.setattr(push_mod, "PREPARE_BYTES", first.ByteSize() + 10)  # room for one batch
    core = _GroupCore()  # storing batch 0 takes 0.3 s
    pulled: list[int] = []

    async def run(fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))

    async def requests() -> AsyncIterator[records_pb2.PushRequest]:
        for b in range(6):
            pulled.append(b)
            yield records_pb2.PushRequest(dataset="inbox" if b == 0 else "", records=[
                common_pb2.Record(id=p["id"], payload=json.dumps(p).encode())
                for p in (person(b * 10 + i) for i in range(10))])

    async def scenario() -> list[int]:
        answered: list[int] = []
        async for answer in PushStream(core, run, lambda: None).responses(  # type: ignore[arg-type]
                requests(), "peer", "rid"):
            message = records_pb2.PushResponse.FromString(answer) if isinstance(answer, bytes) else answer
            if message.batch == 0:
                # batch 0 was being stored: the reader held batch 1 and waited for room (batch 2 was
                # pulled once batch 0's bytes were given back); without the budget it runs 4 ahead
                assert len(pulled) <= 3
            answered.append(message.batch)
        return answered

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4, 5]
    assert sum(core.store.commits, []) == [0, 1, 2, 3, 4, 5]


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
