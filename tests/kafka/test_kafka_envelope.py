"""The envelope, signatures, encryption, topic names and client settings (no broker)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from node.config import KafkaConfig
from node.errors import ConfigError, InputError
from node.transport.kafka import (
    ENCRYPTION_SCHEME,
    SIGNATURE_DOMAIN,
    DecryptionError,
    EnvelopeError,
    Opener,
    Sealer,
    SignatureVerifier,
    client_kwargs,
    consumer_topic,
    dead_letter_topic,
    leaf_hash,
    merkle_root,
    merkle_sign,
    parse_envelope,
    partition_for,
    provider_from_source,
    shared_topic,
    source_for,
)

P = "91110000600037341L"
C = "91110108551385082Q"


def headers(subject: str = "r1", version: int = 1, **extra: bytes) -> list[tuple[str, bytes]]:
    out = [("ce_specversion", b"1.0"), ("ce_id", f"ds/{subject}/{version}".encode()),
           ("ce_source", source_for(P).encode()), ("ce_type", b"org.w3id.shulian.record.upserted"),
           ("ce_subject", subject.encode()), ("ce_time", b"2025-01-02T03:04:05.000000Z"),
           ("content-type", b"application/json"), ("ce_dataset", b"ds"),
           ("ce_recordversion", str(version).encode()), ("ce_recordtype", b"Person")]
    out += list(extra.items())
    return out


# ---- topics ----------------------------------------------------------------------------
def test_topic_names_follow_the_documented_scheme() -> None:
    assert shared_topic(P, "population") == f"shulian.{P}.population.v1"
    assert consumer_topic(P, "population", C) == f"shulian.{P}.population.to.{C}"
    assert dead_letter_topic(C) == f"shulian.{C}.dlq"
    with pytest.raises(InputError):
        shared_topic(P, "bad name")


def test_partition_is_crc32_of_the_key() -> None:
    import zlib

    assert partition_for(b"p1", [0, 1, 2]) == zlib.crc32(b"p1") % 3
    assert {partition_for(f"k{i}".encode(), [0, 1, 2]) for i in range(100)} == {0, 1, 2}


# ---- signatures -----------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64])
def test_every_message_of_a_signed_batch_verifies_on_its_own(n: int) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    leaves = [leaf_hash(f"k{i}".encode(), f"v{i}".encode(), headers(f"k{i}")) for i in range(n)]
    root, signature, proofs = merkle_sign(key, leaves)
    assert root == merkle_root(leaves)
    key.public_key().verify(signature, SIGNATURE_DOMAIN + root)  # what a third party checks
    for leaf, proof in zip(leaves, proofs, strict=True):
        fresh = SignatureVerifier()  # no cache: each message alone
        assert fresh.verify(P, key.public_key(), leaf, proof, signature)
    if n == 1:
        assert proofs == [b""]


def test_a_changed_message_or_a_foreign_key_fails() -> None:
    key, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    leaves = [leaf_hash(f"k{i}".encode(), b"{}", headers(f"k{i}")) for i in range(6)]
    _root, signature, proofs = merkle_sign(key, leaves)
    verifier = SignatureVerifier()
    assert all(verifier.verify(P, key.public_key(), lf, pr, signature) for lf, pr in zip(leaves, proofs, strict=True))
    tampered = leaf_hash(b"k2", b'{"x":1}', headers("k2"))
    assert not verifier.verify(P, key.public_key(), tampered, proofs[2], signature)  # cache must not help
    assert not SignatureVerifier().verify(P, other.public_key(), leaves[0], proofs[0], signature)
    forged = other.sign(SIGNATURE_DOMAIN + merkle_root(leaves))
    assert not verifier.verify(P, key.public_key(), leaves[3], proofs[3], forged)  # known tree, other signature
    assert not verifier.verify("91110000000000000X", key.public_key(), leaves[1], proofs[1], forged)
    assert not verifier.verify(P, key.public_key(), leaves[0], proofs[0][:-1], signature)  # truncated proof


def test_the_leaf_covers_key_value_and_ce_headers_only() -> None:
    base = leaf_hash(b"k", b"v", headers("k"))
    assert leaf_hash(b"k", b"v", list(reversed(headers("k")))) == base  # order does not matter
    assert leaf_hash(b"k", b"v", headers("k") + [("traceparent", b"00-abc")]) == base  # not covered
    assert leaf_hash(b"k", b"v", headers("k") + [("ce_signature", b"x"), ("ce_sigproof", b"y")]) == base
    assert leaf_hash(b"k2", b"v", headers("k")) != base
    assert leaf_hash(b"k", b"v2", headers("k")) != base
    assert leaf_hash(b"k", b"v", headers("k", version=2)) != base
    assert leaf_hash(b"k", b"v", headers("k", ce_masked=b"name")) != base


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["ce_a", "ce_b", "ce_z", "content-type", "ce_signature", "x-other"]),
                       st.binary(max_size=8)),
       st.lists(st.sampled_from(["ce_id", "ce_c", "ce_y", "ce_zz"]), unique=True),
       st.binary(max_size=8), st.one_of(st.none(), st.binary(max_size=16)))
def test_the_publishers_leaf_template_equals_the_leaf(constant: dict[str, bytes], variable: list[str], key: bytes,
                                                      value: bytes | None) -> None:
    from node.transport.kafka._envelope import LeafTemplate

    signed = {k: v for k, v in constant.items() if k not in ("ce_signature", "x-other")}
    values = [f"v{i}".encode() for i in range(len(variable))]
    expected = leaf_hash(key, value, [*constant.items(), *zip(variable, values, strict=True)])
    assert LeafTemplate(list(signed.items()), variable).leaf(key, value, values) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=12),
       st.one_of(st.none(), st.binary(max_size=64)), st.one_of(st.none(), st.binary(max_size=64)))
def test_parsing_untrusted_headers_never_crashes(hs: list[tuple[str, bytes]], key: bytes | None,
                                                  value: bytes | None) -> None:
    leaf_hash(key, value, hs)
    try:
        parse_envelope(hs)
    except EnvelopeError as exc:
        assert exc.code in ("UNPARSEABLE", "UNEXPECTED_PROVIDER", "BAD_SIGNATURE")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([n for n, _ in headers()]), st.binary(max_size=30))
def test_a_mutated_required_header_is_refused_or_still_well_formed(name: str, junk: bytes) -> None:
    hs = [(n, junk if n == name else v) for n, v in headers()]
    try:
        env, _ = parse_envelope(hs)
    except EnvelopeError:
        return
    assert env.provider == P or name != "ce_source"


def test_envelope_fields_and_refusals() -> None:
    env, _ = parse_envelope(headers("r9", 3, ce_masked=b"identityNumber,name", ce_projection=b"partial"))
    assert (env.provider, env.subject, env.version, env.dataset, env.record_type) == (P, "r9", 3, "ds", "Person")
    assert env.partial and env.masked == {"identityNumber", "name"} and env.signature is None
    with pytest.raises(EnvelopeError, match="ce_source") as exc:
        parse_envelope([(n, b"urn:x" if n == "ce_source" else v) for n, v in headers()])
    assert exc.value.code == "UNEXPECTED_PROVIDER"
    for bad in ([h for h in headers() if h[0] != "ce_subject"], headers() + [("ce_id", b"again")],
                [(n, b"0" if n == "ce_recordversion" else v) for n, v in headers()],
                [(n, b"text/plain" if n == "content-type" else v) for n, v in headers()]):
        with pytest.raises(EnvelopeError) as exc:
            parse_envelope(bad)
        assert exc.value.code == "UNPARSEABLE"
    assert provider_from_source(source_for(C)) == C
    assert provider_from_source("https://w3id.org/shulian/dept/x") is None


# ---- encryption -----------------------------------------------------------------------
def test_sealed_values_open_only_for_the_recipient_and_unaltered() -> None:
    me, other = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    sealer = Sealer(me.public_key())
    boxes = [sealer.seal(f'{{"id":"r{i}"}}'.encode(), f"id{i}".encode()) for i in range(3)]
    opener = Opener(me)
    epk = sealer.epk_b64.decode()
    assert [opener.open(epk, b, f"id{i}".encode()) for i, b in enumerate(boxes)] == \
        [f'{{"id":"r{i}"}}'.encode() for i in range(3)]
    assert len({b[:12] for b in boxes}) == 3  # a fresh nonce per value
    with pytest.raises(DecryptionError):
        Opener(other).open(epk, boxes[0], b"id0")
    with pytest.raises(DecryptionError):
        opener.open(epk, boxes[0], b"id1")  # bound to its ce_id
    with pytest.raises(DecryptionError):
        opener.open(epk, boxes[0][:-1] + bytes([boxes[0][-1] ^ 1]), b"id0")
    with pytest.raises(DecryptionError):
        opener.open("not base64!", boxes[0], b"id0")
    assert ENCRYPTION_SCHEME == "x25519-hkdf-sha256-aes256gcm"


def test_scheme_matches_its_specification() -> None:
    """Decrypt with the documented steps only (HKDF salt E||R, info, nonce || AES-GCM, aad ce_id)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    me = x25519.X25519PrivateKey.generate()
    sealer = Sealer(me.public_key())
    box = sealer.seal(b"hello", b"the-id")
    epk = base64.b64decode(sealer.epk_b64)
    mine = me.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    shared = me.exchange(x25519.X25519PublicKey.from_public_bytes(epk))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + mine, info=b"shulian-kafka-value/1").derive(shared)
    assert AESGCM(key).decrypt(box[:12], box[12:], b"the-id") == b"hello"


# ---- client settings ------------------------------------------------------------------
def test_security_settings_pass_through_and_files_become_an_ssl_context(tmp_path: Path) -> None:
    plain = client_kwargs(KafkaConfig(bootstrap_servers=("k1:9092", "k2:9092")))
    assert plain == {"bootstrap_servers": ["k1:9092", "k2:9092"], "security_protocol": "PLAINTEXT"}
    sasl = client_kwargs(KafkaConfig(bootstrap_servers=("k:9093",), security=(
        ("security_protocol", "sasl_plaintext"), ("sasl_mechanism", "SCRAM-SHA-256"),
        ("sasl_username", "node"), ("sasl_password", "secret"))))
    assert sasl["security_protocol"] == "SASL_PLAINTEXT"
    assert (sasl["sasl_plain_username"], sasl["sasl_plain_password"]) == ("node", "secret")
    from node.pki import create_ca

    ca = create_ca(tmp_path / "ca")
    del ca
    tls = client_kwargs(KafkaConfig(bootstrap_servers=("k:9093",), security=(
        ("security_protocol", "SSL"), ("ssl_cafile", str(tmp_path / "ca" / "ca.pem")),
        ("ssl_check_hostname", False))))
    assert tls["ssl_context"].check_hostname is False
    with pytest.raises(ConfigError, match="kafka.security.sasl_oops"):
        client_kwargs(KafkaConfig(bootstrap_servers=("k:1",), security=(("sasl_oops", "x"),)))
    with pytest.raises(ConfigError, match="security_protocol"):
        client_kwargs(KafkaConfig(bootstrap_servers=("k:1",), security=(("security_protocol", "TLS"),)))
    with pytest.raises(ConfigError, match="TLS context"):
        client_kwargs(KafkaConfig(bootstrap_servers=("k:1",), security=(("ssl_cafile", str(tmp_path / "no.pem")),)))


# ---- the receiver's fast path -----------------------------------------------------------
def signed_batch(n: int, key: ed25519.Ed25519PrivateKey, **extra: bytes) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    msgs = [(f"k{i}".encode(), f'{{"id":"k{i}"}}'.encode(), headers(f"k{i}", i + 1, **extra)) for i in range(n)]
    _root, signature, proofs = merkle_sign(key, [leaf_hash(k, v, h) for k, v, h in msgs])
    for (_k, _v, h), proof in zip(msgs, proofs, strict=True):
        h += [("ce_signature", base64.b64encode(signature)), ("ce_sigproof", base64.b64encode(proof))]
    return msgs


def same_as_general(key: bytes | None, value: bytes | None, hs: list[tuple[str, bytes | None]]) -> None:
    from node.transport.kafka._envelope import read_envelope

    try:
        expected: object = (parse_envelope(hs)[0], leaf_hash(key, value, hs))
    except EnvelopeError as exc:
        expected = (exc.code, exc.message)
    try:
        got: object = read_envelope(key, value, hs)
    except EnvelopeError as exc:
        got = (exc.code, exc.message)
    assert got == expected


def test_the_fast_reader_reads_real_shapes_as_the_general_path() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    for extra in ({}, {"ce_masked": b"identityNumber,name", "ce_projection": b"partial"},
                  {"ce_encryption": b"x25519-hkdf-sha256-aes256gcm", "ce_encepk": b"QUJD", "ce_recipient": C.encode()}):
        for k, v, h in signed_batch(5, key, **extra):
            same_as_general(k, v, h)
            same_as_general(k, v, list(reversed(h)))
    from node.transport.kafka import _envelope

    k, v, h = signed_batch(3, key)[2]
    general, _envelope._general = _envelope._general, None  # type: ignore[assignment]
    try:  # the common shape does not need the general path
        assert _envelope.read_envelope(k, v, h) == (parse_envelope(h)[0], leaf_hash(k, v, h))
    finally:
        _envelope._general = general
    k, _v, h = signed_batch(1, key)[0]
    same_as_general(k, None, [(n, b"org.w3id.shulian.record.deleted" if n == "ce_type" else v) for n, v in h
                              if n != "content-type"])
    same_as_general(None, b"{}", h)
    same_as_general(k, b"x" * 5000, h + [("ce_subject", b"k" * 2000)])  # long values, a header twice


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 12), st.sampled_from(["drop", "junk", "none", "twice", "extra"]),
       st.one_of(st.binary(max_size=40), st.sampled_from([b"", b"\xff\xfe", b"0", b"01", b"12345678901234567890",
                                                          b"partial", b"text/plain", b"!!notbase64", b"QUJD"])),
       st.one_of(st.none(), st.binary(max_size=64)))
def test_the_fast_reader_equals_parse_envelope_and_leaf_hash(which: int, how: str, junk: bytes,
                                                             value: bytes | None) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    k, v, base = signed_batch(2, key, ce_masked=b"name")[1]
    hs: list[tuple[str, bytes | None]] = list(base)
    name = hs[which % len(hs)][0]
    if how == "drop":
        hs = [h for h in hs if h[0] != name]
    elif how == "junk":
        hs = [(n, junk if n == name else x) for n, x in hs]
    elif how == "none":
        hs = [(n, None if n == name else x) for n, x in hs]
    elif how == "twice":
        hs.append((name, junk))
    else:
        hs.append((junk.decode("latin-1") or "ce_", junk))
    same_as_general(k, v if which % 2 else value, hs)
    same_as_general(k, v, hs)  # the per-publisher values are cached: ask again


def test_the_verifier_remembers_proven_nodes_not_forgeries() -> None:
    key, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    leaves = [leaf_hash(f"k{i}".encode(), b"{}", headers(f"k{i}")) for i in range(256)]
    _root, signature, proofs = merkle_sign(key, leaves)
    calls = 0
    pub = key.public_key()

    class Counting:
        def verify(self, sig: bytes, data: bytes) -> None:
            nonlocal calls
            calls += 1
            pub.verify(sig, data)

    verifier = SignatureVerifier()
    counted: Any = Counting()
    for i in (5, 4, 200, 0, 255, 17):  # any order: one Ed25519 verification for the whole tree
        assert verifier.verify(P, counted, leaves[i], proofs[i], signature)
    assert calls == 1
    for i in range(256):
        assert verifier.verify(P, counted, leaves[i], proofs[i], signature)
    assert calls == 1
    # known siblings do not vouch for altered messages, nor for other providers or signatures
    altered = leaf_hash(b"k4", b'{"x":1}', headers("k4"))
    assert not verifier.verify(P, counted, altered, proofs[4], signature)
    assert not verifier.verify(P, counted, altered, b"", signature)
    assert not verifier.verify("91110000000000000X", other.public_key(), leaves[4], proofs[4], signature)
    forged = other.sign(SIGNATURE_DOMAIN + merkle_root(leaves))
    assert not verifier.verify(P, pub, leaves[4], proofs[4], forged)


def test_the_verifier_stays_bounded_and_correct() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    verifier = SignatureVerifier(max_nodes=40)
    for t in range(6):
        leaves = [leaf_hash(f"t{t}k{i}".encode(), b"{}", headers(f"k{i}")) for i in range(64)]
        _root, signature, proofs = merkle_sign(key, leaves)
        for i in range(64):
            assert verifier.verify(P, key.public_key(), leaves[i], proofs[i], signature)
        assert not verifier.verify(P, key.public_key(), leaf_hash(b"x", b"{}", headers("x")), proofs[0], signature)
        assert verifier._size <= 40 + 2 * 6 + 1


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10), lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=3), max_leaves=8)))
def test_records_are_encoded_as_the_store_encodes_them(record: dict[str, Any]) -> None:
    from node.jsonenc import canonical_bytes
    from node.transport.kafka._receiver import _encode

    assert _encode(record, "r1") == canonical_bytes(record)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 100, 255, 256])
def test_proofs_follow_the_specification_and_travel_in_base64(n: int) -> None:
    import hashlib

    from node.transport.kafka._envelope import merkle_sign_b64

    key = ed25519.Ed25519PrivateKey.generate()
    leaves = [hashlib.sha256(b"leaf %d" % i).digest() for i in range(n)]
    # the README's construction, level by level: siblings paired, a lone node moves up unchanged
    levels = [leaves]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        levels.append([hashlib.sha256(b"\x01" + cur[i] + cur[i + 1]).digest() for i in range(0, len(cur) - 1, 2)]
                      + ([cur[-1]] if len(cur) % 2 else []))
    expected = []
    for i in range(n):
        proof, pos = b"", i
        for level in levels[:-1]:
            if pos % 2:
                proof += b"L" + level[pos - 1]
            elif pos + 1 < len(level):
                proof += b"R" + level[pos + 1]
            pos //= 2
        expected.append(proof)
    root, signature, proofs = merkle_sign(key, leaves)
    assert root == levels[-1][0] and proofs == expected
    root64, signature64, proofs64 = merkle_sign_b64(key, leaves)
    assert root64 == root and proofs64 == [base64.b64encode(p) for p in expected]
    key.public_key().verify(signature64, SIGNATURE_DOMAIN + root)
