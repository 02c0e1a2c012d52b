"""The consume loop's fast paths give their general paths' results.

_plain_messages shares header pairs column by column (a publisher sends its headers in one
order); it must give _plain_messages_general's tuples, message after message, whatever the
headers: publisher-shaped, of differing counts, empty, None values, unhashable or not pairs
at all, and raise what the general path raises. unpack_outcomes skips sorting the positions
when every message was accepted in order; it must accept and refuse what the sorting check did.
"""

from __future__ import annotations

import marshal
import pickle
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from node.transport.kafka._exchange import _plain_messages, _plain_messages_general
from node.transport.kafka._pool import unpack_outcomes

NAMES = ["ce_type", "ce_source", "ce_id", "ce_time", "ce_signature", "ce_sigproof", "x"]
VALUES = [b"a", b"b", b"", None, b"open/p1/1", b"\xff" * 40]


def _record(tp: TopicPartition, offset: int, headers: Any) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"p%d" % offset, b"{}", None, 0, 0, headers)


def _fresh(pair: Any) -> Any:
    """An equal pair made of new objects (as aiokafka makes each message's)."""
    if isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], bytes):
        return (bytearray(pair[0].encode()).decode(), bytes(bytearray(pair[1])))
    return pair


pair_st = st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES))
odd_pair_st = st.one_of(pair_st, st.just(["ce_id", b"a"]), st.just(("ce_id", bytearray(b"a"))),
                        st.just(("ce_id",)), st.just(("ce_id", b"a", b"b")), st.just(("ce_id", [1])))


@st.composite
def batches(draw: Any, pairs: Any = pair_st) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """Partitions of messages whose headers are columns: constant, repeating, distinct, or drawn freely."""
    data = {}
    for p in range(draw(st.integers(1, 3))):
        tp = TopicPartition(draw(st.sampled_from(["t.a", "t.b"])), p)
        n = draw(st.integers(0, 40))
        width = draw(st.integers(0, 5))
        kinds = draw(st.lists(st.sampled_from(["same", "few", "distinct", "free"]), min_size=width, max_size=width))
        base = draw(st.lists(pairs, min_size=width, max_size=width))
        rows = []
        for i in range(n):
            row = []
            for k, kind in enumerate(kinds):
                if kind == "same":
                    row.append(_fresh(base[k]))
                elif kind == "few":
                    row.append((NAMES[k], VALUES[i // 7 % 3]))
                elif kind == "distinct":
                    row.append((NAMES[k], b"v%d" % i))
                else:
                    row.append(draw(pairs))
            if draw(st.integers(0, 19)) == 0:  # now and then a message of other headers
                row = draw(st.lists(pairs, max_size=4))
            rows.append(tuple(row) if draw(st.integers(0, 9)) else list(row))
        data[tp] = [_record(tp, 10 + i, h) for i, h in enumerate(rows)]
    return data


def _same(data: dict[Any, Any]) -> None:
    fast, general = _plain_messages(data), _plain_messages_general(data)
    assert fast == general
    assert [type(m[5]) for m in fast] == [type(m[5]) for m in general] == [tuple] * len(general)
    assert marshal.loads(marshal.dumps(fast)) == marshal.loads(marshal.dumps(general))  # as the helper reads them


@settings(max_examples=300, deadline=None)
@given(data=batches())
def test_plain_messages_as_the_general_path(data: dict[Any, Any]) -> None:
    _same(data)


@settings(max_examples=300, deadline=None)
@given(data=batches(odd_pair_st))
def test_plain_messages_as_the_general_path_with_odd_headers(data: dict[Any, Any]) -> None:
    _same(data)


def test_plain_messages_share_a_column_of_equal_pairs() -> None:
    tp = TopicPartition("t", 0)
    data = {tp: [_record(tp, i, (_fresh(("ce_type", b"upserted")), ("ce_id", b"%d" % i),
                                 _fresh(("ce_time", b"t%d" % (i // 10)))))
                 for i in range(50)]}
    raw = _plain_messages(data)
    assert raw == _plain_messages_general(data)
    assert len({id(m[5][0]) for m in raw}) == 1  # one pair for the column
    assert len({id(m[5][2]) for m in raw}) == 5  # one per value (the column repeats)


@pytest.mark.parametrize("headers", [None, 5, [("a", b"1"), None], [("a", {})]])
def test_plain_messages_odd_headers_as_the_general_path(headers: Any) -> None:
    tp = TopicPartition("t", 0)
    data = {tp: [_record(tp, 1, (("a", b"1"),)), _record(tp, 2, headers)]}
    try:
        expected: Any = _plain_messages_general(data)
    except Exception as exc:  # noqa: BLE001 - the same error, or the same result
        with pytest.raises(type(exc)) as info:
            _plain_messages(data)
        assert str(info.value) == str(exc)
    else:
        assert _plain_messages(data) == expected


def test_plain_messages_not_records_raise_as_the_general_path() -> None:
    class Partial:
        offset, key, value = 1, None, None

    for record in (Partial(), object()):
        data = {TopicPartition("t", 0): [record]}
        with pytest.raises(AttributeError) as general:
            _plain_messages_general(data)
        with pytest.raises(AttributeError) as fast:
            _plain_messages(data)
        assert str(fast.value) == str(general.value)


def _old_covers(at: list[int], rejections: list[tuple[int, bytes]], n: int) -> bool:
    return sorted([*at, *(r[0] for r in rejections)]) == list(range(n))


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 12), data=st.data())
def test_unpack_outcomes_accepts_what_the_sorting_check_accepted(n: int, data: Any) -> None:
    msgs = [("t", 0, i, b"k", b"v", ()) for i in range(n)]
    at = data.draw(st.one_of(st.just(list(range(n))), st.lists(st.integers(-1, n), max_size=n),
                             st.permutations(list(range(n))).map(list)))
    rest = [i for i in range(n) if i not in at]
    refused = data.draw(st.one_of(st.just(rest), st.lists(st.integers(-1, n), max_size=n)))
    reason = pickle.dumps(("UNPARSEABLE", "x", (), None, None))
    rejections = [(i, reason) for i in refused]
    packed = (at, *([0] * len(at) for _ in range(10)), rejections)
    if len(at) + len(rejections) == n and _old_covers(at, rejections, n):
        checked = unpack_outcomes(msgs, packed)
        assert checked.at == at and [r.msg[2] for r in checked.rejected] == refused
    else:
        with pytest.raises(RuntimeError):
            unpack_outcomes(msgs, packed)
