"""Preparing pushed batches (node.service._batch) and its fast paths: each gives what the general
path gives. The prepare helper process (node.service._prepare_pool) prepares what this process does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InputError
from node.evidence._entry import canonical, entry_hash, entry_hash_encoded
from node.jsonenc import canonical_bytes
from node.service._batch import (
    REJECTED,
    EncodedRecords,
    PreparedBatch,
    RecordOutcome,
    _encode,
    pack,
    prepare_records,
    unpack,
)
from node.service._prepare_pool import PreparePool
from node.store import PackedBodies, PackedDigests, canonical_body, content_hash
from node.validation import (
    MAX_RECORD_BYTES,
    RecordReport,
    decode_flat,
    decode_json,
    decode_record,
    get_validator,
)


def person(i: int, prefix: str = "p", **extra: Any) -> dict[str, Any]:
    rec = {"id": f"{prefix}{i:06d}", "type": "Person", "identityNumber": "11010519491231002X", "name": f"张三{i}",
           "sex": "2", "ethnicity": "01", "birthDate": "1949-12-31", "householdDivision": "110000"}
    rec.update(extra)
    return rec


# ---- decoding ---------------------------------------------------------------------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8),
                         st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                           max_leaves=6)


def _general(payload: bytes) -> Any:
    try:
        return ("ok", decode_record(payload))
    except InputError as exc:
        return ("error", exc.message)


@settings(max_examples=300)
@given(obj=st.dictionaries(st.text(max_size=6), json_values, max_size=6), spaced=st.booleans())
def test_flat_decoding_gives_what_decode_record_gives(obj: dict[str, Any], spaced: bool) -> None:
    payload = json.dumps(obj, ensure_ascii=spaced, separators=(", ", ": ") if spaced else (",", ":")).encode()
    fast = decode_flat(payload)
    general = _general(payload)
    if fast is not None:
        assert general == ("ok", fast)
        assert [type(v) for v in fast.values()] == [type(v) for v in general[1].values()]
    flat = all(v is None or type(v) in (str, int, bool) for v in obj.values())
    if flat and all(not isinstance(v, int) or -(2**63) <= v < 2**64 for v in obj.values()):
        assert fast is not None  # the common record takes the fast path


@pytest.mark.parametrize("payload", [
    b'{"a": 123456789012345678901234567890}',  # beyond 64 bits: exact only on the general path
    b'{"a": 18446744073709551616}', b'{"a": -9223372036854775809}', b'{"a": 1.5}', b'{"a": 1e400}',
    b'{"a": NaN}', b'\xef\xbb\xbf{"a": "b"}', b'{"a": "\\ud800"}', b'{"a": "\xff"}', b'{"a": [1]}', b'{"a": {}}',
    b"[1, 2]", b'"text"', b"null", b'{"a": 1', b"",
])
def test_what_the_flat_path_leaves_to_decode_record(payload: bytes) -> None:
    assert decode_flat(payload) is None


@pytest.mark.parametrize("payload, value", [
    (b'{"a": 18446744073709551615}', 18446744073709551615), (b'{"a": -9223372036854775808}', -(2**63)),
    (b'{"a": 1000000000000000000}', 10**18), (b'{"a": "12345678901234567890123"}', "12345678901234567890123"),
    (b'{"a": -0}', 0), (b'{"a": "\\u0000\\n"}', "\x00\n"),
])
def test_flat_values_are_exact(payload: bytes, value: Any) -> None:
    fast = decode_flat(payload)
    assert fast == {"a": value} == decode_record(payload)


@pytest.mark.parametrize("text, value", [
    ("123456789012345678901234567890", 123456789012345678901234567890),
    ("-98765432109876543210", -98765432109876543210), ("9007199254740993", 9007199254740993),
    ('["1234567890123456789012", 12345678901234567890123]', ["1234567890123456789012", 12345678901234567890123]),
])
def test_long_integers_decode_exactly(text: str, value: Any) -> None:
    assert decode_json(text.encode()) == value


# ---- preparing --------------------------------------------------------------------------------------
def _reference(records: list[tuple[str, Any]]) -> list[tuple[str, str, tuple[Any, ...], str | None]]:
    """The per-record verdicts as NodeCore.prepare gave them before batches were encoded."""
    v = get_validator("fast")
    out = []
    for rid, payload in records:
        try:
            data = decode_record(payload) if isinstance(payload, bytes | str) else payload
        except InputError as exc:
            out.append((rid, REJECTED, (), f"payload: {exc.message}"))
            continue
        inner = data.get("id")
        rid = rid or (inner if isinstance(inner, str) else "")
        report = v.validate(data, "Person")
        if not report.valid:
            out.append((rid, REJECTED, report.violations, report.error))
        else:
            out.append((rid, "good", report.violations, None))
    return out


def _mixed_batch() -> list[tuple[str, Any]]:
    return [
        *((f"p{i:06d}", json.dumps(person(i), ensure_ascii=False).encode()) for i in range(5)),
        ("p000100", json.dumps(person(100, sex="7")).encode()),                         # a violation
        ("p000101", json.dumps(person(101, sex="1"), ensure_ascii=False).encode()),     # a warning only
        ("p000102", b'{"id": "p000102", "name": '),                                     # not JSON
        ("p000103", json.dumps(person(103, big=12345678901234567890123)).encode()),     # a long integer
        ("", json.dumps(person(104), ensure_ascii=False).encode()),                     # the id from the payload
        ("p000105", person(105)),                                                       # already decoded
        ("p000106", json.dumps(person(106), ensure_ascii=False)),                       # text
        ("p000107", json.dumps(person(107, score=1.25)).encode()),                      # a float
    ]


def test_prepare_records_gives_the_verdicts_and_the_stored_bytes() -> None:
    records = _mixed_batch()
    prepared = prepare_records(get_validator("fast"), "inbox", "Person", records)
    reference = _reference(records)
    assert [o is None for o in prepared.outcomes] == [r[1] == "good" for r in reference]
    for i, (rid, verdict, violations, error) in enumerate(reference):
        outcome = prepared.outcomes[i]
        if verdict == REJECTED:
            assert outcome is not None and (outcome.id, outcome.violations, outcome.error) == (rid, violations, error)
        else:
            assert prepared.warnings.get(i, ()) == violations
    assert 6 in prepared.warnings and "p000104" in prepared.good_ids()
    assert prepared.bodies is not None and prepared.digests is not None
    for (rid, data), body, digest in zip(prepared.good, prepared.bodies, prepared.digests, strict=True):
        assert body == canonical_body(data).encode() and digest == content_hash(canonical_body(data))
        assert data["id"] == rid


_VARIANTS: list[tuple[str, Any]] = [
    ("p000001", json.dumps(person(1), ensure_ascii=False).encode()),                # clean
    ("p000002", json.dumps(person(2), separators=(",", ":")).encode()),             # clean, compact, escaped
    ("p000003", json.dumps(person(3, sex="7")).encode()),                           # a violation
    ("p000004", json.dumps(person(4, sex="1"), ensure_ascii=False).encode()),       # a warning only
    ("p000005", json.dumps({k: v for k, v in person(5).items() if k != "name"}).encode()),  # a missing item
    ("p000006", json.dumps(person(6, type="Organization")).encode()),               # another type declared
    ("p000007", json.dumps({k: v for k, v in person(7).items() if k != "type"}).encode()),  # no type
    ("p000008", json.dumps(person(8, id="p000999")).encode()),                      # the ids differ
    ("", json.dumps(person(9)).encode()),                                           # the id from the payload
    ("bad id!", json.dumps(person(10, id="bad id!")).encode()),                     # a bad id
    ("p000011", json.dumps({k: v for k, v in person(11).items() if k != "id"}).encode()),  # no id inside
    ("p000012", json.dumps(person(12, big=12345678901234567890123)).encode()),      # a long integer
    ("p000013", json.dumps(person(13, score=1.5)).encode()),                        # a float
    ("p000014", json.dumps(person(14, tags=["a"])).encode()),                       # nested
    ("p000015", b"[1, 2]"), ("p000016", b'{"id": "p000016", '), ("p000017", b"\xff"),  # not a record, not JSON
    ("p000018", json.dumps(person(18, name="x" * MAX_RECORD_BYTES)).encode()),      # too large
    ("p000019", json.dumps(person(19), ensure_ascii=False)),                        # text
    ("p000020", person(20)),                                                        # already decoded
    ("p000021", json.dumps(person(21, id=21)).encode()),                            # a number for an id
    ("p000022", json.dumps(person(22, sex=None)).encode()),                         # null
]


def _general_prepare(records: list[tuple[str, Any]]) -> PreparedBatch:
    import node.service._batch as batch

    real = batch._prepare_flat
    batch._prepare_flat = lambda *args: None  # type: ignore[assignment]
    try:
        return prepare_records(get_validator("fast"), "inbox", "Person", records)
    finally:
        batch._prepare_flat = real


@settings(max_examples=150, deadline=None)
@given(picks=st.lists(st.sampled_from(range(len(_VARIANTS))), min_size=1, max_size=12),
       common=st.integers(0, 2))
def test_the_common_batch_path_gives_what_the_general_path_gives(picks: list[int], common: int) -> None:
    records = [_VARIANTS[i] for i in picks]
    if common:  # batches made only of what the fast path takes (clean, violations, warnings ...)
        records = [_VARIANTS[i % (7 if common == 1 else 2)] for i in picks]
    fast = prepare_records(get_validator("fast"), "inbox", "Person", records)
    general = _general_prepare(records)
    assert (fast.dataset, fast.outcomes, list(fast.good), fast.good_at, fast.warnings, fast.bodies, fast.digests) == (
        general.dataset, general.outcomes, list(general.good), general.good_at, general.warnings, general.bodies,
        general.digests)
    unhashed = prepare_records(get_validator("fast"), "inbox", "Person", records, hash_bodies=False)
    assert unhashed.digests is None and unhashed.bodies == general.bodies


def test_the_common_batch_path_is_taken_for_the_common_batch() -> None:
    from node.service._batch import _prepare_flat

    validator = get_validator("fast")
    taken = (0, 1, 2, 3, 4, 5, 6, 21)  # flat objects carrying their good id (a null is a flat value)
    common = [_VARIANTS[i] for i in taken]
    assert _prepare_flat(validator, "inbox", "Person", common, True, []) is not None
    for odd in sorted(set(range(len(_VARIANTS))) - set(taken)):
        batch = [*common, _VARIANTS[odd]]
        assert _prepare_flat(validator, "inbox", "Person", batch, True, []) is None, _VARIANTS[odd][0]


@pytest.mark.parametrize("payload", [b'{"b": 12345678901234567890123, "a": 1}', b'{"b": 1.25e-7, "a": [1, {"z": 2.0}]}',
                                     b'{"b": "\u00e9\u2028", "a": null}'])
def test_encoding_a_decoded_record_is_canonical(payload: bytes) -> None:
    data = decode_record(payload)
    assert _encode(data, True) == _encode(data, False) == canonical_bytes(data)


class _AcceptAll:
    def validate_many(self, records: list[Any], record_type: str) -> list[RecordReport]:
        return [RecordReport(None, record_type, True) for _ in records]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object()])
def test_a_record_that_cannot_be_encoded_fails_the_batch(value: Any) -> None:
    """As upsert_many does: a mapping payload the store cannot hold is an InputError, not a crash."""
    with pytest.raises(InputError, match="not JSON-serialisable"):
        prepare_records(_AcceptAll(), "inbox", "Person", [("p000001", {"id": "p000001", "x": value})])  # type: ignore[arg-type]


def test_pack_and_unpack_keep_the_batch() -> None:
    prepared = prepare_records(get_validator("fast"), "inbox", "Person", _mixed_batch())
    unhashed = prepare_records(get_validator("fast"), "inbox", "Person", _mixed_batch(), hash_bodies=False)
    assert unhashed.digests is None and unhashed.bodies == prepared.bodies
    back = unpack(pack(unhashed))
    assert (back.dataset, back.outcomes, back.good_at, back.warnings, back.bodies, back.digests) == (
        prepared.dataset, prepared.outcomes, prepared.good_at, prepared.warnings, prepared.bodies, None)
    assert prepared.digests is not None and unpack(pack(prepared)).digests == prepared.digests
    assert isinstance(back.good, EncodedRecords) and back.good_ids() == prepared.good_ids()
    assert list(back.good) == [(i, json.loads(canonical_body(d))) for i, d in prepared.good]
    assert back.good[1] == prepared.good[1] and back.good[1:3] == list(prepared.good[1:3])
    all_good = prepare_records(get_validator("fast"), "inbox", "Person", _mixed_batch()[:5])
    assert pack(all_good)[5] is None and unpack(pack(all_good)).good_at == [0, 1, 2, 3, 4]
    broken = (*pack(all_good)[:3], all_good.good_ids()[:4], *pack(all_good)[4:])
    with pytest.raises(RuntimeError, match="inconsistent"):
        unpack(broken)  # type: ignore[arg-type]
    short_digests = (*pack(all_good)[:7], (all_good.digests or [])[:4])
    with pytest.raises(RuntimeError, match="inconsistent"):
        unpack(short_digests)


def test_a_prepared_batch_made_by_hand_still_commits() -> None:
    """PreparedBatch keeps its original five fields (without bodies the store encodes ``good``)."""
    batch = PreparedBatch("inbox", [None, RecordOutcome("x", REJECTED, error="e")], [("p1", {"id": "p1"})], [0], {})
    assert batch.bodies is None and batch.digests is None and batch.good_ids() == ["p1"]


# ---- the helper process ------------------------------------------------------------------------------
def split_json_lines(data: bytes) -> list[tuple[str, bytes]]:
    """A splitter for the tests: one record per line, id taken from the JSON."""
    return [("", line) for line in data.splitlines() if line]


@pytest.mark.integration
def test_the_helper_prepares_what_this_process_prepares() -> None:
    validator = get_validator("fast")
    pool = PreparePool(validator)
    assert PreparePool.supported(validator) == ((os.cpu_count() or 1) > 1)
    try:
        pool.start(split_json_lines)
        deadline = time.monotonic() + 120
        while not pool.available():
            assert time.monotonic() < deadline, "the helper did not start"
            time.sleep(0.05)
        records = [json.dumps(person(i, sex="1" if i % 3 else "2"), ensure_ascii=False).encode() for i in range(200)]
        records[7] = b'{"id": "p000007", "sex": "x"}'
        data = b"\n".join(records)
        here = prepare_records(validator, "inbox", "Person", split_json_lines(data))
        there = unpack(pool.submit("inbox", "Person", data, split_json_lines).result(timeout=60))
        assert there.bodies is not None and there.digests is not None
        assert (there.outcomes, there.good_at, there.warnings, list(there.bodies), list(there.digests)) == (
            here.outcomes, here.good_at, here.warnings, here.bodies, here.digests)  # hashed in the helper
        # bodies and digests come back in one bytes each (two objects to unpickle, not two per record)
        assert isinstance(there.bodies, PackedBodies) and isinstance(there.digests, PackedDigests)
        assert there.good_ids() == here.good_ids()
        pool.fail(RuntimeError("test"))
        assert not pool.available()
        with pytest.raises(RuntimeError, match="not running"):
            pool.submit("inbox", "Person", data, split_json_lines)
    finally:
        pool.close()


@pytest.mark.integration
def test_the_helper_exits_when_the_node_is_killed() -> None:
    script = textwrap.dedent("""
        import sys, time
        from node.service._prepare_pool import PreparePool
        from node.validation import get_validator
        pool = PreparePool(get_validator("fast"))
        pool.start()
        while not pool.available():
            time.sleep(0.05)
        print(pool._started.result(), flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        helper = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 30
        while _alive(helper):
            assert time.monotonic() < deadline, "the helper outlived the node"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---- evidence encoding -------------------------------------------------------------------------------
plain = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text()),
                     lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
                     max_leaves=12)


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@settings(max_examples=300)
@given(value=st.one_of(plain, st.dictionaries(st.text(), st.one_of(plain, st.floats(allow_nan=False),
                                                                  st.tuples(st.integers(), st.text())))))
def test_evidence_json_is_the_stdlib_encoding(value: Any) -> None:
    try:
        expected = _stdlib(value)
    except (TypeError, ValueError):
        with pytest.raises((TypeError, ValueError)):
            canonical(value)
        return
    assert canonical(value) == expected


def test_evidence_json_refuses_what_the_stdlib_refuses() -> None:
    for bad in ({"a": float("nan")}, {"a": "\ud800"}, {"a": {1, 2}}, {1: "a", "b": 2}):
        with pytest.raises((TypeError, ValueError)):
            canonical(bad)


@given(details=plain, seq=st.integers(1, 2**40), texts=st.tuples(st.text(), st.text(), st.text(), st.text()))
def test_entry_hash_over_encoded_details_is_the_entry_hash(details: Any, seq: int,
                                                           texts: tuple[str, str, str, str]) -> None:
    time_, kind, actor, key = texts
    prev = "ab" * 32
    try:
        encoded = canonical({"d": details})
    except (TypeError, ValueError):
        return
    assert entry_hash_encoded(seq=seq, time=time_, kind=kind, actor=actor, details_json=encoded, prev_hash=prev,
                              key_id=key) == entry_hash(seq=seq, time=time_, kind=kind, actor=actor,
                                                        details={"d": details}, prev_hash=prev, key_id=key)
