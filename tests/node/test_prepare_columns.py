"""Push's prepare step in the helper, by columns, against the step it stands for.

``prepare_packed`` (what node/service/_prepare_pool.py's helper runs) must answer exactly what
``pack(prepare_records(...))`` answers, for every batch: the common one goes through
node._fastprep.flat_columns and Validator.unclear_rows (no dict per record), anything else the
usual way. ``flat_columns`` must take exactly the batches ``flat_batch`` takes, with the same
bodies and digests, and its columns must hold what flat_batch's dicts hold.
"""

from __future__ import annotations

import gc
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fastprep import (
    _ODD_PAIRS,
    _PERSON_VARIANTS,
    _REFUSED,
    _TAKEN,
    _mutated,
    _rss_kib,
    _without_c,
    layout_pairs,
    needs_c,
    records,
)

import node.service._batch as batch
import node.service._prepare_pool as pool
from node.errors import InputError
from node.service._batch import compact, pack, prepare_packed, prepare_records
from node.store import PackedBodies, PackedDigests
from node.validation import MAX_RECORD_BYTES, Validator, get_validator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grpc"))
import grpc_testkit as kit  # noqa: E402  # the bench's records (bench/grpc_exchange.py)

fastprep: Any
try:
    from node import _fastprep as fastprep
except ImportError:
    fastprep = None

FAST = get_validator("fast")
PERSON_KEYS = frozenset(FAST.std.types["Person"].keys)
ALLOWED = PERSON_KEYS | {"id"}


def _run(fn: Any, *args: Any) -> Any:
    try:
        return ("value", fn(*args))
    except InputError as exc:
        return ("error", exc.message)
    except Exception as exc:  # noqa: BLE001  # what a payload of no known kind does, on both paths
        return (type(exc).__name__, str(exc))


def _same(pairs: list[Any], rtype: str = "Person", validator: Validator = FAST) -> Any:
    """prepare_packed against pack(prepare_records(...)): equal, and equal in every type and order."""
    new = _run(prepare_packed, validator, "inbox", rtype, pairs)
    old = _run(lambda *a: pack(prepare_records(*a)), validator, "inbox", rtype, pairs)
    assert new == old
    assert repr(new) == repr(old)  # bytes stay bytes, dicts in the same order
    return new


def _columns(pairs: list[Any], rtype: str = "Person", allowed: frozenset[str] = ALLOWED,
             hash_bodies: bool = True) -> Any:
    return fastprep.flat_columns(pairs, MAX_RECORD_BYTES, hash_bodies, allowed, rtype)


def _taken(pairs: list[Any], rtype: str = "Person") -> bool:
    """Whether the batch went by columns."""
    return batch._prepare_columns(FAST, "inbox", rtype, pairs) is not None


def _payload(rec: dict[str, Any]) -> bytes:
    return json.dumps(rec, ensure_ascii=False).encode()


def _bench_batch(start: int, n: int = 500, prefix: str = "p") -> list[tuple[str, bytes]]:
    return [(p["id"], _payload(p)) for p in (kit.person(i, prefix) for i in range(start, start + n))]


_MISSING = object()
# values for a Person key: mostly what kit.person has, else odd ones (each of the validator's outcomes)
_ODD_VALUES = ["", "x", "1", "2", "9", "0", "01", "99", "110000", "999999", "1949-02-30", "1950-01-01", "19500101",
               "11010519500101001X", "123", "秀英" * 30, " ", "\u2028", "é", 0, 1, -1, 10**17, 19500101, 110000,
               True, False, None, _MISSING]
_TYPES = [_MISSING, _MISSING, "Person", "Person", None, "LegalEntity", "person", "", 1, True, False, "Person "]


@st.composite
def persons(draw: st.DrawFn) -> tuple[str, bytes]:
    """A Person record as the bench pushes it, changed here and there: odd values (violations, a
    sex that breaks SexMatchesId: a warning), missing or null keys, a "type" or "@type" of any kind,
    keys the type does not have, any order, escapes, other ids, a duplicate key, a broken byte."""
    n = draw(st.integers(0, 10**6 - 1))
    rec: dict[str, Any] = kit.person(n, draw(st.sampled_from(["p", "q", "P.x-", "r~"])))
    rid = rec["id"]
    del rec["type"]
    for key in sorted(PERSON_KEYS):
        if draw(st.integers(0, 5)) == 0:
            value = draw(st.sampled_from([*_ODD_VALUES, "1" if rec[key] == "2" else "2"]))
            if value is _MISSING:
                del rec[key]
            else:
                rec[key] = value
    declared = draw(st.sampled_from(_TYPES))
    if declared is not _MISSING:
        rec["type"] = declared
    if draw(st.integers(0, 9)) == 0:
        rec["@type"] = draw(st.sampled_from(["Person", None, "LegalEntity", 1]))
    if draw(st.integers(0, 7)) == 0:
        rec[draw(st.sampled_from(["extra", "Type", "", "名", "ids", "i"]))] = draw(st.sampled_from(["v", None, 1, True]))
    where = draw(st.integers(0, 19))
    if where == 0:
        del rec["id"]
    elif where == 1:
        rec["id"] = draw(st.sampled_from([rid + "x", 7, None, ""]))
    items = draw(st.permutations(list(rec.items())))
    ensure_ascii = draw(st.integers(0, 5)) == 0
    sep = draw(st.sampled_from([(", ", ": "), (",", ":"), (" ,\n", " :\t")]))
    payload = json.dumps(dict(items), ensure_ascii=ensure_ascii, separators=sep).encode()
    odd = draw(st.integers(0, 29))
    if odd == 0 and items:  # a duplicate key
        key, value = draw(st.sampled_from(items))
        payload = payload[:-1] + b',' + json.dumps(key).encode() + b':' + json.dumps(value).encode() + b"}"
    elif odd == 1:
        payload = _mutated(payload, draw(st.sampled_from(["set", "insert", "delete", "cut"])),
                           draw(st.integers(0, 10**4)), draw(st.integers(0, 255)))
    elif odd == 2:
        rid = draw(st.sampled_from(["", "a b", "-a", rid + "\n"]))
    return rid, payload


_batches = st.lists(persons(), max_size=12)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=_batches, rtype=st.sampled_from(["Person", "Person", "Person", "LegalEntity", "Nope"]))
def test_packed_as_prepare_records_packs_it(pairs: list[tuple[str, bytes]], rtype: str) -> None:
    _same(pairs, rtype)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=_batches, picks=st.lists(st.integers(0, len(_PERSON_VARIANTS) - 1), max_size=6),
       extra=st.lists(records(), max_size=3), seed=st.integers(0, 2**32))
def test_packed_with_odd_and_hostile_records(pairs: list[Any], picks: list[int],
                                             extra: list[tuple[tuple[Any, Any], bool]], seed: int) -> None:
    mixed = pairs + [_PERSON_VARIANTS[p](i) for i, p in enumerate(picks)] + [pair for pair, _ in extra]
    random.Random(seed).shuffle(mixed)
    _same(mixed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch_=st.lists(records(), max_size=8))
def test_packed_of_generated_payloads(batch_: list[tuple[tuple[Any, Any], bool]]) -> None:
    _same([pair for pair, _ in batch_])


@pytest.mark.parametrize("payload", _REFUSED + _TAKEN)
def test_packed_of_edge_payloads(payload: bytes) -> None:
    _same([("a", payload)])
    _same([("a", b'{"id":"a"}'), ("a", payload), ("b", b'{"id":"b","type":"Person"}')])


@pytest.mark.parametrize("pair", _ODD_PAIRS)
def test_packed_of_odd_pairs(pair: Any) -> None:
    _same([pair, ("b", b'{"id":"b"}')])


def test_the_bench_batch_goes_by_columns() -> None:
    for start, prefix in ((0, "p"), (500, "q"), (20000, "r")):
        pairs = _bench_batch(start, prefix=prefix)
        packed = _same(pairs)[1]
        assert packed[2] == {} and packed[5] is None and packed[6] == {} and len(packed[3]) == 500
        assert _taken(pairs) is (fastprep is not None)
    _same([])
    _same(_bench_batch(0, 1))


def test_a_batch_of_every_outcome_goes_by_columns() -> None:
    people = [kit.person(i) for i in range(40)]
    people[1]["sex"] = "7"  # a violation
    people[2]["sex"] = "1" if people[2]["sex"] == "2" else "2"  # a warning (SexMatchesId)
    people[3]["type"] = "LegalEntity"  # declares another type: an error report
    people[4]["type"] = None  # as no type
    del people[5]["type"]
    people[6]["extra"] = "x"  # a key the type does not have (the shape is closed)
    people[7]["extra"] = None
    people[8]["name"] = None  # as no name: a violation
    del people[9]["ethnicity"]
    people[10]["birthDate"] = 19500101  # a number
    people[11]["@type"] = "Person"
    people[12]["sex"] = True
    people[13]["identityNumber"] = "110105195001010010"  # a wrong check character
    pairs = [(p["id"], _payload(p)) for p in people]
    packed = _same(pairs)[1]
    assert set(packed[2]) == {1, 3, 6, 8, 9, 10, 12, 13} and set(packed[6]) == {2}
    assert packed[2][3].error is not None and "LegalEntity" in packed[2][3].error
    assert _taken(pairs) is (fastprep is not None)
    assert _taken(pairs, "LegalEntity") is (fastprep is not None)
    _same(pairs, "LegalEntity")


def test_other_batches_take_the_usual_step() -> None:
    pairs = _bench_batch(0, 20)
    dup = pairs[:3] + [(pairs[3][0], pairs[3][1][:-1] + b', "sex": "1"}')]
    escaped = pairs[:3] + [(pairs[3][0], json.dumps(kit.person(3)).encode())]  # \u escapes
    text = pairs[:3] + [(pairs[3][0], pairs[3][1].decode())]
    for odd in (dup, escaped, text, iter(pairs)):
        assert not _taken(odd)  # type: ignore[arg-type]
    assert _taken(tuple(pairs)) is (fastprep is not None)
    for odd in (dup, escaped, text):
        _same(odd)
    assert not _taken(pairs, "Nope")
    _same(pairs, "Nope")  # an unknown type: the error reports
    shacl = get_validator("shacl")
    assert batch._prepare_columns(shacl, "inbox", "Person", pairs) is None
    _same(pairs[:3] + [(p["id"], _payload(p)) for p in (dict(kit.person(5), sex="7"),)], validator=shacl)


def test_without_the_c_module() -> None:
    pairs = _bench_batch(0, 50)
    with_c = _same(pairs)
    with _without_c():
        assert not _taken(pairs)
        assert _same(pairs) == with_c


def test_the_helper_prepares_by_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = _bench_batch(100, 30)
    pairs[4] = (pairs[4][0], pairs[4][1].replace(b'"sex": "', b'"sex": "7'))
    monkeypatch.setattr(pool, "_VALIDATOR", FAST)
    got = pool._prepare("inbox", "Person", b"data", lambda data: pairs)
    want = pack(prepare_records(FAST, "inbox", "Person", pairs))
    # bodies and digests come packed in one bytes each (node.store._packed), reading as the lists
    assert isinstance(got[4], PackedBodies) and isinstance(got[7], PackedDigests)
    assert (*got[:4], list(got[4]), *got[5:7], list(got[7])) == want and got[2].keys() == {4}
    assert [list(x) if i in (4, 7) else x for i, x in enumerate(compact(want))] == \
        [list(x) if i in (4, 7) else x for i, x in enumerate(got)]


# ---- flat_columns against flat_batch -------------------------------------------------------------------
def _check_columns(pairs: list[Any], rtype: str = "Person", allowed: frozenset[str] = ALLOWED) -> None:
    for hash_bodies in (True, False):
        got = _columns(pairs, rtype, allowed, hash_bodies)
        flat = fastprep.flat_batch(pairs, MAX_RECORD_BYTES, hash_bodies)
        assert (got is None) == (flat is None)
        if got is None:
            continue
        columns, odd, bodies, digests = got
        datas = flat[0]
        assert type(bodies) is list and bodies == flat[1] and digests == flat[2]
        assert columns["id"] == [rid for rid, _ in pairs] and all(type(i) is str for i in columns["id"])
        assert set(columns) == {"id"} | {k for d in datas for k in d if k in allowed and k not in ("id", "type")}
        for key, column in columns.items():
            assert type(column) is list and len(column) == len(pairs)
            if key != "id":
                expected = [d.get(key) for d in datas]
                assert [(type(v), v) for v in column] == [(type(v), v) for v in expected], key
        assert odd == [i for i, d in enumerate(datas)
                       if not set(d) <= allowed | {"id", "type"}
                       or ("type" in d and d["type"] is not None and d["type"] != rtype)]


@needs_c
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch_=st.lists(st.one_of(persons(), records().map(lambda r: r[0])), max_size=8),
       rtype=st.sampled_from(["Person", "LegalEntity", "", "type", "\U0001f600", "\ud800"]),
       allowed=st.sampled_from([ALLOWED, frozenset(), frozenset({"id", "type", "@type", "name", "a", "é"}),
                                PERSON_KEYS | {"extra", "名", ""}]))
def test_flat_columns_reads_what_flat_batch_reads(batch_: list[Any], rtype: str, allowed: frozenset[str]) -> None:
    _check_columns(batch_, rtype, allowed)


@needs_c
@pytest.mark.parametrize("payload", _REFUSED + _TAKEN)
def test_flat_columns_of_edge_payloads(payload: bytes) -> None:
    _check_columns([("a", payload)])
    _check_columns([("a", b'{"id":"a","b":1}'), ("a", payload)], allowed=frozenset({"b", "c", "", "\xe4\xb8\xad"}))


@needs_c
def test_flat_columns_of_many_keys_and_changing_layouts() -> None:
    pairs, _rnd = layout_pairs(5, types=True)
    for allowed in (frozenset(f"k{j}" for j in range(0, 40, 2)), frozenset(f"k{j}" for j in range(40)), frozenset()):
        _check_columns(pairs, "T", allowed)
    assert _columns(pairs[:3] + [("a", b'{"id":"a","b":1,"b":2}')]) is None
    assert _columns([("a", b'{"id":"a","b":1,"c":2}'), ("a", b'{"id":"a","b":1,"c":2,"c":3}')]) is None


@needs_c
def test_flat_columns_arguments() -> None:
    good = ("a", b'{"id":"a"}')
    assert _columns([]) == ({"id": []}, [], [], [])
    assert _columns([good], hash_bodies=False) == ({"id": ["a"]}, [], [b'{"id":"a"}'], None)
    assert _columns((good,)) is not None and _columns(iter([good])) is None  # type: ignore[arg-type]
    for args in ((), ([good], 10, True), ([good], 10, True, {"a"}, "Person"), ([good], 10, True, ALLOWED, None),
                 ([good], 10, True, ALLOWED, b"Person"), ([good], 10, True, ALLOWED, "Person", 1)):
        with pytest.raises(TypeError):
            fastprep.flat_columns(*args)


@needs_c
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_flat_columns_leaks_nothing() -> None:
    wide = {f"key{j}": "v" * (j % 7) for j in range(300)} | {"id": "w"}
    batches: list[Any] = [
        _bench_batch(0, 4),
        [_PERSON_VARIANTS[0](0), _PERSON_VARIANTS[6](1), _PERSON_VARIANTS[23](2), _PERSON_VARIANTS[4](3)],
        [("w", json.dumps(wide).encode())],
        [_PERSON_VARIANTS[0](0), _PERSON_VARIANTS[15](1)],  # a duplicate key, after a good record
        [_PERSON_VARIANTS[0](0), _PERSON_VARIANTS[13](1)],  # a float
        [("a", b'{"id":"a","type":"X","name":"\xe4\xb8\xad"}'), ("a\n", b'{"id":"a\\n"}')],
    ]
    allowed = ALLOWED | {f"key{j}" for j in range(0, 300, 3)}

    def run(rounds: int) -> None:
        for _ in range(rounds):
            for pairs in batches:
                _columns(pairs, allowed=allowed)
                _columns(pairs, "\ud800", allowed, hash_bodies=False)
            with pytest.raises(TypeError):
                _columns(batches[0], allowed={"a"})  # type: ignore[arg-type]

    run(1000)
    gc.collect()  # the TypeErrors' tracebacks are cycles: only what stays counts
    blocks, rss = sys.getallocatedblocks(), _rss_kib()
    run(4000)
    gc.collect()
    assert sys.getallocatedblocks() - blocks < 200
    assert _rss_kib() - rss < 8 * 1024
