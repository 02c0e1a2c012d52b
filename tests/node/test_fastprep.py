"""The C prepare step of the common Push batch (node._fastprep) against orjson, hashlib and the Python path.

``flat_batch`` must answer None for anything but its narrow form, and when it answers, give what
orjson.loads, orjson.dumps(OPT_SORT_KEYS) and hashlib.blake2b give; prepare_records must give the
same PreparedBatch with and without it, for whole batches of good, odd and hostile records. Without
the extension only the comparisons of prepare_records run (both sides then take the Python path).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import orjson
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import node.service._batch as batch
import node.transport.grpc._push as push
import node.validation._native as native
from node._generated.shulian.v1 import common_pb2, records_pb2
from node.errors import InputError
from node.service._batch import prepare_records
from node.store import RECORD_ID_RE
from node.validation import MAX_RECORD_BYTES, get_validator
from node.validation._native import gb11643_check_char

fastprep: ModuleType | None
try:
    from node import _fastprep as fastprep
except ImportError:
    fastprep = None

needs_c = pytest.mark.skipif(fastprep is None, reason="node._fastprep is not built")
_STRICT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")
_SURNAMES = "王李张刘陈杨黄赵吴周"


def person(n: int, prefix: str = "q", **extra: Any) -> dict[str, Any]:
    """A record like tests/grpc/grpc_testkit.person (what bench/grpc_exchange.py pushes)."""
    rec = {"id": f"{prefix}{n:07d}", "type": "Person", "identityNumber": f"11010519{n % 100:02d}0101{n % 1000:03d}X",
           "name": _SURNAMES[n % 10] + "秀英", "sex": "1" if n % 2 else "2", "ethnicity": "01",
           "birthDate": "1949-01-01", "householdDivision": "110000"}
    rec.update(extra)
    return rec


def _flat(pairs: Any, limit: int = MAX_RECORD_BYTES, hash_bodies: bool = True) -> Any:
    assert fastprep is not None
    return fastprep.flat_batch(pairs, limit, hash_bodies)


def _typed(data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """A dict as its items in order, with the value types (True == 1, but not here)."""
    return [(k, type(v).__name__, v) for k, v in data.items()]


def _check_answer(pairs: list[tuple[Any, Any]], got: Any, hash_bodies: bool = True) -> None:
    datas, bodies, digests = got
    assert len(datas) == len(bodies) == len(pairs)
    for (rid, payload), data, body in zip(pairs, datas, bodies, strict=True):
        assert type(data) is dict and _typed(data) == _typed(orjson.loads(payload))
        assert data["id"] == rid and RECORD_ID_RE.match(rid)
        assert type(body) is bytes and body == orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if hash_bodies:
        assert digests == [hashlib.blake2b(b, digest_size=16).digest() for b in bodies]
    else:
        assert digests is None


@contextlib.contextmanager
def _without_c() -> Iterator[None]:
    saved = batch._fastprep
    batch._fastprep = None  # type: ignore[assignment]
    try:
        yield
    finally:
        batch._fastprep = saved


def _prepared(records: list[tuple[Any, Any]], hash_bodies: bool) -> Any:
    try:
        p = prepare_records(get_validator("fast"), "inbox", "Person", records, hash_bodies=hash_bodies)
    except InputError as exc:
        return ("error", exc.message)
    except Exception as exc:  # noqa: BLE001  # what a payload of no known kind does, on both paths
        return (type(exc).__name__, str(exc))
    return (p.dataset, p.outcomes, [(rid, _typed(dict(d))) for rid, d in p.good], p.good_at, p.warnings, p.bodies,
            p.digests)


def _same_as_python_path(records: list[tuple[Any, Any]]) -> None:
    for hash_bodies in (True, False):
        with_c = _prepared(records, hash_bodies)
        with _without_c():
            without = _prepared(records, hash_bodies)
        assert with_c == without


# ---- BLAKE2b ----------------------------------------------------------------------------------------
@needs_c
def test_blake2b_is_hashlibs_for_every_length_to_2000() -> None:
    assert fastprep is not None
    rnd = random.Random(7693)
    for n in range(2001):
        data = rnd.randbytes(n)
        assert fastprep.blake2b_16(data) == hashlib.blake2b(data, digest_size=16).digest(), n
    for n in (4095, 4096, 4097, 65536, 1 << 20):
        data = rnd.randbytes(n)
        assert fastprep.blake2b_16(data) == hashlib.blake2b(data, digest_size=16).digest(), n


@needs_c
@given(data=st.binary(max_size=1000))
def test_blake2b_is_hashlibs(data: bytes) -> None:
    assert fastprep is not None
    assert fastprep.blake2b_16(data) == hashlib.blake2b(data, digest_size=16).digest()


# ---- generated payloads -----------------------------------------------------------------------------
_ODD_CHARS = ['"', "\\", "\x00", "\n", "\x1f", "\x7f", "\u0080", "\u2028", "\u2029", "/", "\ufeff", "\ufffe",
              "\uffff", "\U00010000", "\U0001f600", "\U0010ffff", "é", "中", "<", "&", " "]
_chars = st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(_ODD_CHARS))
_texts = st.text(_chars, max_size=8)
_keys = st.one_of(_texts, st.sampled_from(["id", "type", "name", "a", "b", "é", "\U0001f600", "\uffff", "ab", "a\x7f"]))
_ints = st.one_of(st.integers(-(10**18) + 1, 10**18 - 1), st.integers(-(2**70), 2**70),
                  st.sampled_from([0, -1, 10**17, 10**18 - 1, 10**18, -(10**18) + 1, -(10**18), 2**63 - 1, 2**64]))
_scalars = st.one_of(st.none(), st.booleans(), _ints, _texts,
                     st.floats(allow_nan=False, allow_infinity=False))
_values = st.one_of(_scalars, _scalars, _scalars, st.lists(_scalars, max_size=2),
                    st.dictionaries(st.text(max_size=2), _scalars, max_size=2))
_ws = st.text(st.sampled_from(" \t\r\n"), max_size=2)
_good_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,12}", fullmatch=True)
_plain_texts = st.text(st.one_of(st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\',
                                                min_codepoint=0x20),
                                  st.sampled_from([c for c in _ODD_CHARS if c not in '"\\' and c >= " "])), max_size=8)
_plain_keys = st.one_of(_plain_texts, st.sampled_from(["type", "name", "a", "b", "é", "\U0001f600", "\uffff", "a\x7f"]))
_plain_values = st.one_of(st.none(), st.booleans(), st.integers(-(10**18) + 1, 10**18 - 1), _plain_texts)
_ids = st.one_of(_good_ids, _good_ids, _good_ids,
                 st.sampled_from(["", "a\n", "-a", ".a", "a b", "a/b", "é", "a" * 128, "a" * 129, "A~._-9", "0"]),
                 st.text(max_size=4))


def _common(rid: str, members: list[tuple[str, Any]], ensure_ascii: bool) -> bool:
    """Whether flat_batch must take the record (it may refuse nothing of this form)."""
    def plain(s: str) -> bool:
        # json.dumps(ensure_ascii=True) writes only " " to "~" as they are (it escapes DEL too)
        return not any(c in '"\\' or c < " " for c in s) and (not ensure_ascii or all(c <= "~" for c in s))

    keys = [k for k, _ in members]
    values = dict(members)
    return (_STRICT_ID.fullmatch(rid) is not None and len(set(keys)) == len(keys) and values.get("id") == rid
            and all(plain(k) for k in keys)
            and all(v is None or type(v) is bool or (type(v) is int and len(str(abs(v))) <= 18)
                    or (type(v) is str and plain(v)) for v in values.values()))


def _mutated(data: bytes, op: str, at: int, byte: int) -> bytes:
    """``data`` with one byte set, inserted or deleted at ``at`` (taken modulo its length), cut
    there, or ("twice") followed by itself from there."""
    at %= len(data) + 1
    if op == "set":
        return data[:at] + bytes([byte]) + data[at + 1:] if at < len(data) else data
    if op == "insert":
        return data[:at] + bytes([byte]) + data[at:]
    if op == "delete":
        return data[:at] + data[at + 1:]
    if op == "cut":
        return data[:at]
    return data + data[at:]  # a message followed by (part of) itself: every field again


@st.composite
def records(draw: st.DrawFn) -> tuple[tuple[Any, Any], bool]:
    """A pushed (id, payload) and whether it is of flat_batch's form."""
    tame = draw(st.booleans())  # then mostly of the form (the rest is mostly not)
    rid = draw(_good_ids if tame else _ids)
    members = draw(st.lists(st.tuples(_plain_keys.filter(lambda k: k != "id"), _plain_values), max_size=6,
                            unique_by=lambda kv: kv[0]) if tame else st.lists(st.tuples(_keys, _values), max_size=6))
    where = "same" if tame else draw(st.sampled_from(["same", "same", "same", "none", "other", "number"]))
    inner: Any = {"same": rid, "other": rid + "x", "number": 7}.get(where)
    if where != "none":
        members.insert(draw(st.integers(0, len(members))), ("id", inner))
    ensure_ascii = False if tame else draw(st.booleans())
    colon = draw(_ws) + ":" + draw(_ws)
    comma = draw(_ws) + "," + draw(_ws)
    text = draw(_ws) + "{" + draw(_ws) + comma.join(
        json.dumps(k, ensure_ascii=ensure_ascii) + colon + json.dumps(v, ensure_ascii=ensure_ascii)
        for k, v in members) + draw(_ws) + "}" + draw(_ws)
    payload = text.encode()
    common = _common(rid, members, ensure_ascii)
    mutations = draw(st.lists(st.tuples(st.sampled_from(["set", "insert", "delete", "cut"]), st.integers(0, 10**6),
                                        st.integers(0, 255)), max_size=2)) if draw(st.integers(0, 3)) == 0 else []
    for op, at, byte in mutations:
        payload = _mutated(payload, op, at, byte)
        common = False  # it may still be of the form: then the answer is checked against orjson
    if draw(st.integers(0, 20)) == 0:
        payload, common = b"\xef\xbb\xbf" + payload, False
    return (rid, payload), common


@needs_c
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records())
def test_a_record_is_answered_as_orjson_reads_and_writes_it(record: tuple[tuple[Any, Any], bool]) -> None:
    pair, common = record
    got = _flat([pair])
    if common:
        assert got is not None, pair
    if got is not None:
        _check_answer([pair], got)
        assert _STRICT_ID.fullmatch(pair[0])


@needs_c
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch_=st.lists(records(), max_size=8), hash_bodies=st.booleans())
def test_a_batch_is_answered_only_when_every_record_is_common(batch_: list[tuple[tuple[Any, Any], bool]],
                                                             hash_bodies: bool) -> None:
    pairs = [pair for pair, _ in batch_]
    got = _flat(pairs, hash_bodies=hash_bodies)
    singles = [_flat([pair], hash_bodies=hash_bodies) for pair in pairs]
    assert (got is not None) == all(s is not None for s in singles)
    if got is not None:
        _check_answer(pairs, got, hash_bodies)


_PERSON_VARIANTS: list[Any] = [
    lambda i: (f"q{i:07d}", json.dumps(person(i), ensure_ascii=False).encode()),             # common, clean
    lambda i: (f"q{i:07d}", json.dumps(person(i)).encode()),                                  # \u escapes
    lambda i: (f"q{i:07d}", json.dumps(person(i, sex="7"), ensure_ascii=False).encode()),     # a violation
    lambda i: (f"q{i:07d}", json.dumps(person(i, sex="9"), ensure_ascii=False).encode()),     # a warning or so
    lambda i: (f"q{i:07d}", json.dumps(person(i, extra=1), ensure_ascii=False).encode()),     # an unknown item
    lambda i: (f"q{i:07d}", json.dumps({k: v for k, v in person(i).items() if k != "name"}).encode()),
    lambda i: (f"q{i:07d}", json.dumps(dict(reversed(person(i).items())), ensure_ascii=False).encode()),
    lambda i: (f"q{i:07d}", json.dumps(person(i, id=f"q{i + 1:07d}"), ensure_ascii=False).encode()),  # ids differ
    lambda i: (f"q{i:07d}\n", json.dumps(person(i, id=f"q{i:07d}\n"), ensure_ascii=False).encode()),  # "$" takes it
    lambda i: ("", json.dumps(person(i), ensure_ascii=False).encode()),                       # id from the payload
    lambda i: (f"q{i:07d}", json.dumps(person(i, big=10**19), ensure_ascii=False).encode()),  # 20 digits
    lambda i: (f"q{i:07d}", json.dumps(person(i, big=2**63 - 1), ensure_ascii=False).encode()),  # 19 digits
    lambda i: (f"q{i:07d}", json.dumps(person(i, big=2**64 + 1), ensure_ascii=False).encode()),  # beyond 64 bits
    lambda i: (f"q{i:07d}", json.dumps(person(i, score=1.0), ensure_ascii=False).encode()),   # a float
    lambda i: (f"q{i:07d}", json.dumps(person(i, tags=["a"]), ensure_ascii=False).encode()),  # nested
    lambda i: (f"q{i:07d}", json.dumps(person(i), ensure_ascii=False).encode()[:-1] + b',"sex":"1"}'),  # dup key
    lambda i: (f"q{i:07d}", json.dumps(person(i), ensure_ascii=False)),                       # text
    lambda i: (f"q{i:07d}", person(i)),                                                       # decoded
    lambda i: (f"q{i:07d}", bytearray(json.dumps(person(i)).encode())),                       # not exactly bytes
    lambda i: (f"q{i:07d}", b"\xef\xbb\xbf" + json.dumps(person(i)).encode()),                # a BOM
    lambda i: (f"q{i:07d}", json.dumps(person(i), ensure_ascii=False).encode() + b" x"),      # trailing garbage
    lambda i: (f"q{i:07d}", json.dumps(person(i, name="\u2028/\x7f")).encode()),              # escapes
    lambda i: (f"q{i:07d}", json.dumps(person(i, name="\u2028/\x7f"), ensure_ascii=False).encode()),
    lambda i: (f"q{i:07d}", json.dumps(person(i, sex=None, flag=True), ensure_ascii=False).encode()),
    lambda i: (f"q{i:07d}", b'{"id":"q%07d","name":"\xe7\x8e\x8b' % i),                       # truncated
    lambda i: (f"q{i:07d}", b""),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.integers(0, len(_PERSON_VARIANTS) - 1), max_size=12), common=st.integers(0, 3),
       extra=st.lists(records(), max_size=3))
def test_prepare_records_gives_what_the_python_path_gives(picks: list[int], common: int,
                                                          extra: list[tuple[tuple[Any, Any], bool]]) -> None:
    if common:  # batches of what the C path takes (clean, violations, warnings, other orders)
        picks = [(0, 2, 3, 4, 5, 6, 22, 23)[p % (2 if common == 1 else 8)] for p in picks]
        extra = []
    records_ = [_PERSON_VARIANTS[p](i) for i, p in enumerate(picks)] + [pair for pair, _ in extra]
    _same_as_python_path(records_)


def test_the_c_path_takes_the_common_batch() -> None:
    records_ = [_PERSON_VARIANTS[0](i) for i in range(500)] + [_PERSON_VARIANTS[2](500)]
    if fastprep is not None:
        got = _flat(records_)
        assert got is not None
        _check_answer(records_, got)
    _same_as_python_path(records_)
    _same_as_python_path(records_[:1])
    _same_as_python_path([])


def test_an_oversize_payload_takes_the_python_path() -> None:
    big = json.dumps(person(1, name="x" * MAX_RECORD_BYTES), ensure_ascii=False).encode()
    _same_as_python_path([_PERSON_VARIANTS[0](0), ("q0000001", big)])


# ---- hostile and edge cases -------------------------------------------------------------------------
_REFUSED = [
    b"", b" ", b"{", b"}", b"[]", b'"id"', b"null", b'{"id":"a"', b'{"id":"a",}', b'{"id":"a" "b":1}', b'{,"id":"a"}',
    b'{"id":"a","b":}', b'{"id":"a","b"}', b'{"id":"a",b:1}', b"{'id':'a'}", b'{"id":"a"}}', b'{"id":"a"} x',
    b'{"id":"a"}\x00', b'\x00{"id":"a"}', b'{"id":"a"}\x0b', b'\x0c{"id":"a"}', b"\xef\xbb\xbf{\"id\":\"a\"}",
    b"{}", b'{"b":1}', b'{"ID":"a"}', b'{"id":1}', b'{"id":null}', b'{"id":"b"}', b'{"id":"a "}', b'{"id":"A"}',
    b'{"id":"a","id":"a"}', b'{"id":"a","b":1,"b":1}', b'{"b":1,"id":"a","b":2}',
    b'{"id":"a","b":-0}', b'{"id":"a","b":01}', b'{"id":"a","b":-01}', b'{"id":"a","b":00}', b'{"id":"a","b":-}',
    b'{"id":"a","b":1234567890123456789}', b'{"id":"a","b":-1234567890123456789}',
    b'{"id":"a","b":99999999999999999999999}', b'{"id":"a","b":1e5}', b'{"id":"a","b":1E5}', b'{"id":"a","b":1.0}',
    b'{"id":"a","b":1.}', b'{"id":"a","b":.5}', b'{"id":"a","b":+1}', b'{"id":"a","b":0x10}', b'{"id":"a","b":NaN}',
    b'{"id":"a","b":Infinity}', b'{"id":"a","b":tru}', b'{"id":"a","b":truee}', b'{"id":"a","b":True}',
    b'{"id":"a","b":nul}', b'{"id":"a","b":fals}', b'{"id":"a","b":[]}', b'{"id":"a","b":{}}', b'{"id":"a","b":"\\n"}',
    b'{"id":"a","b":"\\u0041"}', b'{"id":"a","b":"\\""}', b'{"id":"a","b\\"":1}', b'{"id":"\\u0061"}',
    b'{"id":"a","b":"\x00"}', b'{"id":"a","b":"\x1f"}', b'{"id":"a","b":"\n"}', b'{"id":"a","\t":1}',
    b'{"id":"a","b":"\xc3"}', b'{"id":"a","b":"\xe4\xb8"}', b'{"id":"a","b":"\xf0\x9f\x98"}',  # truncated
    b'{"id":"a","b":"\xc3', b'{"id":"a","b":"\xe4\xb8', b'{"id":"a","b":"\xf0\x9f\x98',  # truncated at the end
    b'{"id":"a","b":"\xc0\x80"}', b'{"id":"a","b":"\xc1\xbf"}', b'{"id":"a","b":"\xe0\x80\x80"}',  # overlong
    b'{"id":"a","b":"\xe0\x9f\xbf"}', b'{"id":"a","b":"\xf0\x80\x80\x80"}', b'{"id":"a","b":"\xf0\x8f\xbf\xbf"}',
    b'{"id":"a","b":"\xed\xa0\x80"}', b'{"id":"a","b":"\xed\xbf\xbf"}',  # surrogates
    b'{"id":"a","b":"\xed\xa0\xbd\xed\xb8\x80"}',  # a surrogate pair in UTF-8 (CESU-8)
    b'{"id":"a","b":"\xf4\x90\x80\x80"}', b'{"id":"a","b":"\xf5\x80\x80\x80"}', b'{"id":"a","b":"\xff"}',  # > U+10FFFF
    b'{"id":"a","b":"\x80"}', b'{"id":"a","b":"\xbf"}', b'{"id":"a","b":"\xc3\xc3"}', b'{"id":"a","b":"\xe4\x41\x80"}',
    b'{"id":"a","\xff":1}', b'{"id":"a"}\xff', b'\xff{"id":"a"}',
]


@pytest.mark.parametrize("payload", _REFUSED)
def test_what_flat_batch_leaves_to_the_python_path(payload: bytes) -> None:
    if fastprep is not None:
        assert _flat([("a", payload)]) is None
        assert _flat([("a", b'{"id":"a"}'), ("a", payload)]) is None
    _same_as_python_path([("a", payload)])


_TAKEN = [
    b'{"id":"a"}', b' \t\r\n{ \t\r\n"id" \t\r\n: \t\r\n"a" \t\r\n} \t\r\n', b'{"b":0,"id":"a"}', b'{"id":"a","b":-1}',
    b'{"id":"a","b":123456789012345678}', b'{"id":"a","b":-123456789012345678}', b'{"id":"a","b":999999999999999999}',
    b'{"id":"a","b":true,"c":false,"d":null}', b'{"id":"a","":""}', b'{"id":"a","b":"\x7f"}',
    b'{"id":"a","b":"\xe2\x80\xa8\xe2\x80\xa9"}', b'{"id":"a","b":"/<>&\'"}', b'{"id":"a","b":"\xef\xbb\xbf"}',
    b'{"id":"a","b":"\xef\xbf\xbf\xef\xbf\xbe"}', b'{"id":"a","b":"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"}',
    b'{"id":"a","b":"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"}',
    b'{"\xef\xbf\xbf":1,"\xf0\x90\x80\x80":2,"id":"a","\xc3\xa9":3,"e":4,"ea":5,"E":6}',  # code point order
    b'{"id":"a","b":"\xe4\xb8\xad","\xe4\xb8\xad":"b"}',
]


@pytest.mark.parametrize("payload", _TAKEN)
def test_what_flat_batch_takes(payload: bytes) -> None:
    if fastprep is not None:
        got = _flat([("a", payload)])
        assert got is not None
        _check_answer([("a", payload)], got)
    _same_as_python_path([("a", payload)])


_ODD_PAIRS: list[Any] = [
    ("a\n", b'{"id":"a\\n"}'), ("a\n", b'{"id":"a"}'), ("", b'{"id":""}'), ("", b'{"id":"a"}'), ("-a", b'{"id":"-a"}'),
    ("a b", b'{"id":"a b"}'), ("\xe9", b'{"id":"\xc3\xa9"}'), ("a" * 129, b'{"id":"%s"}' % (b"a" * 129)),
    ("a/b", b'{"id":"a/b"}'), ("a\x00", b'{"id":"a"}'),
    ("a", bytearray(b'{"id":"a"}')), ("a", memoryview(b'{"id":"a"}')), ("a", '{"id":"a"}'), ("a", {"id": "a"}),
    ("a", None),
]


@pytest.mark.parametrize("pair", _ODD_PAIRS)
def test_odd_ids_and_payloads_take_the_python_path(pair: Any) -> None:
    if fastprep is not None:
        assert _flat([pair]) is None
    _same_as_python_path([pair, ("b", b'{"id":"b"}')])


@needs_c
def test_odd_pairs_and_arguments() -> None:
    good = ("a", b'{"id":"a"}')
    for pairs in ([["a", b'{"id":"a"}']], [("a", b'{"id":"a"}', 1)], [("a",)], [None], [b'{"id":"a"}'],
                  iter([good]), range(3), {good}):
        assert _flat(pairs) is None
    assert _flat((good, good)) is not None and _flat([good] * 3) is not None
    assert _flat([("a" * 128, b'{"id":"%s"}' % (b"a" * 128))]) is not None
    assert _flat([("A~._-9", b'{"id":"A~._-9"}')]) is not None
    assert _flat([good], limit=len(good[1])) is not None
    assert _flat([good], limit=len(good[1]) - 1) is None
    assert _flat([good], limit=-1) is None
    assert _flat([], hash_bodies=False) == ([], [], None)
    assert fastprep is not None
    for args in ((), ([good],), ([good], 10), ([good], "10", True), ([good], 10, True, 1), ([good], 10.0, True)):
        with pytest.raises(TypeError):
            fastprep.flat_batch(*args)
    with pytest.raises(TypeError):
        fastprep.blake2b_16("text")


def layout_pairs(seed: int, *, types: bool = False) -> tuple[list[tuple[str, bytes]], random.Random]:
    """400 records of many keys in changing layouts (some laid out like the one before), as (id, JSON)
    pairs; with ``types`` some carry a "type" of one value or another. Also the random source, to go on."""
    rnd = random.Random(seed)
    pairs = []
    for i in range(400):
        keys = [f"k{rnd.randrange(40)}" for _ in range(rnd.choice([0, 3, 8, 30, 200]))]
        obj: dict[str, Any] = {k: rnd.choice([1, "v", "v2", None, True, -(10**17)]) for k in keys}
        obj["id"] = f"r{i}"
        if types and rnd.random() < 0.3:
            obj["type"] = rnd.choice(["T", None, "U", 1])
        if rnd.random() < 0.5:
            obj = dict(sorted(obj.items(), reverse=rnd.random() < 0.5))
        pairs.append((f"r{i}", json.dumps(obj).encode()))
        if rnd.random() < 0.3:  # the same layout again
            pairs.append((f"s{i}", json.dumps({**obj, "id": f"s{i}"}).encode()))
    return pairs, rnd


@needs_c
def test_records_of_many_keys_and_of_changing_layouts() -> None:
    pairs, rnd = layout_pairs(11)
    got = _flat(pairs)
    assert got is not None
    _check_answer(pairs, got)
    big = {f"k{j:05d}": j for j in rnd.sample(range(100000), 5000)} | {"id": "big"}
    got = _flat([("big", json.dumps(big).encode())])
    assert got is not None
    _check_answer([("big", json.dumps(big).encode())], got)
    dup = json.dumps(big).encode()[:-1] + b', "k%05d": 1}' % rnd.choice([int(k[1:]) for k in big if k != "id"])
    assert _flat([("big", dup)]) is None
    # a duplicate in a record of the same keys as the one before, but one
    assert _flat([("a", b'{"id":"a","b":1,"c":2}'), ("a", b'{"id":"a","b":1,"b":2}')]) is None
    assert _flat([("a", b'{"id":"a","b":1,"c":2}'), ("a", b'{"id":"a","b":1,"c":2,"c":3}')]) is None


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


@needs_c
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_nothing_leaks() -> None:
    wide = {f"key{j}": "v" * (j % 7) for j in range(300)} | {"id": "w"}
    batches: list[Any] = [
        [_PERSON_VARIANTS[0](i) for i in range(4)],
        [_PERSON_VARIANTS[0](0), _PERSON_VARIANTS[6](1), _PERSON_VARIANTS[23](2)],
        [("w", json.dumps(wide).encode())],
        [_PERSON_VARIANTS[0](0), _PERSON_VARIANTS[15](1)],  # a duplicate key, after a good record
        [_PERSON_VARIANTS[0](0), ("w", json.dumps(wide).encode()[:-1] + b',"key7":1}')],
        [_PERSON_VARIANTS[0](0), _PERSON_VARIANTS[13](1)],  # a float
        [_PERSON_VARIANTS[0](0), ("a\n", b'{"id":"a\\n"}')],
        [("a", b'{"id":"a","b":"\xed\xa0\x80"}')],
    ]

    def run(rounds: int) -> None:
        for _ in range(rounds):
            for pairs in batches:
                _flat(pairs, hash_bodies=True)
                _flat(pairs, hash_bodies=False)
            with pytest.raises(TypeError):
                _flat(batches[0], limit="x")  # type: ignore[arg-type]

    run(2000)
    blocks, rss = sys.getallocatedblocks(), _rss_kib()
    run(6250)  # 100k calls
    assert sys.getallocatedblocks() - blocks < 200
    assert _rss_kib() - rss < 8 * 1024


# ---- push_pairs: an encoded PushRequest's (id, payload) pairs, against upb ----------------------------
def _upb_pairs(data: bytes) -> Any:
    """What push_records gives without the C module: the pairs, or "refused" (DecodeError)."""
    try:
        return push.push_pairs(records_pb2.PushRequest.FromString(data))
    except DecodeError:
        return "refused"


def _c_pairs(data: Any) -> Any:
    assert fastprep is not None
    return fastprep.push_pairs(data)


def _same_as_upb(data: bytes, answered: bool = False) -> None:
    """C answers None or exactly what upb reads (and None when upb refuses); push_records gives upb's
    answer (or its DecodeError) with and without the C module."""
    want = _upb_pairs(data)
    if fastprep is not None:
        got = _c_pairs(data)
        if answered:
            assert got is not None, data
        if got is not None:
            assert want != "refused", data
            assert type(got) is list and all(type(p) is tuple and type(p[0]) is str and type(p[1]) is bytes
                                             for p in got)
            assert got == want, data
        # push_head answers exactly where push_pairs does: upb's dataset and number of records
        head = fastprep.push_head(data)
        if got is None:
            assert head is None, data
        else:
            assert head == (records_pb2.PushRequest.FromString(data).dataset, len(got)), data
            assert type(head[0]) is str
        # the Push handler's parser: the head of what C reads, else upb's message (or its error)
        if head is not None:
            parsed = push.parse_push_request(data)
            assert isinstance(parsed, push.EncodedPushRequest)
            assert (parsed.data, parsed.dataset, parsed.count) == (data, *head)
            assert push.push_pairs(parsed) == want
    if want == "refused":
        with pytest.raises(DecodeError):
            push.parse_push_request(data)
    elif fastprep is None or fastprep.push_head(data) is None:
        parsed = push.parse_push_request(data)
        assert isinstance(parsed, records_pb2.PushRequest) and push.push_pairs(parsed) == want
    for c in (fastprep, None):
        saved = push._fastprep
        push._fastprep = c  # type: ignore[assignment]
        try:
            if want == "refused":
                with pytest.raises(DecodeError):
                    push.push_records(data)
            else:
                assert push.push_records(data) == want
        finally:
            push._fastprep = saved  # type: ignore[assignment]


_pb_records = st.lists(st.builds(
    lambda rid, payload, version, deleted, modified: common_pb2.Record(
        id=rid, payload=payload, version=version, deleted=deleted, modified_us=modified),
    st.one_of(st.text(), _good_ids), st.binary(max_size=300),
    st.one_of(st.just(0), st.integers(0, 2**64 - 1)), st.booleans(),
    st.one_of(st.just(0), st.integers(-(2**63), 2**63 - 1))), max_size=50)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset=st.text(max_size=20), records_=_pb_records)
def test_push_pairs_reads_a_push_request_as_upb_does(dataset: str, records_: list[Any]) -> None:
    data = records_pb2.PushRequest(dataset=dataset, records=records_).SerializeToString()
    _same_as_upb(data, answered=True)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset=st.text(max_size=4), records_=_pb_records.map(lambda rs: rs[:4]),
       mutations=st.lists(st.tuples(st.sampled_from(["set", "insert", "delete", "cut", "twice"]),
                                    st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=3))
def test_push_pairs_of_mutated_requests(dataset: str, records_: list[Any], mutations: list[tuple[str, int, int]]
                                        ) -> None:
    data = records_pb2.PushRequest(dataset=dataset, records=records_).SerializeToString()
    for op, at, byte in mutations:
        data = _mutated(data, op, at, byte)
    _same_as_upb(data)


@settings(max_examples=1500, deadline=None)
@given(data=st.one_of(st.binary(max_size=60),
                      st.lists(st.sampled_from([b"\x0a", b"\x12", b"\x18", b"\x20", b"\x28", b"\x00", b"\x01", b"\x02",
                                                b"\x03", b"\x7f", b"\x80", b"\xff", b"a", b"\xc3\xa9", b"\xed\xa0\x80",
                                                b"\x0b", b"\x0c", b"\x1a", b"\x2a", b"\x30"]),
                               max_size=30).map(b"".join)))
def test_push_pairs_of_random_bytes(data: bytes) -> None:
    _same_as_upb(data)


def _len(b: bytes) -> bytes:
    return push._varint(len(b)) + b


def _rec(body: bytes) -> bytes:
    return b"\x12" + _len(body)


_PB_CASES: list[tuple[bytes, bool]] = [  # (a PushRequest's bytes, C answers it)
    (b"", True), (b"\x0a\x00", True), (b"\x0a\x05inbox", True), (_rec(b""), True), (_rec(b"") * 3, True),
    (_rec(b"\x0a\x01a\x0a\x01b"), True),  # the id twice: the last counts
    (_rec(b"\x12\x01x\x12\x00"), True), (_rec(b"\x0a\x01a\x12\x01x\x0a\x01b\x12\x01y"), True),
    (b"\x0a\x01a" + _rec(b"\x0a\x01r") + b"\x0a\x01b" + _rec(b"\x0a\x01s"), True),  # the dataset between records
    (_rec(b"\x18" + b"\xff" * 9 + b"\x01"), True), (_rec(b"\x28" + b"\xff" * 9 + b"\x01"), True),  # 64 bits
    (_rec(b"\x20\x02\x20\x00\x18\x01"), True), (_rec(b"\x0a\x04\xf4\x8f\xbf\xbf"), True),
    (_rec(b"\x0a\x03\xe4\xb8\xad\x12\x03\xff\xfe\x00"), True), (_rec(b"\x0a\x01\x00"), True),
    (_rec(b"\x12" + _len(b"p" * 300)), True), (_rec(b"\x0a" + _len("é".encode() * 200)), True),
    # what C leaves to upb (some of which upb reads, some it refuses)
    (b"\x0a\x02\xed\xa0", False), (b"\x0a\x02\xc3\x28", False), (b"\x0a\x01\x80", False), (b"\x0a\x02\xc0\x80", False),
    (_rec(b"\x0a\x03\xed\xa0\x80"), False), (_rec(b"\x0a\x04\xf4\x90\x80\x80"), False), (_rec(b"\x0a\x01\xff"), False),
    (_rec(b"\x0a\x01a\x0a\x01\xff"), False), (_rec(b"\x0a\x01\xff\x0a\x01a"), False),  # a bad id, then overwritten
    (_rec(b"\x18\x80"), False), (_rec(b"\x18\x80\x00"), False), (_rec(b"\x18" + b"\xff" * 9 + b"\x02"), False),
    (_rec(b"\x18" + b"\xff" * 10 + b"\x01"), False), (_rec(b"\x18" + b"\x80" * 9 + b"\x00"), False),
    (b"\x12\x80\x00", False), (b"\x12\x81\x00\x0a", False), (b"\x12\x05\x0a\x01a", False), (b"\x12", False),
    (b"\x0a", False), (b"\x0a\x05abc", False), (_rec(b"\x0a\x05abc"), False), (_rec(b"\x0a"), False),
    (_rec(b"\x12\xff\xff\xff\xff\x0f"), False), (b"\x12\xff\xff\xff\xff\x7f", False),
    (b"\x1a\x00", False), (b"\x18\x01", False), (b"\x08\x01", False), (b"\x0d\x00\x00\x00\x00", False),
    (b"\x11" + b"\x00" * 8, False), (b"\x10\x01", False), (b"\x13\x14", False), (b"\x0b\x0c", False), (b"\x00", False),
    (b"\x0c", False), (b"\x14", False), (b"\x8a\x00\x00", False), (b"\x92\x00\x00", False), (b"\xfa\x01\x00", False),
    (_rec(b"\x30\x01"), False), (_rec(b"\x32\x00"), False), (_rec(b"\x08\x01"), False), (_rec(b"\x10\x01"), False),
    (_rec(b"\x1a\x00"), False), (_rec(b"\x19" + b"\x00" * 8), False), (_rec(b"\x1d\x00\x00\x00\x00"), False),
    (_rec(b"\x0b\x0c"), False), (_rec(b"\x0c"), False), (_rec(b"\x00"), False), (_rec(b"\x8a\x00\x00"), False),
    (_rec(b"\xf8\xff\xff\xff\x0f\x00"), False),
]


@pytest.mark.parametrize(("data", "answered"), _PB_CASES)
def test_push_pairs_edge_cases(data: bytes, answered: bool) -> None:
    _same_as_upb(data, answered=answered)
    if fastprep is not None and not answered:
        assert _c_pairs(data) is None


@needs_c
def test_push_pairs_takes_only_bytes() -> None:
    data = records_pb2.PushRequest(dataset="d", records=[common_pb2.Record(id="a", payload=b"p")]).SerializeToString()
    assert _c_pairs(data) == [("a", b"p")]
    for other in (bytearray(data), memoryview(data), data.decode("latin-1"), None, 1, type("B", (bytes,), {})(data)):
        assert _c_pairs(other) is None
        assert fastprep is not None and fastprep.push_head(other) is None
    assert fastprep is not None
    with pytest.raises(TypeError):
        fastprep.push_pairs()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        fastprep.push_pairs(data, data)  # type: ignore[call-arg]


def test_push_records_of_the_bench_batch() -> None:
    reqs = [records_pb2.PushRequest(dataset="inbox", records=[
        common_pb2.Record(id=p["id"], payload=json.dumps(p, ensure_ascii=False).encode())
        for p in (person(i) for i in range(s, s + 500))]).SerializeToString() for s in (0, 500)]
    for data in reqs:
        _same_as_upb(data, answered=True)
    _same_as_upb(reqs[0] + reqs[1], answered=True)


# ---- gb11643_check: the GB 11643 check character, against node.validation._native's Python -----------
def _outcome(fn: Any, v: Any) -> Any:
    try:
        return ("value", fn(v))
    except Exception as exc:  # noqa: BLE001  # the same exception, type and message
        return (type(exc), str(exc))


def _same_check(v: Any) -> None:
    want = _outcome(native._gb11643_digits_check_py, v)
    assert _outcome(native._gb11643_digits_check, v) == want, repr(v)
    if fastprep is not None:
        assert _outcome(fastprep.gb11643_check, v) == want, repr(v)


def test_the_validator_uses_the_c_check_when_built() -> None:
    if fastprep is None:
        assert native._gb11643_digits_check is native._gb11643_digits_check_py
    else:
        assert native._gb11643_digits_check is fastprep.gb11643_check
        assert native.NATIVE_INLINE_ENV["ID_CHECK"] is fastprep.gb11643_check


@settings(max_examples=2000, deadline=None)
@given(first17=st.from_regex(r"[0-9]{17}", fullmatch=True), tail=st.text(max_size=3))
def test_gb11643_check_of_17_digits(first17: str, tail: str) -> None:
    _same_check(first17 + tail)
    if fastprep is not None:
        assert fastprep.gb11643_check(first17 + tail) == gb11643_check_char(first17)


class _Str(str):
    def __getitem__(self, key: Any) -> Any:
        return "1" * 17


@pytest.mark.parametrize("v", [
    "0" * 17, "9" * 17, "0" * 18, "9" * 18, "1" * 17 + "X", "11010519490101001X", "110105194901010013",
    "1" * 16, "", "1" * 16 + "a", "1" * 16 + "Z", "a" * 17, "-1234567890123456", "+1234567890123456",
    " 123456789012345 ", "1_234567890123456", "12345678901234567\u4e2d", "1234567890123456\u4e2d7",
    "\u0661" * 17, "123456789012345678\U0001f600", "\U0001f600" * 17, "1234567890123456\x00", "\u00bd" * 17,
    b"12345678901234567", bytearray(b"12345678901234567"), b"1" * 16 + b"x", _Str("abc"), _Str("1" * 20),
    None, 12345678901234567, 1.5, ["1"] * 17, ("1",) * 17, object(),
])
def test_gb11643_check_edge_cases(v: Any) -> None:
    _same_check(v)


@settings(max_examples=500, deadline=None)
@given(v=st.one_of(st.text(max_size=20), st.text("0123456789X+-_ \u0661", max_size=20), st.binary(max_size=20)))
def test_gb11643_check_of_any_text(v: Any) -> None:
    _same_check(v)


@needs_c
def test_gb11643_check_of_300000_random_numbers() -> None:
    assert fastprep is not None
    rnd = random.Random(11643)
    c, py = fastprep.gb11643_check, native._gb11643_digits_check_py
    for _ in range(300_000):
        v = str(rnd.randrange(10**17)).zfill(17) + rnd.choice("0123456789X")
        assert c(v) == py(v), v


@needs_c
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_push_pairs_push_head_and_gb11643_check_leak_nothing() -> None:
    assert fastprep is not None
    good = records_pb2.PushRequest(dataset="d", records=[common_pb2.Record(id=f"r{i}\u00e9", payload=b"p" * i)
                                                         for i in range(20)]).SerializeToString()
    inputs = [good, good[:-3], good + b"\x08\x01", b"", _rec(b"\x0a\x01\xff")]

    def run(rounds: int) -> None:
        for _ in range(rounds):
            for data in inputs:
                fastprep.push_pairs(data)
                fastprep.push_head(data)
            fastprep.gb11643_check("11010519490101001X")
            fastprep.gb11643_check(b"12345678901234567")
            with pytest.raises(ValueError):
                fastprep.gb11643_check("x" * 17)
            with pytest.raises(TypeError):
                fastprep.gb11643_check(None)  # type: ignore[arg-type]

    run(2000)
    blocks, rss = sys.getallocatedblocks(), _rss_kib()
    run(20000)
    assert sys.getallocatedblocks() - blocks < 200
    assert _rss_kib() - rss < 8 * 1024


def test_everything_works_without_the_c_module() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['node._fastprep'] = None\n"  # any import of it fails
        "import node.validation._native as n, node.transport.grpc._push as p, node.service._batch as b\n"
        "from node.validation import get_validator\n"
        "from node._generated.shulian.v1 import records_pb2, common_pb2\n"
        "assert n._gb11643_digits_check is n._gb11643_digits_check_py and p._fastprep is None and b._fastprep is None\n"
        "assert n._gb11643_digits_check('11010519490101001X') == n.gb11643_check_char('11010519490101001X')\n"
        "v = get_validator('fast')\n"
        "rec = {'id': 'q1', 'type': 'Person', 'identityNumber': '110105194901010013', 'name': 'x'}\n"
        "pairs = [('q1', b'{\"id\":\"q1\",\"name\":\"x\"}'), ('q2', b'{\"id\":\"q2\"}')]\n"
        "assert b.prepare_packed(v, 'd', 'Person', pairs) == b.pack(b.prepare_records(v, 'd', 'Person', pairs))\n"
        "print(v.fingerprint, v.validate(rec, 'Person').valid)\n"
        "d = records_pb2.PushRequest(records=[common_pb2.Record(id='a', payload=b'p')]).SerializeToString()\n"
        "assert p.push_records(d) == [('a', b'p')]\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == get_validator("fast").fingerprint
    rec = {"id": "q1", "type": "Person", "identityNumber": "110105194901010013", "name": "x"}
    assert out[1] == str(get_validator("fast").validate(rec, "Person").valid)
