"""Outgoing records: the C query path (node._fastread) gives exactly the bytes of the general
Python path (projection with the decision's projector, compact JSON, protobuf records, the batch
digest, the evidence lines), for random records and random decisions; the store's page readers
walk the records like iter_records; the wire framing is what protobuf writes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node._generated.shulian.v1 import common_pb2, records_pb2
from node.jsonenc import canonical_bytes, compact_bytes
from node.policy import Decision, MaskRule, ReasonCode
from node.policy.decision import _build, projection_plan
from node.service import DeliveryRecorder, OutBatch, batch_digest
from node.service._outgoing import RecordEncoder, accelerated
from node.store import EncodedPage, RawRow, Store
from node.store._reads import fast_module
from node.transport.grpc._helpers import batch_bytes, batch_message, query_response_bytes

FP = "fast/test/fingerprint"
needs_c = pytest.mark.skipif(not accelerated(), reason="the C accelerator node._fastread is not built")

# ---- strategies ------------------------------------------------------------------------------------

KEYS = ["id", "type", "name", "identityNumber", "birthDate", "sex", "x", "名称", "a b"]
ODD_KEYS = ['q"k', "k\\", "ctl\x01"]  # keys that need a JSON escape
plain = st.text(st.sampled_from("aZ09 -*./:王秀英名é😀\u2028\x7f"), max_size=24)  # needs no JSON escape
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
texts = st.one_of(plain, plain, plain, text, st.sampled_from(["", "*", "110105195001010004", "王秀英", "a\"b", "a\\b",
                                                              "\n", "e\u0301"]))
scalars = st.one_of(texts, texts, st.integers(-(2**70), 2**70), st.integers(-50, 50), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0, -1, 10**18, -(10**18)]))
values = st.one_of(scalars, scalars, scalars, scalars, scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(st.sampled_from(["a", "b"]), scalars, max_size=2))
rids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,12}", fullmatch=True)


@st.composite
def records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    rid = draw(rids)
    names = KEYS[1:] + (ODD_KEYS if draw(st.integers(0, 9)) == 0 else [])
    data = draw(st.dictionaries(st.sampled_from(names), values, max_size=7))
    if draw(st.booleans()):
        data["id"] = rid
    return rid, data


rules = st.one_of(st.just(MaskRule.redact()), st.builds(MaskRule.keep, st.integers(0, 5), st.integers(1, 5)),
                  st.builds(MaskRule.keep, st.integers(1, 5), st.just(0)))


@st.composite
def plans(draw: st.DrawFn) -> tuple[tuple[str, ...] | None, tuple[str, ...], tuple[tuple[str, MaskRule], ...]]:
    names = KEYS[1:] + (ODD_KEYS if draw(st.integers(0, 9)) == 0 else [])
    keys = None if draw(st.booleans()) else ("id", "type", *sorted(draw(st.sets(st.sampled_from(names[1:])))))
    withheld = () if keys is not None else tuple(sorted(draw(st.sets(st.sampled_from(names), max_size=3))))
    masked = draw(st.sets(st.sampled_from(names + (["id"] if draw(st.integers(0, 9)) == 0 else [])), max_size=3))
    return keys, withheld, tuple(sorted((k, draw(rules)) for k in masked))


def decision_of(keys: tuple[str, ...] | None, withheld: tuple[str, ...],
                masks: tuple[tuple[str, MaskRule], ...]) -> Decision:
    return Decision(True, ReasonCode.GRANTED, "d", "c", None, dt.date(2025, 1, 1),
                    items=None if keys is None else frozenset(keys[2:]), withheld=frozenset(withheld),
                    maskers=dict(masks), _projector=_build(keys, withheld, masks, None))


def rows_of(recs: list[tuple[str, dict[str, Any]]], deleted: list[bool]) -> list[RawRow]:
    return [(rid, i + 1, 1_700_000_000_000_000 + i, int(gone), None if gone else canonical_bytes(data), 1)
            for i, ((rid, data), gone) in enumerate(zip(recs, deleted, strict=True))]


def reference(decision: Decision, rows: list[RawRow]) -> tuple[bytes, bytes, bytes]:
    """The outgoing bytes written from the specification, independently of node.service._outgoing."""
    batch = common_pb2.RecordBatch()
    items: list[tuple[str, int, bool, bytes]] = []
    evidence = ""
    for rid, version, modified_us, gone, body, _ in rows:
        if gone or body is None:
            sent, payload = decision.apply({"id": rid}).get("id", rid), b""
            batch.records.add(id=sent, version=version, modified_us=modified_us, deleted=True)
        else:
            projected = decision.apply(json.loads(body))
            sent, payload = projected.get("id", rid), compact_bytes(projected)
            batch.records.add(id=sent, version=version, modified_us=modified_us, payload=payload)
        items.append((sent, version, bool(gone), payload))
        evidence += f"{rid}@{version}\n"
    digest = batch_digest("d", items)
    return batch.SerializeToString(), digest, evidence.encode()


# ---- the encoders ----------------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), recs=st.lists(records(), max_size=6), data=st.data())
def test_the_python_path_is_the_specification(plan: Any, recs: list[tuple[str, dict[str, Any]]],
                                               data: st.DataObject) -> None:
    decision = decision_of(*plan)
    rows = rows_of(recs, data.draw(st.lists(st.booleans(), min_size=len(recs), max_size=len(recs))))
    wire, digest, evidence = reference(decision, rows)
    out = RecordEncoder(decision, accelerate=False).encode(rows)
    assert (out.wire, out.digest, out.evidence) == (wire, digest, evidence)


@needs_c
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), recs=st.lists(records(), max_size=6), data=st.data())
def test_the_c_path_gives_the_same_bytes(plan: Any, recs: list[tuple[str, dict[str, Any]]],
                                         data: st.DataObject) -> None:
    decision = decision_of(*plan)
    rows = rows_of(recs, data.draw(st.lists(st.booleans(), min_size=len(recs), max_size=len(recs))))
    encoder = RecordEncoder(decision)
    assert encoder.encode(rows) == RecordEncoder(decision, accelerate=False).encode(rows)


@needs_c
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), data=st.data())
def test_the_c_path_handles_canonical_flat_records_itself(plan: Any, data: st.DataObject) -> None:
    simple = st.one_of(plain, st.integers(-(10**18) + 1, 10**18 - 1), st.none())
    recs = data.draw(st.lists(st.builds(lambda rid, d, with_id: (rid, {**d, **({"id": rid} if with_id else {})}),
                                        rids, st.dictionaries(st.sampled_from(KEYS[1:]), simple, max_size=7),
                                        st.booleans()), max_size=6))
    decision = decision_of(*plan)
    encoder = RecordEncoder(decision)
    if not encoder.accelerated:
        return
    rows = rows_of(recs, [False] * len(recs))
    called: list[RawRow] = []

    def general(row: RawRow) -> tuple[str, bytes]:
        called.append(row)
        return encoder.general(row)

    fast = fast_module()
    assert fast is not None
    assert fast.encode_batch(rows, encoder.plan, general, encoder.digest_prefix) == tuple(
        RecordEncoder(decision, accelerate=False).encode(rows))
    assert called == []


@needs_c
@pytest.mark.parametrize(("body", "handled"), [
    (b'{"id":"p1","identityNumber":"110105195001010004","name":"\xe7\x8e\x8b\xe7\xa7\x80\xe8\x8b\xb1"}', True),
    (b'{"id":"p1","name":"a\\"b"}', False),  # an escape
    (b'{"id":"p1","n":1.5}', False),  # a float
    (b'{"id":"p1","n":{"a":1}}', False),  # nested
    (b'{"id":"p1","n":12345678901234567890}', False),  # beyond 18 digits
    (b'{"id":"p1", "n":1}', False),  # not the canonical form
    (b'{"id":"p2","n":1}', False),  # the body's id is not the stored id
    (b'{"id":"p1","name":"x","name":"y"}', False),  # a duplicate key
])
def test_what_the_c_path_leaves_to_python(body: bytes, handled: bool) -> None:
    decision = decision_of(("id", "type", "identityNumber", "n", "name"), (),
                           (("identityNumber", MaskRule.keep(6, 4)),))
    encoder = RecordEncoder(decision)
    called: list[RawRow] = []

    def general(row: RawRow) -> tuple[str, bytes]:
        called.append(row)
        return encoder.general(row)

    row: RawRow = ("p1", 1, 5, 0, body, 1)
    fast = fast_module()
    assert fast is not None
    out = fast.encode_batch([row], encoder.plan, general, encoder.digest_prefix)
    assert bool(called) is not handled
    assert out == tuple(RecordEncoder(decision, accelerate=False).encode([row]))


def test_plans_the_c_path_does_not_take() -> None:
    hashed = Decision(True, ReasonCode.GRANTED, "d", "c", None, dt.date(2025, 1, 1), items=frozenset({"name"}),
                      maskers={"name": MaskRule.hash()},
                      _projector=_build(("id", "type", "name"), (), (("name", MaskRule.hash()),), b"k" * 32))
    assert not RecordEncoder(hashed).accelerated
    assert not RecordEncoder(decision_of(None, (), (("id", MaskRule.keep(1, 1)),))).accelerated
    assert not RecordEncoder(decision_of(("id", "type", 'q"k'), (), ())).accelerated


def test_a_projector_that_is_not_compiled_from_a_plan_is_called() -> None:
    leaky = Decision(True, ReasonCode.GRANTED, "d", "c", None, dt.date(2025, 1, 1), items=frozenset({"name"}),
                     maskers={"name": MaskRule.redact()}, _projector=lambda r: dict(r))
    assert leaky.plan is None and projection_plan(leaky.projector) is None
    encoder = RecordEncoder(leaky)
    assert not encoder.accelerated and not encoder.passthrough
    out = encoder.encode([("p1", 1, 5, 0, b'{"id":"p1","name":"x"}', 1)])
    assert common_pb2.RecordBatch.FromString(out.wire).records[0].payload == b'{"id":"p1","name":"x"}'


# ---- the store's page readers --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "s.db", durability="normal") as s:
        s.ensure_dataset("d", "Person")
        yield s


def _fill(store: Store) -> None:
    people = [(f"p{i:04d}", {"id": f"p{i:04d}", "type": "Person", "name": f"名{i}", "identityNumber": f"{i:018d}",
                             **({"score": 1.5} if i % 17 == 0 else {})}) for i in range(230)]
    store.upsert_many("d", people[:200], checked=FP)
    store.upsert_many("d", people[200:])  # around the boundary: not checked
    store.delete_many("d", ["p0003", "p0150"])
    store.upsert_many("d", [("p0010", {**people[10][1], "name": "改"})], checked=FP)


@pytest.mark.parametrize("since", [None, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)])
@pytest.mark.parametrize("limit", [None, 1, 64, 199])
@pytest.mark.parametrize("size", [1, 50, 64, 500])
def test_record_pages_walk_like_iter_records(store: Store, since: dt.datetime | None, limit: int | None,
                                             size: int) -> None:
    _fill(store)
    rows = [r for page in store.record_pages("d", fingerprint=FP, modified_since=since, limit=limit, page_size=size)
            for r in page]
    expected = list(store.iter_records("d", modified_since=since, limit=limit, page_size=size))
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (e.id, e.version, e.modified_us, e.body.encode() if e.body else None) for e in expected]
    assert [r[5] for r in rows] == [int(e.checked == FP) for e in expected]


def test_record_pages_by_ids_and_with_tombstones(store: Store) -> None:
    _fill(store)
    wanted = ["p0003", "p0010", "p0229", "nope", "p0150"]
    rows = [r for page in store.record_pages("d", fingerprint=FP, ids=wanted, include_deleted=True, page_size=2)
            for r in page]
    assert [(r[0], r[3], r[4] is None) for r in rows] == [
        ("p0003", 1, True), ("p0010", 0, False), ("p0150", 1, True), ("p0229", 0, False)]


@needs_c
@pytest.mark.parametrize("since", [None, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)])
@pytest.mark.parametrize("limit", [None, 64, 199])
@pytest.mark.parametrize("size", [1, 64, 500])
def test_encoded_pages_are_the_row_pages_encoded(store: Store, since: dt.datetime | None, limit: int | None,
                                                 size: int) -> None:
    _fill(store)
    decision = decision_of(("id", "type", "identityNumber", "name", "score"), (),
                           (("identityNumber", MaskRule.keep(6, 4)),))
    encoder = RecordEncoder(decision)
    python = RecordEncoder(decision, accelerate=False)
    fast: list[bytes] = []
    slow: list[bytes] = []
    for page in store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=encoder.general,
                                    digest_prefix=encoder.digest_prefix, modified_since=since, limit=limit,
                                    page_size=size):
        if isinstance(page, EncodedPage):
            expected = python.encode(next(store.record_pages("d", fingerprint=FP, ids=_ids(page.evidence),
                                                             page_size=size)))
            assert (page.digest, page.evidence) == (expected.digest, expected.evidence)
            fast.append(page.wire)
            slow.append(expected.wire)
        else:  # a page with a record to validate comes as rows
            assert any(not r[5] for r in page)
            fast.append(encoder.encode(page).wire)
            slow.append(python.encode(page).wire)
    assert fast == slow
    rows = [r for page in store.record_pages("d", fingerprint=FP, modified_since=since, limit=limit, page_size=size)
            for r in page]
    assert b"".join(fast) == python.encode(rows).wire


def _ids(evidence: bytes) -> list[str]:
    return [line.rpartition("@")[0] for line in evidence.decode().splitlines()]


@needs_c
def test_the_c_reader_is_closed_with_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.ensure_dataset("d", "Person")
    store.upsert("d", "p1", {"id": "p1"}, checked=FP)
    plan = RecordEncoder(decision_of(None, (), ())).plan
    assert [p.size for p in store.encoded_pages("d", fingerprint=FP, plan=plan, fallback=lambda r: ("", b""),
                                                digest_prefix=b"") if isinstance(p, EncodedPage)] == [1]
    store.close()
    with pytest.raises(Exception, match="closed"):
        list(store.encoded_pages("d", fingerprint=FP, plan=plan, fallback=lambda r: ("", b""), digest_prefix=b""))


# ---- framing and evidence ------------------------------------------------------------------------


def test_batch_framing_is_what_protobuf_writes() -> None:
    rows: list[RawRow] = [("p1", 1, 5, 0, b'{"id":"p1"}', 1), ("p2", 300, -7, 1, None, 1)]
    encoded = RecordEncoder(decision_of(None, (), ())).encode(rows)
    batch = OutBatch("population", encoded.wire, 2, "key1", b"s" * 64, evidence=encoded.evidence)
    expected = common_pb2.RecordBatch(dataset="population", provider="P", key_id="key1", signature=b"s" * 64)
    expected.records.add(id="p1", version=1, modified_us=5, payload=b'{"id":"p1"}')
    expected.records.add(id="p2", version=300, modified_us=-7, deleted=True)
    assert batch_bytes(batch, "P") == expected.SerializeToString()
    assert batch_message(batch, "P") == expected
    assert batch.records == [("p1", 1, 5, False, b'{"id":"p1"}'), ("p2", 300, -7, True, b"")]
    assert batch.pairs == [("p1", 1), ("p2", 300)]
    delivery = common_pb2.Delivery(reason="GRANTED", dataset="population", masking={"name": "redact"})
    response = records_pb2.QueryResponse.FromString(query_response_bytes(batch, "P", delivery))
    assert response == records_pb2.QueryResponse(batch=expected, delivery=delivery)
    assert records_pb2.QueryResponse.FromString(query_response_bytes(batch, "P")) == records_pb2.QueryResponse(
        batch=expected)


class _Evidence:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, kind: str, actor: str, details: dict[str, Any]) -> None:
        self.entries.append(details)


class _Core:
    def __init__(self) -> None:
        self.evidence = _Evidence()


@pytest.mark.parametrize("total", [3, 1000, 1001, 2500])
def test_delivery_evidence_names_or_digests_the_records(total: int) -> None:
    decision = decision_of(None, (), ())
    core = _Core()
    recorder = DeliveryRecorder(core, "c", "d", "grpc.query", "r1", decision)  # type: ignore[arg-type]
    pairs = [(f"p{i}", i % 7 + 1) for i in range(total)]
    for start in range(0, total, 400):
        chunk = pairs[start:start + 400]
        recorder.add("".join(f"{i}@{v}\n" for i, v in chunk).encode(), len(chunk))
    recorder.flush(final=True)
    (entry,) = core.evidence.entries
    assert entry["count"] == total
    if total <= 1000:
        assert entry["records"] == [[i, v] for i, v in pairs]
    else:
        assert entry["records_sha256"] == hashlib.sha256("".join(f"{i}@{v}\n" for i, v in pairs).encode()).hexdigest()
        assert (entry["first"], entry["last"]) == (list(pairs[0]), list(pairs[-1]))
