"""Adversarial tests of the C query path (node._fastread) against the general Python path.

Hostile rows are put straight into the store's ``records`` table with sqlite3 (random bytes,
truncated JSON, invalid UTF-8, escapes, nested values, huge integers, duplicate keys, very long
strings, empty bodies, non-object JSON, a body whose id is not the row's, NUL bytes, columns of the
wrong type): the C reader must never crash and must give exactly what the Python path gives, or
fail with the same error. Random plans (allow-lists, withheld items, keep:F:L beyond the value's
length, redact) are held to the Python projector. The C reader runs while other threads write,
read and close the store. Without the extension (or with a stale one) the Python path does it all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node._generated.shulian.v1 import common_pb2
from node.errors import IntegrityError, Unavailable
from node.jsonenc import canonical_bytes, compact_bytes
from node.policy import Decision, MaskRule, ReasonCode
from node.policy.decision import _build
from node.service import batch_digest
from node.service._outgoing import RecordEncoder, accelerated
from node.store import EncodedPage, RawRow, Store
from node.store._reads import fast_module
from node.store._schema import records_table

FP = "fuzz/fingerprint"
REPO = Path(__file__).resolve().parents[2]
needs_c = pytest.mark.skipif(not accelerated(), reason="the C accelerator node._fastread is not built")

Plan = tuple[tuple[str, ...] | None, tuple[str, ...], tuple[tuple[str, MaskRule], ...]]
# (id, version, modified_us, deleted, body, checked, body stored as TEXT) as put in the table
Row = tuple[Any, Any, Any, Any, Any, Any, bool]


def decision_of(keys: tuple[str, ...] | None, withheld: tuple[str, ...],
                masks: tuple[tuple[str, MaskRule], ...]) -> Decision:
    return Decision(True, ReasonCode.GRANTED, "d", "c", None, dt.date(2025, 1, 1),
                    items=None if keys is None else frozenset(keys), withheld=frozenset(withheld),
                    maskers=dict(masks), _projector=_build(keys, withheld, masks, None))


def put(path: Path, rows: list[Row], *, ids_as_text: bool = True) -> None:
    """Replace the records of dataset ``d`` with ``rows``, straight into the table."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        table = records_table(conn.execute("SELECT num FROM datasets WHERE id = 'd'").fetchone()[0])
        conn.execute(f"DELETE FROM {table}")
        for seq, (rid, version, modified, deleted, body, checked, as_text) in enumerate(rows, 1):
            ident = "CAST(? AS TEXT)" if ids_as_text and isinstance(rid, bytes) else "?"
            value = "CAST(? AS TEXT)" if as_text and body is not None else "?"
            conn.execute(f"INSERT INTO {table} (id, version, hash, body, deleted, modified_us, seq, checked) "
                         f"VALUES ({ident}, ?, x'', {value}, ?, ?, ?, ?)",
                         (rid, version, body, deleted, modified, seq, checked))
        conn.execute("COMMIT")


Outcome = tuple[list[tuple[bytes, bytes, bytes]], tuple[str, str] | None]


def _collect(pages: Callable[[], Any]) -> Outcome:
    """The pages a read gives and, when it fails, the error (class and message) it ends with."""
    out: list[tuple[bytes, bytes, bytes]] = []
    try:
        for page in pages():
            out.append(page)
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return out, (type(exc).__name__, str(exc))
    return out, None


def python_path(store: Store, decision: Decision, page_size: int, **kw: Any) -> Outcome:
    encoder = RecordEncoder(decision, accelerate=False)

    def pages() -> Any:
        for page in store.record_pages("d", fingerprint=FP, page_size=page_size, **kw):
            yield tuple(encoder.encode_python(page))

    return _collect(pages)


def c_path(store: Store, decision: Decision, page_size: int, **kw: Any) -> Outcome:
    """What ReadSession.query does: pages read and encoded in C, pages with rows to check as rows."""
    encoder = RecordEncoder(decision)

    def pages() -> Any:
        if not encoder.accelerated:
            for rows in store.record_pages("d", fingerprint=FP, page_size=page_size, **kw):
                yield tuple(encoder.encode(rows))
            return
        for page in store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=encoder.general,
                                        digest_prefix=encoder.digest_prefix, page_size=page_size, **kw):
            yield (page.wire, page.digest, page.evidence) if isinstance(page, EncodedPage) else tuple(
                encoder.encode(page))

    return _collect(pages)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One store for the property tests (each example replaces the dataset's rows)."""
    path = tmp_path_factory.mktemp("fastread") / "s.db"
    with Store(path, durability="normal") as store:
        store.ensure_dataset("d", "Person")
        yield store


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "s.db", durability="normal") as s:
        s.ensure_dataset("d", "Person")
        yield s


# ---- strategies ------------------------------------------------------------------------------------

KEYS = ["id", "type", "a", "b", "名", "x y", ""]
rids = st.one_of(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True),
                 st.sampled_from(["名1", "a\x00b", "a\nb", "x@1", "🙂", "z" * 300]))
# the pieces of a body near the canonical form the C path handles itself
string_bodies = st.one_of(
    st.text(st.sampled_from("aZ09 -*./:王秀英é😀\u2028\x7f"), max_size=12).map(lambda s: s.encode()),
    st.sampled_from([b"", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe4\xb8", b"\\n",
                     b"\\u00e9", b"\\ud800", b"\\\"", b"\x01", b"\x00", b"\x1f", b"a\\", b"\xef\xbf\xbe"]),
    st.integers(0, 70_000).map(lambda n: "é".encode() * n))
key_tokens = st.one_of(st.sampled_from(KEYS).map(lambda k: b'"' + k.encode() + b'"'),
                       string_bodies.map(lambda s: b'"' + s + b'"'))
value_tokens = st.one_of(
    string_bodies.map(lambda s: b'"' + s + b'"'),
    st.integers(-(10**25), 10**25).map(lambda i: str(i).encode()),
    st.integers(-(10**18) + 1, 10**18 - 1).map(lambda i: str(i).encode()),
    st.sampled_from([b"true", b"false", b"null", b"-0", b"01", b"-01", b"1.5", b"1e5", b"-", b"+1", b"truex", b"nul",
                     b"tru", b"NaN", b"Infinity", b"{}", b"[]", b'{"k":1}', b"[1,[2]]", b'""', b"0", b"-1",
                     b"999999999999999999", b"1000000000000000000", b"-999999999999999999"]))


@st.composite
def flat_bodies(draw: st.DrawFn, rid: str) -> bytes:
    """A flat JSON object assembled from tokens (often canonical), then maybe damaged."""
    members = draw(st.lists(st.tuples(key_tokens, value_tokens), max_size=6))
    if draw(st.booleans()):
        own = rid if draw(st.integers(0, 4)) else draw(st.sampled_from(["other", "", rid + "x"]))
        members.insert(draw(st.integers(0, len(members))), (b'"id"', b'"' + own.encode() + b'"'))
    if members and draw(st.integers(0, 5)) == 0:  # a duplicate key
        members.append((members[0][0], draw(value_tokens)))
    sep, colon = (b",", b":") if draw(st.integers(0, 7)) else draw(st.sampled_from([(b", ", b":"), (b",", b": ")]))
    body = b"{" + sep.join(k + colon + v for k, v in members) + b"}"
    damage = draw(st.integers(0, 9))
    if damage == 0 and body:  # truncated
        body = body[:draw(st.integers(0, len(body) - 1))]
    elif damage == 1:  # a stray byte
        i = draw(st.integers(0, len(body)))
        body = body[:i] + draw(st.binary(min_size=1, max_size=1)) + body[i:]
    elif damage == 2:  # surrounding whitespace or garbage
        body = draw(st.sampled_from([b" ", b"\n", b""])) + body + draw(st.sampled_from([b" ", b"x", b"\x00", b"}"]))
    return body


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8)
                           | st.floats(allow_nan=False, allow_infinity=False),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                       max_size=3), max_leaves=6)


@st.composite
def bodies(draw: st.DrawFn, rid: str) -> bytes | None:
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        return draw(flat_bodies(rid))
    if kind == 6:  # what the store writes, of any shape
        data = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5))
        if draw(st.booleans()):
            data["id"] = rid
        return canonical_bytes(data)
    if kind == 7:
        return draw(st.binary(max_size=40))
    if kind == 8:
        return draw(st.sampled_from([b"", b"[]", b"[1,2]", b"null", b"5", b'"s"', b"{}", b" {}", b"{}\x00", b"{\x00}",
                                     b'{"id":"a"}', b'["id"]', b"true", b"\xef\xbb\xbf{}"]))
    return None  # a body-less row (a tombstone when deleted, else a record without a body)


@st.composite
def store_rows(draw: st.DrawFn) -> list[Row]:
    ids = draw(st.lists(rids, unique=True, max_size=7))
    all_checked = draw(st.booleans())  # else pages with a row to validate come as rows
    rows: list[Row] = []
    for i, rid in enumerate(sorted(ids)):
        body = draw(bodies(rid))
        checked = FP if all_checked else draw(st.sampled_from([FP, FP, FP, None, "other", FP.encode(), FP + "\x00"]))
        rows.append((rid, i + 1, 1_700_000_000_000_000 + i, int(body is None), body, checked, draw(st.booleans())))
    return rows


keep_counts = st.one_of(st.integers(0, 6), st.integers(0, 70_000), st.just(10**30))
rules = st.one_of(st.just(MaskRule.redact()),
                  st.tuples(keep_counts, keep_counts).filter(lambda fl: fl != (0, 0)).map(lambda fl: MaskRule.keep(*fl)))


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    names = KEYS + (["q\"k", "k\\", "ctl\x01"] if draw(st.integers(0, 9)) == 0 else [])
    keys = None if draw(st.booleans()) else tuple(draw(st.lists(st.sampled_from(names), max_size=6)))
    withheld = () if keys is not None else tuple(draw(st.lists(st.sampled_from(names), max_size=3)))
    masked = draw(st.lists(st.sampled_from(names[1:] + (["id"] if draw(st.integers(0, 9)) == 0 else [])),
                           max_size=4))
    return keys, withheld, tuple((k, draw(rules)) for k in masked)


# ---- hostile rows ------------------------------------------------------------------------------------


@needs_c
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=store_rows(), plan=plans(), page_size=st.sampled_from([1, 2, 3, 500]))
def test_hostile_rows_in_the_store_read_as_on_the_python_path(shared: Store, rows: list[Row], plan: Plan,
                                                              page_size: int) -> None:
    put(shared.path, rows)
    decision = decision_of(*plan)
    assert c_path(shared, decision, page_size) == python_path(shared, decision, page_size)


@needs_c
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=store_rows(), plan=plans(), data=st.data())
def test_hostile_rows_in_encode_batch(rows: list[Row], plan: Plan, data: st.DataObject) -> None:
    """encode_batch on rows as the store gives them and on rows it never gives (it leaves those to Python)."""
    raw: list[Any] = [(rid, version, modified, deleted, body, 1) for rid, version, modified, deleted, body, _, _ in rows]
    odd = [("n", -1, 0, 0, b"{}", 1), ("n", 2**64, 0, 0, b"{}", 1), ("n", True, 0, 0, b"{}", 1),
           ("n", 1.5, 0, 0, b"{}", 1), ("n", 1, 2**63, 0, b"{}", 1), ("n", 1, -(2**63) - 1, 0, b"{}", 1),
           ("\ud800", 1, 0, 0, b"{}", 1), (b"n", 1, 0, 0, b"{}", 1), ("n", 1, 0, 0, "{}", 1),
           ("n", 1, 0, 0, bytearray(b"{}"), 1), ["n", 1, 0, 0, b"{}", 1], ("n", 1, 0, 0), ("n", 1, 0, "x", b"{}", 1),
           ("n", 1, 0, None, b"{}", 1), ("n", 1, 0, 2.0, b"{}", 1), ("n", 2**64 - 1, -1, 2**70, b"{}", 1),
           ("n", 0, 0, False, b"", 1), ("", 0, 0, 0, None, 1)]
    for _ in range(data.draw(st.integers(0, 2))):
        raw.insert(data.draw(st.integers(0, len(raw))), data.draw(st.sampled_from(odd)))
    decision = decision_of(*plan)
    fast = RecordEncoder(decision)
    slow = RecordEncoder(decision, accelerate=False)
    assert _collect(lambda: [tuple(fast.encode(raw))]) == _collect(lambda: [tuple(slow.encode_python(raw))])


@needs_c
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), data=st.data())
def test_random_plans_on_flat_records_are_the_projector_and_stay_in_c(plan: Plan, data: st.DataObject) -> None:
    """On the bodies the store writes (flat, canonical) C does the projection itself, as the projector does."""
    value = st.one_of(st.text(st.sampled_from("aZ09 -*./:王秀英é😀\u2028\x7f"), max_size=30),
                      st.integers(-(10**18) + 1, 10**18 - 1), st.none(), st.booleans())
    recs = data.draw(st.lists(st.tuples(rids, st.dictionaries(st.sampled_from(KEYS[1:]), value, max_size=6)),
                              max_size=5))
    decision = decision_of(*plan)
    encoder = RecordEncoder(decision)
    rows: list[RawRow] = [(rid, i + 1, i, 0, canonical_bytes({**d, "id": rid}), 1) for i, (rid, d) in enumerate(recs)]
    called: list[RawRow] = []

    def general(row: RawRow) -> tuple[str, bytes]:
        called.append(row)
        return encoder.general(row)

    expected = tuple(RecordEncoder(decision, accelerate=False).encode_python(rows))
    if not encoder.accelerated:
        assert tuple(encoder.encode(rows)) == expected
        return
    fast = fast_module()
    assert fast is not None
    assert fast.encode_batch(rows, encoder.plan, general, encoder.digest_prefix) == expected
    # only an escape (in an id such as "a\x00b") or a keep rule on true/false (str(True) is "True") needs Python
    kept = {k for k, r in plan[2] if r.keep_first or r.keep_last}
    assert all(b"\\" in body or any(type(v) is bool and k in kept for k, v in json.loads(body).items())
               for body in (row[4] or b"" for row in called))


@needs_c
@pytest.mark.parametrize("first,last", [(0, 1), (5, 0), (3, 3), (40, 2), (2**31, 0), (0, 2**40), (2**62, 2**62),
                                        (10**30, 1), (2**64, 2**64)])
def test_keep_counts_beyond_any_value(first: int, last: int) -> None:
    decision = decision_of(None, (), (("a", MaskRule.keep(first, last)), ("b", MaskRule.keep(first, last))))
    rows: list[RawRow] = [("r", 1, 1, 0, canonical_bytes({"id": "r", "a": "王秀英" * n, "b": -7 * 10**n}), 1)
                          for n in (0, 1, 2, 5, 17)]
    encoder = RecordEncoder(decision)
    assert encoder.accelerated
    assert encoder.encode(rows) == RecordEncoder(decision, accelerate=False).encode_python(rows)


def test_a_plan_key_that_is_not_utf8_stays_in_python() -> None:
    """A masked item name with a lone surrogate (no body can hold it as a key): Python's projection, no error."""
    for plan in [(None, (), (("\ud800", MaskRule.redact()),)), (("id", "\udc00"), (), ()), (None, ("\ud800",), ())]:
        decision = decision_of(*plan)
        encoder = RecordEncoder(decision)
        assert not encoder.accelerated
        rows: list[RawRow] = [("r", 1, 1, 0, b'{"id":"r","a":"x"}', 1)]
        assert encoder.encode(rows) == RecordEncoder(decision, accelerate=False).encode_python(rows)


# ---- the scanners' fast paths ------------------------------------------------------------------------
# Strings are scanned 16 and 8 bytes at a time (then byte by byte near the end of a body), UTF-8 is
# checked string by string, and each string's length and each member's plan key are first guessed from
# the record before: every stop, character and guess at every place of a string.

SCAN_PLANS: list[Plan] = [(("id", "a", "b"), (), ()), (("id", "b", "a"), (), (("a", MaskRule.keep(2, 3)),)),
                          (None, ("c",), (("a", MaskRule.keep(1, 0)),))]
STOPS = [b'"', b"\\", b"\x00", b"\x01", b"\n", b"\x1f"]  # the bytes that end a plain string's run
PLAIN = [b" ", b"!", b"#", b"[", b"\x7f", b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xee\x80\x80",
         b"\xef\xbf\xbf", "王".encode(), b"\xf0\x90\x80\x80", "😀".encode(), b"\xf4\x8f\xbf\xbf", "\u2028".encode()]
NOT_UTF8 = [b"\xff", b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xc2a", b"\xe0\x80\x80", b"\xe0\x9f\xbf",
            b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xe4\xb8", b"\xe4a\x80", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",
            b"\xf0\x9f\x98", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80"]


def _strings(piece: bytes) -> list[bytes]:
    """``piece`` at every place of strings of up to 42 bytes, and of every length up to 17 around it."""
    out = [b"a" * at + piece + b"b" * (41 - at) for at in range(42)]
    out += [b"a" * at + piece + b"b" * (length - at) for length in range(18) for at in range(length + 1)]
    return out


def _bodies(s: bytes) -> list[bytes]:
    """``s`` in each place a body has a string: a key, a value amid members, the last value (near the end)."""
    return [b'{"' + s + b'":1,"id":"r"}', b'{"id":"r","a":"' + s + b'","b":"x"}', b'{"b":"x","id":"r","a":"' + s + b'"}']


def _cut_bodies(s: bytes) -> list[bytes]:
    """``s`` (ending with a byte that is no quote) where a quote would close a valid member, as if that byte
    closed the string: a scanner that took the byte for a quote would find a body it handles."""
    return [b'{"' + s + b':1,"id":"r"}', b'{"id":"r","a":"' + s + b',"b":"x"}', b'{"b":"x","id":"r","a":"' + s + b"}"]


def _same_as_python(plan: Plan, rows: list[RawRow]) -> list[RawRow]:
    """encode_batch gives what the Python path gives for ``rows`` (or fails alike); the rows it left to Python."""
    decision = decision_of(*plan)
    encoder = RecordEncoder(decision)
    assert encoder.accelerated and encoder.plan is not None
    called: list[RawRow] = []

    def general(row: RawRow) -> tuple[str, bytes]:
        called.append(row)
        return encoder.general(row)

    fast = fast_module()
    assert fast is not None
    expected = _collect(lambda: [tuple(RecordEncoder(decision, accelerate=False).encode_python(rows))])
    assert _collect(lambda: [fast.encode_batch(rows, encoder.plan, general, encoder.digest_prefix)]) == expected
    return called


def _left_to_python(plan: Plan, rows: list[RawRow]) -> list[RawRow]:
    """The rows encode_batch gives to its fallback (which answers for each)."""
    encoder = RecordEncoder(decision_of(*plan))
    called: list[RawRow] = []

    def general(row: RawRow) -> tuple[str, bytes]:
        called.append(row)
        return row[0], b"{}"

    fast = fast_module()
    assert fast is not None
    assert fast.encode_batch(rows, encoder.plan, general, encoder.digest_prefix) is not None
    return called


@needs_c
@pytest.mark.parametrize("piece", STOPS + PLAIN, ids=repr)
def test_every_byte_that_ends_a_plain_string_at_every_place(piece: bytes) -> None:
    """A string with '"', a backslash or a control character anywhere is left to Python; any other byte
    or character, anywhere, is scanned over (a character split across the 8 or 16 bytes read at once
    too), and the payload is the projector's (masked on code points)."""
    bodies = [body for s in _strings(piece) for body in _bodies(s)]
    if piece in STOPS and piece != b'"':
        bodies += [body for at in range(42) for body in _cut_bodies(b"a" * at + piece)]
    rows: list[RawRow] = [("r", i + 1, i, 0, body, 1) for i, body in enumerate(bodies)]
    for plan in SCAN_PLANS:
        if piece in STOPS:
            assert _left_to_python(plan, rows) == rows
        else:
            assert _same_as_python(plan, rows) == []


@needs_c
@pytest.mark.parametrize("piece", NOT_UTF8, ids=repr)
def test_a_string_that_is_not_utf8_at_every_place(piece: bytes) -> None:
    """Python's strict UTF-8 (no overlong form, surrogate, code point beyond U+10FFFF or cut sequence),
    checked string by string: each such body is left to Python, wherever the bytes are."""
    rows: list[RawRow] = [("r", i + 1, i, 0, body, 1) for i, body in enumerate(
        body for s in _strings(piece) for body in _bodies(s))]
    for plan in SCAN_PLANS:
        assert _left_to_python(plan, rows) == rows
    for row in rows[:: len(rows) // 10]:  # what Python then makes of them (it fails)
        assert _same_as_python(SCAN_PLANS[0], [row]) == [row]


@needs_c
def test_multibyte_text_masked_at_every_place() -> None:
    """Keep rules count code points, on ASCII strings (one byte each) and on mixed ones alike."""
    texts = [("a" * n + "王秀英"[:k] + "é😀"[:e] + "b" * m).encode() for n in (0, 1, 7, 8, 15, 16) for k in (0, 1, 3)
             for e in (0, 2) for m in (0, 1, 9)]
    rows: list[RawRow] = [("r", i + 1, i, 0, b'{"id":"r","a":"%s","n":%d}' % (t, i * 10**i % 10**18), 1)
                          for i, t in enumerate(texts)]
    for first, last in [(0, 1), (1, 0), (2, 3), (6, 4), (1, 20), (30, 30)]:
        rule = MaskRule.keep(first, last)
        assert _same_as_python((None, (), (("a", rule), ("n", rule))), rows) == []
        assert _same_as_python((("id", "n", "a"), (), (("a", rule), ("n", MaskRule.redact()))), rows) == []


@needs_c
def test_guesses_from_the_record_before_are_checked() -> None:
    """Members that move, strings a byte longer or shorter than the record before's, names of the same
    length, duplicates, other plans on the same rows (a plan's guesses are not the next one's)."""
    layouts: list[Any] = [
        {"id": "r", "a": "x", "b": "yy"}, {"id": "r", "b": "yy", "a": "x"}, {"id": "r", "a": "xx", "b": "y"},
        {"id": "r", "ab": "x", "ba": "y"}, {"id": "r", "ba": "x", "ab": "y"}, {"id": "r", "b": "x"},
        {"a": "x" * 15, "id": "r"}, {"a": "x" * 16, "id": "r"}, {"a": "x" * 17, "id": "r"}, {"a": "x" * 7, "id": "r"},
        {"a": "王" * 5, "id": "r"}, {"aa": 1, "id": "r"}, {"a": 12, "id": "r"}, {"a": None, "id": "r", "b": True},
        {"id": "r"}, {}, b'{"id":"r","a":"x","a":"y"}', b'{"a":"x","b":"y","a":"z"}', {"id": "r", "a": "y", "b": "x"},
    ]
    rows: list[RawRow] = [("r", i + 1, i, 0, d if isinstance(d, bytes) else compact_bytes(d), 1)  # in this order
                          for i, d in enumerate(layouts * 3)]
    plans: list[Plan] = [(("id", "a", "b"), (), ()), (("id", "b", "a", "ab", "a"), (), (("a", MaskRule.keep(1, 1)),)),
                         (("id", "ba"), (), ()), (None, ("ab",), (("b", MaskRule.redact()),)), (("b", "a"), (), ()),
                         (("id", "b", "a"), (), ()), (("a", "b", "a"), (), ())]
    for plan in plans + plans[::-1]:
        for order in (rows, rows[::-1]):
            _same_as_python(plan, order)


@needs_c
@pytest.mark.parametrize("general_at", [None, 0, 2, 5])
def test_a_page_is_encoded_as_read_up_to_its_first_row_for_python(store: Store, general_at: int | None) -> None:
    """The reader writes each row as it reads it until one needs the fallback; from there on the rest
    are written after the fallback answers: the same bytes (a body-less row in between too)."""
    rows: list[Row] = []
    for i in range(6):
        body = b'{"id":"%d","a":"x%d","b":%d}' % (i, i, i) if i != general_at else b'{"id":"%d","a":1.5}' % i
        rows.append((str(i), i + 1, 100 + i, 0, None if i == 3 else body, FP, True))
    put(store.path, rows)
    for plan in [(None, (), ()), (("id", "a"), (), ()), (None, ("b",), (("a", MaskRule.keep(1, 0)),))]:
        decision = decision_of(*plan)
        for size in (1, 2, 6, 7):
            assert c_path(store, decision, size) == python_path(store, decision, size)
        encoder = RecordEncoder(decision)
        assert all(isinstance(page, EncodedPage) for page in store.encoded_pages(
            "d", fingerprint=FP, plan=encoder.plan, fallback=encoder.general, digest_prefix=encoder.digest_prefix))


# ---- columns the store never writes ------------------------------------------------------------------


GOOD: Row = ("r", 1, 5, 0, b'{"id":"r","a":"x"}', FP, True)


@needs_c
@pytest.mark.parametrize("change", [
    {0: b"r\xff"},  # an id that is not UTF-8: the Python path cannot read it
    {0: b"r\xff", 4: None, 3: 1},
    {0: b"r"},  # an id stored as a BLOB
    {1: -1}, {1: "x"}, {1: 1.5}, {1: b"1"}, {1: 0}, {1: 2**63 - 1},  # odd versions
    {2: "x"}, {2: 2.5}, {2: -(2**63)}, {2: b"\x00"},  # odd modified_us
    {3: 2**32}, {3: "x"}, {3: 0.0},  # odd deleted flags (only deleted = 0 is read)
    {4: 12}, {4: 1.5}, {4: b'{"id":"r","a":"x\x00y"}'}, {4: b""}, {4: None},  # odd bodies
    {5: FP.encode()}, {5: 7}, {5: FP.upper()},  # checked as a BLOB, ...: not this validator's
    {6: False},  # the body stored as a BLOB
])
def test_columns_the_store_never_writes(store: Store, change: dict[int, Any]) -> None:
    row = list(GOOD)
    for i, v in change.items():
        row[i] = v
    put(store.path, [("a", 1, 1, 0, b'{"a":1}', FP, True), tuple(row),
                     ("s", 1, 9, 0, b'{"id":"s"}', FP, True)],
        ids_as_text=change.get(0) != b"r")
    plans: list[Plan] = [(None, (), ()), (("id", "a"), (), ()), (None, ("b",), (("a", MaskRule.keep(1, 0)),))]
    for plan in plans:
        decision = decision_of(*plan)
        for size in (1, 3):
            assert c_path(store, decision, size) == python_path(store, decision, size)


@needs_c
def test_a_checked_column_that_is_not_the_text_of_the_fingerprint_is_not_checked(store: Store) -> None:
    """``checked IS ?`` on the Python path: a BLOB of the same bytes is not the fingerprint."""
    encoder = RecordEncoder(decision_of(None, (), ()))
    for checked, passed in [(FP, True), (FP.encode(), False), (None, False), (FP + "\x00", False), (FP[:-1], False)]:
        put(store.path, [("r", 1, 5, 0, b'{"id":"r"}', checked, True)])
        rows = [r for page in store.record_pages("d", fingerprint=FP) for r in page]
        pages = list(store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=encoder.general,
                                         digest_prefix=encoder.digest_prefix))
        assert rows[0][5] == passed
        assert isinstance(pages[0], EncodedPage) is passed


# ---- concurrency, closing, errors --------------------------------------------------------------------


def _body(rid: str, version: int) -> dict[str, Any]:
    return {"id": rid, "type": "Person", "name": f"王{rid}{version}", "identityNumber": f"{version:018d}",
            "score": version * 3}


def _check_page(decision: Decision, wire: bytes, digest: bytes, evidence: bytes) -> list[tuple[str, int]]:
    """The page is what the records it names project to; its (id, version) pairs."""
    records = common_pb2.RecordBatch.FromString(wire).records
    pairs = [(line.rpartition("@")[0], int(line.rpartition("@")[2])) for line in evidence.decode().splitlines()]
    assert [(r.id, r.version) for r in records] == pairs
    for r in records:
        assert not r.deleted
        assert r.payload == compact_bytes(decision.projector(_body(r.id, r.version)))
    assert digest == batch_digest("d", [(r.id, r.version, False, r.payload) for r in records])
    return pairs


@needs_c
def test_the_c_reader_while_other_threads_write(store: Store) -> None:
    decision = decision_of(("id", "type", "name", "identityNumber", "score"), (),
                           (("identityNumber", MaskRule.keep(6, 4)), ("name", MaskRule.keep(1, 0))))
    ids = [f"p{i:03d}" for i in range(120)]
    version = dict.fromkeys(ids, 0)
    deleted: set[str] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for round_ in range(40):
                batch = ids[(round_ * 37) % 120:][:45]
                for rid in batch:
                    version[rid] += 1
                results = store.upsert_many("d", [(rid, _body(rid, version[rid])) for rid in batch],
                                            checked=FP if round_ % 3 else None)
                assert [r.version for r in results] == [version[rid] for rid in batch]
                deleted.difference_update(batch)
                gone = ids[round_ % 120: round_ % 120 + 2]
                if version[gone[0]] and gone[0] not in deleted:
                    for rid in gone:
                        version[rid] += 1
                    store.delete_many("d", gone)
                    deleted.update(gone)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        encoder = RecordEncoder(decision)
        try:
            walks = 0
            while walks < 200 and not (done.is_set() and walks > 2):
                walks += 1
                seen: list[tuple[str, int]] = []
                for page in store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=encoder.general,
                                                digest_prefix=encoder.digest_prefix, page_size=7):
                    encoded = page if isinstance(page, EncodedPage) else encoder.encode(page)
                    seen += _check_page(decision, encoded.wire, encoded.digest, encoded.evidence)
                assert [rid for rid, _ in seen] == sorted({rid for rid, _ in seen})  # the keyset walk
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    assert c_path(store, decision, 7) == python_path(store, decision, 7)
    since = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert c_path(store, decision, 5, modified_since=since, limit=50) == python_path(store, decision, 5,
                                                                                    modified_since=since, limit=50)


@needs_c
def test_what_was_written_is_read_at_once_from_any_thread(store: Store) -> None:
    encoder = RecordEncoder(decision_of(None, (), ()))

    def count() -> int:
        return sum(p.size for p in store.encoded_pages("d", fingerprint=FP, plan=None, fallback=encoder.general,
                                                       digest_prefix=encoder.digest_prefix)
                   if isinstance(p, EncodedPage))

    counts: list[int] = []
    for i in range(20):
        store.upsert("d", f"r{i:02d}", {"id": f"r{i:02d}", "n": i}, checked=FP)
        counts.append(count())
        other = threading.Thread(target=lambda: counts.append(count()))
        other.start()
        other.join()
    assert counts == [n for i in range(1, 21) for n in (i, i)]


@needs_c
def test_a_read_inside_a_write_transaction_sees_its_writes(store: Store) -> None:
    encoder = RecordEncoder(decision_of(None, (), ()))
    store.upsert("d", "a", {"id": "a"}, checked=FP)
    with store.transaction():
        store.upsert("d", "b", {"id": "b"}, checked=FP)
        pages = list(store.encoded_pages("d", fingerprint=FP, plan=None, fallback=encoder.general,
                                         digest_prefix=encoder.digest_prefix))
    assert all(isinstance(page, list) for page in pages)  # as rows, from this thread's connection
    assert [r[0] for page in pages if isinstance(page, list) for r in page] == ["a", "b"]


@needs_c
def test_a_page_generator_resumed_on_another_thread_reads_there(store: Store) -> None:
    store.upsert_many("d", [(f"r{i}", {"id": f"r{i}"}) for i in range(6)], checked=FP)
    encoder = RecordEncoder(decision_of(None, (), ()))
    pages = store.encoded_pages("d", fingerprint=FP, plan=None, fallback=encoder.general,
                                digest_prefix=encoder.digest_prefix, page_size=2)
    got = [next(pages)]
    blocker = store.encoded_pages("d", fingerprint=FP, plan=None, fallback=encoder.general,
                                  digest_prefix=encoder.digest_prefix, page_size=2)
    got.append(next(blocker))  # this thread's reader serves another walk too
    other = threading.Thread(target=lambda: got.extend(pages))
    other.start()
    other.join()
    assert [p.size for p in got if isinstance(p, EncodedPage)] == [2, 2, 2, 2]
    assert len(store.__dict__["_fast_reader_list"]) == 2  # the other thread read on a connection of its own


@needs_c
def test_closing_the_store_while_threads_read(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", durability="normal")
    store.ensure_dataset("d", "Person")
    store.upsert_many("d", [(f"r{i:04d}", _body(f"r{i:04d}", 1)) for i in range(300)], checked=FP)
    decision = decision_of(None, (), (("name", MaskRule.redact()),))
    outcomes: list[str] = []
    started = threading.Barrier(4)

    def read() -> None:
        encoder = RecordEncoder(decision)
        started.wait()
        try:
            for _ in range(50):
                for page in store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=encoder.general,
                                                digest_prefix=encoder.digest_prefix, page_size=3):
                    assert isinstance(page, EncodedPage)
            outcomes.append("complete")
        except Unavailable as exc:
            outcomes.append("closed" if "closed" in str(exc) else str(exc))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait()
    store.close()
    for t in threads:
        t.join(timeout=600)
    assert len(outcomes) == 3 and set(outcomes) <= {"complete", "closed"}, outcomes
    with pytest.raises(Unavailable, match="closed"):
        c_path_pages = store.encoded_pages("d", fingerprint=FP, plan=None, fallback=lambda r: ("", b""),
                                           digest_prefix=b"")
        next(c_path_pages)


@needs_c
def test_the_store_closed_while_a_thread_opens_its_reader(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = fast_module()
    assert fast is not None
    opened: list[Any] = []

    def reader(*args: Any) -> Any:  # the store is closed by another thread while this one opens its connection
        store.close()
        opened.append(real(*args))
        return opened[-1]

    real = fast.Reader
    monkeypatch.setattr(fast, "Reader", reader)
    with pytest.raises(Unavailable, match="closed"):
        list(store.encoded_pages("d", fingerprint=FP, plan=None, fallback=lambda r: ("", b""), digest_prefix=b""))
    with pytest.raises(sqlite3.ProgrammingError):  # the connection opened meanwhile was closed
        opened[0].encode("SELECT 1, 2, 3, 4, 5, 6", (), FP, None, print, b"")


@needs_c
def test_a_fallback_may_close_the_store_or_read_again(store: Store) -> None:
    """The Python fallback runs with the reader's statement done with: it may close the store or read."""
    put(store.path, [("a", 1, 1, 0, b'{"id":"a","n":1.5}', FP, True), ("b", 1, 2, 0, b'{"id":"b"}', FP, True)])
    decision = decision_of(("id", "n"), (), ())
    encoder = RecordEncoder(decision)
    inner: list[Any] = []

    def again(row: RawRow) -> tuple[str, bytes]:
        inner.append(c_path(store, decision, 1))
        return encoder.general(row)

    pages = list(store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=again,
                                     digest_prefix=encoder.digest_prefix))
    assert [(p.wire, p.digest, p.evidence) for p in pages if isinstance(p, EncodedPage)] == python_path(
        store, decision, 1000)[0]
    assert inner == [python_path(store, decision, 1)]

    def close(row: RawRow) -> tuple[str, bytes]:
        store.close()
        return encoder.general(row)

    first = next(store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=close,
                                     digest_prefix=encoder.digest_prefix))
    assert isinstance(first, EncodedPage) and first.size == 2
    with pytest.raises(Unavailable, match="closed"):
        list(store.encoded_pages("d", fingerprint=FP, plan=encoder.plan, fallback=close,
                                 digest_prefix=encoder.digest_prefix))


@needs_c
def test_a_locked_database_fails_as_with_sqlite3(tmp_path: Path) -> None:
    """The busy timeout, then sqlite3's error (a store is WAL, where readers never wait: here a database
    in rollback mode, locked by a writer, stands for the rare lock a WAL reader waits for)."""
    path = tmp_path / "locked.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("CREATE TABLE records (id TEXT, version INTEGER, modified_us INTEGER, deleted INTEGER, "
                       "body TEXT, checked TEXT)")
        holder.execute("INSERT INTO records VALUES ('r', 1, 1, 0, '{}', ?)", (FP,))
        fast = fast_module()
        assert fast is not None
        reader = fast.Reader(str(path), 20, 64)
        query = "SELECT id, version, modified_us, deleted, body, checked FROM records"
        assert reader.encode(query, (), FP, None, print, b"")[0] == 1
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE records SET version = 2")
        with closing(sqlite3.connect(path, timeout=0.02)) as other:
            with pytest.raises(sqlite3.OperationalError) as python:
                other.execute(query).fetchall()
        with pytest.raises(fast.SQLiteError) as c:
            reader.encode(query, (), FP, None, print, b"")
        holder.execute("COMMIT")
        assert (type(c.value), str(c.value)) == (type(python.value), str(python.value)) == (
            sqlite3.OperationalError, "database is locked")
        assert c.value.sqlite_errorcode == sqlite3.SQLITE_BUSY
        assert reader.encode(query, (), FP, None, print, b"")[0] == 1  # and reads once the lock is gone
        reader.close()


@needs_c
def test_a_damaged_store_fails_as_on_the_python_path(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path, durability="normal") as store:
        store.ensure_dataset("d", "Person")
        store.upsert_many("d", [(f"r{i:05d}", _body(f"r{i:05d}", 1)) for i in range(3000)], checked=FP)
        store.checkpoint()
        table = records_table(store.dataset_num("d") or 0)
    with closing(sqlite3.connect(path)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        if _dbstat(conn):
            pages = [p for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,))]
            leaf = pages[len(pages) // 2]
        else:  # an SQLite without dbstat: down the B-tree from its root, by the middle child
            leaf = _middle_leaf(path, root, page_size)
    with open(path, "r+b") as f:  # scribble over a leaf page of the records in the middle of the walk
        f.seek((leaf - 1) * page_size)
        f.write(b"\x0d" + b"\xff" * (page_size - 1))
    with Store(path, durability="normal") as store:
        decision = decision_of(None, (), ())
        python = python_path(store, decision, 50)
        fast = c_path(store, decision, 50)
    assert python[1] is not None and python[1][0] == IntegrityError.__name__
    assert fast == python


def _middle_leaf(path: Path, root: int, page_size: int) -> int:
    """A leaf page of the B-tree rooted at page ``root`` (not page 1), reached by taking the middle
    child of each interior page (the file format: https://www.sqlite.org/fileformat2.html)."""
    data = path.read_bytes()
    page = root
    while True:
        head = (page - 1) * page_size
        kind = data[head]
        if kind in (0x0A, 0x0D):  # index or table leaf
            return page
        assert kind in (0x02, 0x05), f"page {page} is not a B-tree page ({kind:#x})"
        cells = int.from_bytes(data[head + 3:head + 5], "big")
        cell = int.from_bytes(data[head + 12 + 2 * (cells // 2):head + 14 + 2 * (cells // 2)], "big")
        page = int.from_bytes(data[head + cell:head + cell + 4], "big")  # the cell's left child


def _dbstat(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1")
    except sqlite3.OperationalError:
        return False
    return True


@needs_c
def test_the_reader_object_used_wrongly(tmp_path: Path, store: Store) -> None:
    fast = fast_module()
    assert fast is not None
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        fast.Reader(str(tmp_path / "missing.db"), 10, 64)
    with pytest.raises(ValueError):
        fast.Reader(str(store.path), 10, -1)
    unopened = fast.Reader.__new__(fast.Reader)
    args = ("SELECT id, version, modified_us, deleted, body, checked FROM records", (), FP, None, print, b"")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        unopened.encode(*args)
    reader = fast.Reader(str(store.path), 10, 64)
    reader.__init__(str(store.path), 10, 64)  # opened again
    assert reader.encode(*args)[0] == 0
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        reader.encode("SELECT 1, 2, 3, 4, 5, 6 FROM missing_table", (), FP, None, print, b"")
    with pytest.raises(ValueError, match="selects"):
        reader.encode("SELECT 1", (), FP, None, print, b"")
    with pytest.raises(ValueError, match="empty"):
        reader.encode("  ", (), FP, None, print, b"")
    with pytest.raises(ValueError, match="parameters"):
        reader.encode(args[0] + " WHERE id = ?", (), FP, None, print, b"")
    with pytest.raises(TypeError):
        reader.encode(args[0] + " WHERE id = ?", ([],), FP, None, print, b"")
    bad: Any
    for bad in [(b"a",), ((b"a",), (), ((b"a", 3, 0, 0),)), ((b"a",), (), ((b"a", 2, -1, 0),)),
                ((b"a",), (), ((b"a", 2, 1.5, 0),)), ((b"a",), (), (b"a",)), (("a",), (), ()), ((), [], ())]:
        with pytest.raises((TypeError, ValueError)):
            reader.encode(*args[:3], bad, print, b"")
        with pytest.raises((TypeError, ValueError)):
            fast.encode_batch([], bad, print, b"")
    for i in range(20):  # more distinct statements than the reader keeps prepared
        assert reader.encode(args[0] + f" LIMIT {i}", (), FP, None, print, b"")[0] == 0
    reader.close()
    reader.close()
    with pytest.raises(sqlite3.ProgrammingError):
        reader.encode(*args)


@needs_c
def test_the_extension_shares_the_sqlite_library_of_the_sqlite3_module() -> None:
    fast = fast_module()
    assert fast is not None
    assert fast.shares_sqlite(sys.modules["_sqlite3"].__file__)
    assert not fast.shares_sqlite("/nonexistent/_sqlite3.so")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("setup", ['sys.modules["node._fastread"] = None',  # an import that fails
                                   pytest.param("import node._fastread; node._fastread.ABI -= 1",  # a stale build
                                                marks=needs_c)])
def test_without_a_current_extension_the_python_path_reads(tmp_path: Path, setup: str) -> None:
    """The extension not built (an import that fails), or stale: every page comes as rows, encoded in Python."""
    code = f"""
import sys, types, logging
logging.basicConfig(level=logging.WARNING)
{setup}
from node.store import Store
from node.service._outgoing import RecordEncoder, accelerated
from node.policy import Decision, MaskRule, ReasonCode
from node.policy.decision import _build
import datetime as dt
assert not accelerated()
d = Decision(True, ReasonCode.GRANTED, "d", "c", None, dt.date(2025, 1, 1), items=None,
             maskers={{"a": MaskRule.keep(1, 1)}}, _projector=_build(None, (), (("a", MaskRule.keep(1, 1)),), None))
encoder = RecordEncoder(d)
assert not encoder.accelerated
with Store({str(tmp_path / "s.db")!r}) as store:
    store.ensure_dataset("d", "Person")
    store.upsert("d", "r", {{"id": "r", "a": "secret"}}, checked="fp")
    pages = list(store.encoded_pages("d", fingerprint="fp", plan=None, fallback=encoder.general, digest_prefix=b""))
    assert pages == [[("r", 1, pages[0][0][2], 0, b'{{"a":"secret","id":"r"}}', 1)]], pages
    print(encoder.encode(pages[0]).wire)
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert "s****t" in done.stdout
    assert ("stale or broken" in done.stderr) is ("ABI" in setup)
