"""The message envelope: CloudEvents 1.0 Kafka binding (binary mode), signed.

Headers of every message (values UTF-8)::

    ce_specversion   1.0
    ce_id            <dataset>/<record id>/<version>[/<consumer>]   unique per source
    ce_source        https://w3id.org/shulian/dept/<provider code>  the provider node
    ce_type          org.w3id.shulian.record.upserted | org.w3id.shulian.record.deleted
    ce_subject       <record id>   (= the Kafka key)
    ce_time          RFC 3339 UTC time of the change
    content-type     application/json   (upserts only; for an encrypted value: the decrypted data's type)
    ce_dataset       <dataset id at the provider>
    ce_recordversion <the provider's version of the record, 1, 2, ...>
    ce_recordtype    Person | LegalEntity | SocialInsuranceEnrollment | ElectronicLicense
    ce_projection    partial          (only when items were left out: withheld or not granted)
    ce_masked        <item>,<item>    (only when items were masked; they are not validated on receipt)
    ce_encryption    x25519-hkdf-sha256-aes256gcm   \\
    ce_encepk        <base64 ephemeral X25519 key>   } only on a consumer's topic
    ce_recipient     <consumer code>                /
    ce_signature     <base64 Ed25519 signature>
    ce_sigproof      <base64 Merkle proof; empty when the signature covers this message alone>

Signature. A message's *leaf* is::

    leaf = SHA-256( 0x00 || enc(key) || enc(SHA-256(value)) || enc(name_1) || enc(value_1) || ... )

over the signed headers sorted by name: every ``ce_*`` header except ``ce_signature``
and ``ce_sigproof``, plus ``content-type``; ``enc(b)`` is the 4-byte big-endian length of
``b`` followed by ``b``; a missing key or value counts as empty bytes; the value is the
bytes on the wire (the ciphertext when encrypted). The provider signs a batch of
messages at once: the leaves are the bottom of a binary hash tree whose inner nodes are
``SHA-256(0x01 || left || right)`` (a node without a sibling moves up unchanged), and
``ce_signature`` is Ed25519 over ``b"shulian-ce-signature/1\\x00" || root``. Each message
carries its own path to the root in ``ce_sigproof``: steps of 33 bytes, ``L`` or ``R``
(the sibling is on the left or the right) followed by the sibling's 32-byte hash. A
message signed alone has an empty proof and its leaf is the root. Every message can so
be checked on its own, and a consumer verifies one Ed25519 signature per batch.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

__all__ = [
    "SPECVERSION",
    "CONTENT_TYPE",
    "TYPE_UPSERTED",
    "TYPE_DELETED",
    "SOURCE_PREFIX",
    "SIGNATURE_DOMAIN",
    "PROJECTION_PARTIAL",
    "H_SIGNATURE",
    "H_PROOF",
    "source_for",
    "provider_from_source",
    "rfc3339_us",
    "leaf_hash",
    "LeafTemplate",
    "merkle_sign",
    "merkle_root",
    "SignatureVerifier",
    "Envelope",
    "EnvelopeError",
    "parse_envelope",
]

SPECVERSION = b"1.0"
CONTENT_TYPE = b"application/json"
TYPE_UPSERTED = "org.w3id.shulian.record.upserted"
TYPE_DELETED = "org.w3id.shulian.record.deleted"
SOURCE_PREFIX = "https://w3id.org/shulian/dept/"
SIGNATURE_DOMAIN = b"shulian-ce-signature/1\x00"
PROJECTION_PARTIAL = "partial"

H_SIGNATURE = "ce_signature"
H_PROOF = "ce_sigproof"
_UNSIGNED = frozenset((H_SIGNATURE, H_PROOF))
_STEP = 33
_MAX_PROOF_STEPS = 48
_sha256 = hashlib.sha256
_EMPTY_SHA = _sha256(b"").digest()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CODE_RE = re.compile(r"^[0-9A-Z]{18}\Z")


def source_for(code: str) -> str:
    """``ce_source`` of a provider node."""
    return SOURCE_PREFIX + code


def provider_from_source(source: str) -> str | None:
    """The provider code in a ``ce_source``, or None if it is not a Shulian node source."""
    if source.startswith(SOURCE_PREFIX):
        code = source[len(SOURCE_PREFIX):]
        if _CODE_RE.match(code):
            return code
    return None


_LAST_SECOND: list[tuple[int, str]] = [(-1, "")]  # one (second, text) pair, swapped whole (thread-safe)


def rfc3339_us(us: int) -> str:
    """An RFC 3339 UTC timestamp for microseconds since the epoch."""
    sec, frac = divmod(us, 1_000_000)
    cached = _LAST_SECOND[0]
    if cached[0] != sec:
        cached = (sec, (_EPOCH + dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S"))
        _LAST_SECOND[0] = cached
    return f"{cached[1]}.{frac:06d}Z"


_NAME_CACHE: dict[str, bytes | None] = {}
_MISS = b"?"  # never a real prefix (a prefix starts with 4 length bytes)


def _name_prefix(name: str) -> bytes | None:
    """enc(name) for a signed header name, None for a header the signature does not cover."""
    signed = (name.startswith("ce_") and name not in _UNSIGNED) or name == "content-type"
    nb = name.encode("utf-8", "surrogatepass")
    value = len(nb).to_bytes(4, "big") + nb if signed else None
    if len(_NAME_CACHE) < 4096:  # names come from the network: keep the cache bounded
        _NAME_CACHE[name] = value
    return value


_LAYOUTS: dict[tuple[str, ...], tuple[tuple[int, bytes], ...] | None] = {}


def _layout(names: tuple[str, ...]) -> tuple[tuple[int, bytes], ...] | None:
    """(position, enc(name)) of the signed headers in signing order; None when a name repeats."""
    if len(set(names)) != len(names):
        return None
    plan = []
    for i, name in enumerate(names):
        prefix = _NAME_CACHE.get(name, _MISS)
        if prefix is _MISS:
            prefix = _name_prefix(name)
        if prefix is not None:
            plan.append((name, i, prefix))
    plan.sort()
    out = tuple((i, prefix) for _n, i, prefix in plan)
    if len(_LAYOUTS) < 256:  # messages from one publisher share a handful of layouts
        _LAYOUTS[names] = out
    return out


def leaf_hash(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> bytes:
    """The leaf a message contributes to its batch's signature tree (see the module docstring)."""
    names = tuple([h[0] for h in headers])
    try:
        plan = _LAYOUTS[names]
    except KeyError:
        plan = _layout(names)
    k = key or b""
    parts = [b"\x00", len(k).to_bytes(4, "big"), k, b"\x00\x00\x00\x20",
             _sha256(value).digest() if value else _EMPTY_SHA]
    if plan is not None:
        for i, prefix in plan:
            val = headers[i][1] or b""
            parts += (prefix, len(val).to_bytes(4, "big"), val)
    else:  # a repeated header name: order by name, then value
        for _name, pre, val in sorted((n, _name_prefix(n), v or b"") for n, v in headers):
            if pre is not None:
                parts += (pre, len(val).to_bytes(4, "big"), val)
    return _sha256(b"".join(parts)).digest()


class LeafTemplate:
    """:func:`leaf_hash` for many messages sharing most headers (the publisher's fast path).

    ``constant`` are the headers every message carries with the same value; ``variable``
    the names whose values change per message, passed to :meth:`leaf` in that order.
    The result equals ``leaf_hash(key, value, constant + list(zip(variable, values)))``.
    """

    def __init__(self, constant: Sequence[tuple[str, bytes]], variable: Sequence[str]) -> None:
        names = {n for n, _ in constant} | set(variable)
        if len(names) != len(constant) + len(variable):
            raise ValueError("a header name appears twice")
        fixed = dict(constant)
        order = list(variable)
        # (constant bytes before a variable header + that header's encoded name, the variable's index)
        self._pairs: list[tuple[bytes, int]] = []
        chunk: list[bytes] = []
        for name in sorted(names):
            prefix = _name_prefix(name)
            if prefix is None:
                raise ValueError(f"{name} is not a signed header")
            if name in fixed:
                val = fixed[name]
                chunk += (prefix, len(val).to_bytes(4, "big"), val)
            else:
                chunk.append(prefix)
                self._pairs.append((b"".join(chunk), order.index(name)))
                chunk = []
        self._tail = b"".join(chunk)

    def leaf(self, key: bytes, value: bytes | None, values: Sequence[bytes]) -> bytes:
        parts = [b"\x00", len(key).to_bytes(4, "big"), key, b"\x00\x00\x00\x20",
                 _sha256(value).digest() if value else _EMPTY_SHA]
        for segment, index in self._pairs:
            val = values[index]
            parts += (segment, len(val).to_bytes(4, "big"), val)
        parts.append(self._tail)
        return _sha256(b"".join(parts)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [_node(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        raise ValueError("no leaves")
    return _levels(leaves)[-1][0]


def merkle_sign(key: ed25519.Ed25519PrivateKey, leaves: Sequence[bytes]) -> tuple[bytes, bytes, list[bytes]]:
    """Sign a batch: (root, signature, one proof per leaf)."""
    if not leaves:
        raise ValueError("no leaves")
    levels = _levels(leaves)
    root = levels[-1][0]
    signature = key.sign(SIGNATURE_DOMAIN + root)
    steps: list[list[bytes]] = []  # per level, per position: the proof step from there
    for level in levels[:-1]:
        n = len(level)
        steps.append([(b"R" + level[p + 1] if p + 1 < n else b"") if not p & 1 else b"L" + level[p - 1]
                      for p in range(n)])
    proofs = [b"".join([level_steps[i >> d] for d, level_steps in enumerate(steps)]) for i in range(len(leaves))]
    return root, signature, proofs


class SignatureVerifier:
    """Verifies message signatures, one Ed25519 verification per signed batch.

    Tree nodes already proven to lie under a root a provider signed are remembered
    (per provider, with that signature), so the other messages of the batch are
    checked with a few hashes. Not thread-safe: one verifier per consuming thread.
    """

    def __init__(self, max_nodes: int = 1_000_000) -> None:
        self._known: dict[str, dict[bytes, bytes]] = {}
        self._max = max_nodes
        self._size = 0

    def verify(self, provider: str, public_key: ed25519.Ed25519PublicKey, leaf: bytes, proof: bytes,
               signature: bytes) -> bool:
        """True if ``proof`` leads from ``leaf`` to a root that ``signature`` (by ``public_key``) signs."""
        n = len(proof)
        if n % _STEP or n // _STEP > _MAX_PROOF_STEPS:
            return False
        known = self._known.get(provider)
        if known is None:
            known = self._known[provider] = {}
        h = leaf
        cached = True  # stop at the first node already proven under this signature
        if known.get(h) == signature:
            return True
        path = [h]
        for off in range(0, n, _STEP):
            side = proof[off]
            sib = proof[off + 1:off + _STEP]
            if side == 0x4C:  # "L"
                h = _node(sib, h)
            elif side == 0x52:  # "R"
                h = _node(h, sib)
            else:
                return False
            if cached:
                seen = known.get(h)
                if seen is not None:
                    if seen == signature:
                        self._remember(known, path, signature)
                        return True
                    cached = False  # a known tree claimed with another signature: verify in full
            path.append(h)
        try:
            public_key.verify(signature, SIGNATURE_DOMAIN + h)
        except InvalidSignature:
            return False
        self._remember(known, path, signature)
        return True

    def _remember(self, known: dict[bytes, bytes], nodes: list[bytes], signature: bytes) -> None:
        if self._size + len(nodes) > self._max:
            self._known = {}
            self._size = 0
            return
        for node in nodes:
            known[node] = signature
        self._size += len(nodes)

    def forget(self) -> None:
        """Drop every remembered node (e.g. when the federation directory changes keys)."""
        self._known = {}
        self._size = 0


class EnvelopeError(Exception):
    """A message's envelope is unusable; ``code`` is the dead-letter reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Envelope(NamedTuple):
    """The checked-for-shape CloudEvents attributes of one message."""

    id: str
    source: str
    provider: str
    type: str
    subject: str
    time: str
    dataset: str
    version: int
    record_type: str | None
    partial: bool
    masked: frozenset[str]
    encryption: str | None
    epk: str | None
    recipient: str | None
    signature: bytes | None
    proof: bytes

    @property
    def deleted(self) -> bool:
        return self.type == TYPE_DELETED


_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_dataset", "ce_recordversion")
_NO_MASK: frozenset[str] = frozenset()
_TYPES = {TYPE_UPSERTED.encode(): TYPE_UPSERTED, TYPE_DELETED.encode(): TYPE_DELETED}


def _b64(raw: bytes) -> bytes | None:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_envelope(headers: Sequence[tuple[str, bytes | None]]) -> tuple[Envelope, dict[str, bytes]]:
    """Read the CloudEvents attributes from Kafka headers; :class:`EnvelopeError` if unusable."""
    hd: dict[str, bytes] = {name: value or b"" for name, value in headers}
    if len(hd) != len(headers):
        seen: set[str] = set()
        twice = next(n for n, _ in headers if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise EnvelopeError("UNPARSEABLE", f"header {twice} appears twice")
    try:
        if hd["ce_specversion"] != SPECVERSION:
            raise EnvelopeError("UNPARSEABLE", f"ce_specversion {hd['ce_specversion']!r} is not 1.0")
        ce_type = _TYPES.get(hd["ce_type"])
        source = hd["ce_source"].decode()
        ce_id = hd["ce_id"].decode()
        subject = hd["ce_subject"].decode()
        dataset = hd["ce_dataset"].decode()
        version_raw = hd["ce_recordversion"]
    except KeyError as exc:
        raise EnvelopeError("UNPARSEABLE", f"missing CloudEvents header {exc.args[0]} (binary mode)") from exc
    except UnicodeDecodeError as exc:
        raise EnvelopeError("UNPARSEABLE", "a CloudEvents header is not UTF-8") from exc
    provider = provider_from_source(source)
    if provider is None:
        raise EnvelopeError("UNEXPECTED_PROVIDER", f"ce_source {source[:120]!r} is not a Shulian node "
                            f"({SOURCE_PREFIX}<credit code>)")
    if ce_type is None:
        raise EnvelopeError("UNPARSEABLE", f"unknown ce_type {hd['ce_type'][:80]!r}")
    if not version_raw.isdigit() or len(version_raw) > 18 or version_raw[0] == 0x30:
        raise EnvelopeError("UNPARSEABLE", f"ce_recordversion {version_raw[:40]!r} is not a positive integer")
    if ce_type is TYPE_UPSERTED and hd.get("content-type") != CONTENT_TYPE and \
            hd.get("content-type", b"").split(b";")[0].strip().lower() != CONTENT_TYPE:
        raise EnvelopeError("UNPARSEABLE", "content-type must be application/json")
    raw_sig = hd.get(H_SIGNATURE)
    signature = None if not raw_sig else (_b64(raw_sig) or b"\x00")  # garbage: reported as a bad signature
    raw_proof = hd.get(H_PROOF)
    proof = b""
    if raw_proof:
        decoded = _b64(raw_proof)
        if decoded is None:
            raise EnvelopeError("BAD_SIGNATURE", "ce_sigproof is not base64")
        proof = decoded
    try:
        raw_type = hd.get("ce_recordtype")
        raw_masked = hd.get("ce_masked")
        raw_enc = hd.get("ce_encryption")
        env = Envelope(
            ce_id, source, provider, ce_type, subject,
            hd["ce_time"].decode() if "ce_time" in hd else "",
            dataset, int(version_raw),
            raw_type.decode() if raw_type is not None else None,
            hd.get("ce_projection") == b"partial",
            frozenset(m for m in raw_masked.decode().split(",") if m) if raw_masked else _NO_MASK,
            raw_enc.decode() if raw_enc is not None else None,
            hd["ce_encepk"].decode() if "ce_encepk" in hd else None,
            hd["ce_recipient"].decode() if "ce_recipient" in hd else None,
            signature, proof,
        )
    except UnicodeDecodeError as exc:
        raise EnvelopeError("UNPARSEABLE", "a CloudEvents header is not UTF-8") from exc
    return env, hd
