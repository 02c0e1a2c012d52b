"""The consumer's envelope fast path gives the general path's results, message after message.

``read_envelope`` reads a message by position when its constant headers (names, places
and values) and its other header names are those of the message read before it; it
must still equal ``parse_envelope`` + ``leaf_hash`` whatever came before, for
publisher-shaped and for hostile headers. And what the verifier remembers of a tree
never vouches for an altered message.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from node.transport.kafka import (
    EnvelopeError,
    SignatureVerifier,
    _envelope,
    leaf_hash,
    parse_envelope,
    source_for,
)
from node.transport.kafka._envelope import (
    CONTENT_TYPE,
    SPECVERSION,
    TYPE_DELETED,
    TYPE_UPSERTED,
    Envelope,
    merkle_sign_b64,
    read_envelope,
    rfc3339_us,
)

P = "91110000600037341L"
C = "91110108551385082Q"
Headers = list[tuple[str, Any]]
Message = tuple[bytes | None, bytes | None, Headers]

ENCRYPTED = (("ce_encryption", b"x25519-hkdf-sha256-aes256gcm"), ("ce_encepk", b"QUJDRA=="), ("ce_recipient", C.encode()))
MASKED = (("ce_projection", b"partial"), ("ce_masked", b"identityNumber,name"))


@functools.cache
def signer() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def published(n: int, *, deleted: bool = False, extra: tuple[tuple[str, bytes], ...] = (), unsigned: bool = False,
              start: int = 0) -> list[Message]:
    """A signed tree of messages with the headers in the order the publisher sends them
    (node/transport/kafka/_publisher.py); ``unsigned``: plus a header the signature does not
    cover, with a value of its own per message."""
    common = [("ce_specversion", SPECVERSION), ("ce_source", source_for(P).encode()), ("ce_dataset", b"open"),
              ("ce_recordtype", b"Person"), *extra]
    head = [("ce_type", TYPE_DELETED.encode()), *common] if deleted else \
        [("ce_type", TYPE_UPSERTED.encode()), ("content-type", CONTENT_TYPE), *common]
    msgs: list[Message] = []
    for i in range(start, start + n):
        key = f"p{i}".encode()
        value = None if deleted else b'{"id":"p%d","type":"Person"}' % i
        own = [("ce_id", b"open/p%d/%d" % (i, i + 1)), ("ce_subject", key),
               ("ce_time", rfc3339_us(1_700_000_000_000_000 + i).encode()), ("ce_recordversion", b"%d" % (i + 1))]
        msgs.append((key, value, head + own))
    _root, signature, proofs = merkle_sign_b64(signer(), [leaf_hash(k, v, h) for k, v, h in msgs])
    sig = base64.b64encode(signature)
    return [(k, v, h + [("ce_signature", sig), ("ce_sigproof", proof)] + ([("x-trace", b"t%d" % i)] if unsigned else []))
            for i, ((k, v, h), proof) in enumerate(zip(msgs, proofs, strict=True))]


def general(key: bytes | None, value: bytes | None, headers: Any) -> tuple[Envelope, bytes]:
    return parse_envelope(headers)[0], leaf_hash(key, value, headers)


def outcome(read: Any, key: bytes | None, value: bytes | None, headers: Any) -> object:
    try:
        env, leaf = read(key, value, headers)
    except EnvelopeError as exc:
        return "refused", exc.code, exc.message
    except Exception as exc:  # noqa: BLE001 - what the general path raises on headers that are not pairs
        return "raised", type(exc).__name__
    assert type(env) is Envelope
    return tuple(env), leaf


def same(key: bytes | None, value: bytes | None, headers: Any) -> None:
    assert outcome(read_envelope, key, value, headers) == outcome(general, key, value, headers)


def test_publisher_shapes_are_read_by_position_as_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    batches = [published(9), published(5, deleted=True, start=9), published(7, extra=MASKED, start=20),
               published(6, extra=ENCRYPTED, start=30), published(6, unsigned=True, start=40)]
    msgs = [m for batch in batches for m in batch]
    msgs += [m for pair in zip(batches[0], batches[1], batches[3], strict=False) for m in pair]  # shapes interleaved
    expected = [general(k, v, h) for k, v, h in msgs]

    def refuse(*_args: Any) -> Any:
        raise AssertionError("a publisher's message took the general path")

    monkeypatch.setattr(_envelope, "_general", refuse)
    for (k, v, h), want in zip(msgs, expected, strict=True):
        assert read_envelope(k, v, h) == want
        assert read_envelope(k, v, tuple(h)) == want  # as the consumer hands them over


def test_a_message_like_the_last_one_but_not_quite_takes_the_general_path() -> None:
    k, v, h = published(2)[1]
    names = [n for n, _v in h]
    cases: list[Any] = [
        h[:-1] + [("ce_type", b"x")],  # a repeated name in place of a signed one, constants unchanged
        [*h, ("x-trace", b"1")],
        [*h, ("ce_type", TYPE_UPSERTED.encode())],  # a header twice, the copy after the others
        [(n, x) for n, x in h if n != "ce_time"] + [("x-time", b"")],  # same count, a per-message header gone
    ]
    i, j = names.index("ce_subject"), names.index("ce_time")
    swapped = list(h)
    swapped[i], swapped[j] = h[j], h[i]  # per-message headers in other places, constants in theirs
    cases.append(swapped)
    cases.append([[n, x] for n, x in h])  # lists, not tuples
    cases.append([(n, x, b"") if n == "ce_time" else (n, x) for n, x in h])  # not pairs
    cases.append([(n,) if n == "ce_dataset" else (n, x) for n, x in h])
    for case in cases:
        for prime_k, prime_v, prime_h in published(2, unsigned=True) + published(2):
            read_envelope(prime_k, prime_v, prime_h)  # the last message read is a publisher's
            same(k, v, case)
    k2, v2, h2 = published(1, unsigned=True)[0]
    read_envelope(k2, v2, h2)
    same(k2, v2, [(n, x) if n != "x-trace" else ("ce_dataset", x) for n, x in h2])  # the unsigned one renamed


def test_keys_values_and_per_message_headers_of_any_length() -> None:
    k, v, h = published(1)[0]
    for key, value in ((None, v), (b"", v), (b"k" * 1023, v), (b"k" * 1024, v), (k, None), (k, b""), (k, b"x" * 5000)):
        same(key, value, h)
    for name in ("ce_id", "ce_subject", "ce_time", "ce_recordversion", "ce_sigproof", "ce_signature"):
        for junk in (None, b"", b"x" * 1023, b"x" * 1024, b"\xff", b"0", b"01", b"9" * 18, b"9" * 19, b"QQ==",
                     b"QQ==QUJD", b"QUJ", b"QUJD" * 300):
            read_envelope(k, v, h)
            same(k, v, [(n, junk if n == name else x) for n, x in h])


_NAMES = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "content-type", "ce_dataset",
          "ce_recordversion", "ce_recordtype", "ce_projection", "ce_masked", "ce_encryption", "ce_encepk",
          "ce_recipient", "ce_signature", "ce_sigproof", "x-trace", "ce_", "ce_other", "Content-Type"]
_JUNK = st.one_of(st.none(), st.binary(max_size=24), st.sampled_from([
    b"", b"\xff\xfe", b"0", b"01", b"1" * 19, b"12", b"partial", b"text/plain", b"application/json; charset=utf-8",
    b"!!notbase64", b"QUJD", b"QQ==", b"QQ==QUJD", TYPE_DELETED.encode(), TYPE_UPSERTED.encode(), b"1.0", b"1.1",
    source_for(P).encode(), source_for("bad").encode(), b"open", b"x" * 1100, b"a,,b", "名".encode()]))
_MUTATION = st.one_of(
    st.tuples(st.just("rename"), st.integers(0, 30), st.sampled_from(_NAMES)),
    st.tuples(st.just("value"), st.integers(0, 30), _JUNK),
    st.tuples(st.just("drop"), st.integers(0, 30)),
    st.tuples(st.just("swap"), st.integers(0, 30), st.integers(0, 30)),
    st.tuples(st.just("append"), st.sampled_from(_NAMES), _JUNK),
    st.tuples(st.just("form"), st.integers(0, 30), st.sampled_from(["list", "triple", "single"])),
    st.tuples(st.just("key"), st.one_of(st.none(), st.binary(max_size=6), st.just(b"k" * 1100))),
    st.tuples(st.just("data"), st.one_of(st.none(), st.binary(max_size=6))),
)


def _mutate(msg: Message, mutations: list[tuple[Any, ...]]) -> tuple[bytes | None, bytes | None, list[Any]]:
    key, value, headers = msg
    hs: list[Any] = list(headers)

    def name_of(h: Any) -> Any:
        return h[0] if len(h) else ""

    def value_of(h: Any) -> Any:
        return h[1] if len(h) > 1 else None

    for kind, *args in mutations:
        i = args[0] % len(hs) if hs and isinstance(args[0], int) else 0
        if kind == "rename" and hs:
            hs[i] = (args[1], value_of(hs[i]))
        elif kind == "value" and hs:
            hs[i] = (name_of(hs[i]), args[1])
        elif kind == "drop" and hs:
            del hs[i]
        elif kind == "swap" and hs:
            j = args[1] % len(hs)
            hs[i], hs[j] = hs[j], hs[i]
        elif kind == "append":
            hs.append((args[0], args[1]))
        elif kind == "form" and hs:
            name, val = name_of(hs[i]), value_of(hs[i])
            hs[i] = [name, val] if args[1] == "list" else (name, val, val) if args[1] == "triple" else (name,)
        elif kind == "key":
            key = args[0]
        elif kind == "data":
            value = args[0]
    return key, value, hs


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["plain", "deleted", "masked", "encrypted", "unsigned"]), st.integers(0, 3),
       st.lists(_MUTATION, min_size=1, max_size=3))
def test_the_fast_path_equals_the_general_path_after_any_message(variant: str, which: int,
                                                                 mutations: list[tuple[Any, ...]]) -> None:
    batch = {"plain": lambda: published(4), "deleted": lambda: published(4, deleted=True),
             "masked": lambda: published(4, extra=MASKED), "encrypted": lambda: published(4, extra=ENCRYPTED),
             "unsigned": lambda: published(4, unsigned=True)}[variant]()
    base = batch[which]
    key, value, hs = _mutate(base, mutations)
    for k, v, h in (base, (key, value, hs), base, (key, value, hs), (key, value, hs), batch[(which + 1) % 4]):
        same(k, v, h)  # each read after another: what the last one left behind must not matter
        same(k, v, tuple(h))


def test_hostile_names_and_values_keep_the_caches_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_envelope, "_SHAPES", {})  # filled here, emptied for the other tests
    k, v, h = published(1)[0]
    for i in range(600):
        read_envelope(k, v, [*h, (f"x-{i}", b"")])  # a new shape each time
        read_envelope(k, v, [(n, b"ds%d" % i if n == "ce_dataset" else x) for n, x in h])  # new constants
    assert len(_envelope._SHAPES) <= 256
    assert all(len(s.cache) <= 64 for s in _envelope._SHAPES.values() if s is not None)
    same(k, v, h)


def test_the_verifier_does_not_vouch_for_an_altered_message_of_a_verified_tree() -> None:
    msgs = published(40)
    pub = signer().public_key()
    verifier = SignatureVerifier()
    for k, v, h in msgs:
        env, leaf = read_envelope(k, v, h)
        assert env.signature is not None
        assert verifier.verify(P, pub, leaf, env.proof, env.signature)
    k, v, h = msgs[7]
    altered = [
        (k, b'{"id":"p7","type":"Person","name":"x"}', h),
        (b"p8", v, [(n, b"p8" if n == "ce_subject" else x) for n, x in h]),
        (k, v, [(n, b"2" if n == "ce_recordversion" else x) for n, x in h]),
        (k, v, [(n, b"open/p7/9" if n == "ce_id" else x) for n, x in h]),
        (k, v, [(n, b"other" if n == "ce_dataset" else x) for n, x in h]),
        (k, v, [(n, msgs[8][2][-1][1] if n == "ce_sigproof" else x) for n, x in h]),  # another message's proof
    ]
    for i, (ak, av, ah) in enumerate(altered):
        env, leaf = read_envelope(ak, av, ah)
        assert env.signature is not None
        verdict = verifier.verify(P, pub, leaf, env.proof, env.signature)
        assert verdict is (i == len(altered) - 1), i  # only the genuine message, whatever proof it carries
