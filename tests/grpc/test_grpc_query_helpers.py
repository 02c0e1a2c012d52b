"""The Query stream's helpers: the prefetcher that runs the batch producer ahead of the sender,
and the framer that encodes QueryResponses around already encoded records."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from node._generated.shulian.v1 import common_pb2, records_pb2
from node.service import OutBatch
from node.transport.grpc._helpers import (
    Prefetcher,
    ResponseFramer,
    query_response_bytes,
    serialize_query_response,
)


def _producer(count: int, fail_at: int | None = None) -> tuple[list[int], threading.Lock, object]:
    produced: list[int] = []
    running = threading.Lock()

    def produce() -> int | None:
        assert running.acquire(blocking=False), "two calls ran at once"
        try:
            time.sleep(0.001)
            if len(produced) == fail_at:
                raise ValueError("broken store")
            if len(produced) == count:
                return None
            produced.append(len(produced))
            return produced[-1]
        finally:
            running.release()

    return produced, running, produce


def test_prefetcher_yields_every_item_in_order_one_call_at_a_time() -> None:
    async def main() -> list[int]:
        produced, _, produce = _producer(20)
        with ThreadPoolExecutor(4) as pool:
            prefetch = Prefetcher(pool, produce, 3)  # type: ignore[arg-type]
            got = []
            while (item := await prefetch.get()) is not None:
                got.append(item)
            await prefetch.finished
        return got

    assert asyncio.run(main()) == list(range(20))


async def _until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the producer never got there"
        await asyncio.sleep(0.005)


def test_prefetcher_stays_at_most_depth_ahead() -> None:
    async def main() -> list[int]:
        produced, _, produce = _producer(50)
        with ThreadPoolExecutor(2) as pool:
            prefetch = Prefetcher(pool, produce, 3)  # type: ignore[arg-type]
            await _until(lambda: len(produced) == 3)  # a consumer that does not read
            await asyncio.sleep(0.1)
            ahead = len(produced)  # and no further
            assert await prefetch.get() == 0
            await _until(lambda: len(produced) == 4)
            await asyncio.sleep(0.1)
            prefetch.stop()
            await prefetch.finished
        return [ahead, len(produced)]

    assert asyncio.run(main()) == [3, 4]


def test_prefetcher_raises_the_producers_error_and_stop_ends_it() -> None:
    async def failing() -> None:
        _, _, produce = _producer(10, fail_at=2)
        with ThreadPoolExecutor(2) as pool:
            prefetch = Prefetcher(pool, produce, 2)  # type: ignore[arg-type]
            assert [await prefetch.get(), await prefetch.get()] == [0, 1]
            with pytest.raises(ValueError, match="broken store"):
                await prefetch.get()
            await prefetch.finished

    async def stopped() -> int:
        produced, _, produce = _producer(1000)
        with ThreadPoolExecutor(2) as pool:
            prefetch = Prefetcher(pool, produce, 2)  # type: ignore[arg-type]
            await prefetch.get()
            prefetch.stop()
            await asyncio.wait_for(prefetch.finished, 5)
            count = len(produced)
            await asyncio.sleep(0.05)
        assert len(produced) == count  # nothing started after stop()
        return count

    asyncio.run(failing())
    assert asyncio.run(stopped()) <= 3


def test_prefetcher_on_a_shut_down_executor_ends_with_its_error() -> None:
    async def main() -> None:
        pool = ThreadPoolExecutor(1)
        pool.shutdown()
        prefetch = Prefetcher(pool, lambda: 1, 2)
        with pytest.raises(RuntimeError):
            await prefetch.get()
        await prefetch.finished

    asyncio.run(main())


def test_the_framer_writes_what_query_response_bytes_writes() -> None:
    record = common_pb2.RecordBatch()
    record.records.add(id="p1", version=2, modified_us=7, payload=b'{"id":"p1"}')
    batch = OutBatch("population", record.SerializeToString(), 1, "key-1", b"\x01" * 64)
    frame = ResponseFramer("population", "91110000600037341L", "key-1")
    delivery = common_pb2.Delivery(reason="GRANTED", dataset="population")
    for d in (None, delivery):
        assert frame(batch, d) == query_response_bytes(batch, "91110000600037341L", d)
        expected = records_pb2.QueryResponse(batch=common_pb2.RecordBatch(
            dataset="population", records=record.records, provider="91110000600037341L", key_id="key-1",
            signature=b"\x01" * 64), delivery=d)
        assert records_pb2.QueryResponse.FromString(frame(batch, d)) == expected
    other = OutBatch("enterprises", b"", 0, "key-2", b"")
    assert frame(other) == query_response_bytes(other, "91110000600037341L")
    assert serialize_query_response(frame(batch)) == frame(batch)
    assert serialize_query_response(records_pb2.QueryResponse(batch=record)) == records_pb2.QueryResponse(
        batch=record).SerializeToString()
