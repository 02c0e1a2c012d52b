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

import binascii
import datetime as dt
import hashlib
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

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
    "merkle_sign_b64",
    "merkle_root",
    "SignatureVerifier",
    "Envelope",
    "EnvelopeError",
    "parse_envelope",
    "read_envelope",
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
_MAX_PROOF_BYTES = _MAX_PROOF_STEPS * _STEP
_sha256 = hashlib.sha256
_EMPTY_SHA = _sha256(b"").digest()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CODE_RE = re.compile(r"^[0-9A-Z]{18}\Z")
_NO_NODES: dict[bytes, bytes] = {}
_LEN4 = [i.to_bytes(4, "big") for i in range(1024)]  # enc()'s length prefix of short values
_new_envelope: Any = tuple.__new__  # Envelope(...) without its Python-level __new__


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
    return "%s.%06dZ" % (cached[1], frac)  # noqa: UP031 - a third faster than the f-string here


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
        n = len(key)
        parts = [b"\x00", _LEN4[n] if n < 1024 else n.to_bytes(4, "big"), key, b"\x00\x00\x00\x20",
                 _sha256(value).digest() if value else _EMPTY_SHA]
        for segment, index in self._pairs:
            val = values[index]
            n = len(val)
            parts += (segment, _LEN4[n] if n < 1024 else n.to_bytes(4, "big"), val)
        parts.append(self._tail)
        return _sha256(b"".join(parts)).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [_sha256(b"\x01" + cur[i] + cur[i + 1]).digest() for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        raise ValueError("no leaves")
    return _levels(leaves)[-1][0]


def _proofs(levels: list[list[bytes]], encode: Callable[[bytes], bytes] | None) -> list[bytes]:
    """Each leaf's proof, built from the root down: a node's proof is its step then its parent's.

    Every step is 33 bytes, a multiple of 3, so its base64 has no padding and the base64
    of a proof is the concatenation of its steps' base64 (``encode``): each step is
    encoded once per tree, not once per message.
    """
    above = [b""]  # the root needs no step
    for d in range(len(levels) - 2, -1, -1):
        level = levels[d]
        n = len(level)
        here = []
        for p in range(n):
            if p & 1:
                step = b"L" + level[p - 1]
            elif p + 1 < n:
                step = b"R" + level[p + 1]
            else:  # no sibling: moves up unchanged, no step
                here.append(above[p >> 1])
                continue
            here.append((encode(step) if encode is not None else step) + above[p >> 1])
        above = here
    return above


def merkle_sign(key: ed25519.Ed25519PrivateKey, leaves: Sequence[bytes]) -> tuple[bytes, bytes, list[bytes]]:
    """Sign a batch: (root, signature, one proof per leaf)."""
    if not leaves:
        raise ValueError("no leaves")
    levels = _levels(leaves)
    root = levels[-1][0]
    return root, key.sign(SIGNATURE_DOMAIN + root), _proofs(levels, None)


def _b64_step(step: bytes) -> bytes:
    return binascii.b2a_base64(step, newline=False)


def merkle_sign_b64(key: ed25519.Ed25519PrivateKey,
                    leaves: Sequence[bytes]) -> tuple[bytes, bytes, list[bytes]]:
    """:func:`merkle_sign` with each proof in base64, as ``ce_sigproof`` carries it."""
    if not leaves:
        raise ValueError("no leaves")
    levels = _levels(leaves)
    root = levels[-1][0]
    return root, key.sign(SIGNATURE_DOMAIN + root), _proofs(levels, _b64_step)


class SignatureVerifier:
    """Verifies message signatures, one Ed25519 verification per signed tree.

    Once a message's path leads to a root its provider signed, every node on that
    path and every sibling hash its proof named is known to lie under that root (a
    sibling is a child of a proven node). They are remembered (per provider, with the
    signature), so each other message of the tree is checked with a dictionary
    look-up or a hash or two: its own leaf is computed and must meet a proven node,
    so an altered message still fails. Memory is bounded: past ``max_nodes`` the
    remembered nodes become an older generation, dropped at the next turn. Not
    thread-safe: one verifier per consuming thread.
    """

    def __init__(self, max_nodes: int = 200_000) -> None:
        self._known: dict[str, dict[bytes, bytes]] = {}
        self._old: dict[str, dict[bytes, bytes]] = {}
        self._max = max_nodes
        self._size = 0

    def verify(self, provider: str, public_key: ed25519.Ed25519PublicKey, leaf: bytes, proof: bytes,
               signature: bytes) -> bool:
        """True if ``proof`` leads from ``leaf`` to a root that ``signature`` (by ``public_key``) signs."""
        n = len(proof)
        if n % _STEP or n > _MAX_PROOF_BYTES:
            return False
        known = self._known.get(provider)
        if known is None:
            known = self._known[provider] = {}
        old = self._old.get(provider, _NO_NODES)
        seen = known.get(leaf)
        if seen is None:
            seen = old.get(leaf)
        if seen is not None:
            if seen == signature:
                return True
            cached = False  # a known node claimed with another signature: verify in full
        else:
            cached = True  # stop at the first node already proven under this signature
        h = leaf
        nodes = [h]
        for off in range(0, n, _STEP):
            side = proof[off]
            sib = proof[off + 1:off + _STEP]
            if side == 0x4C:  # "L"
                h = _sha256(b"\x01" + sib + h).digest()
            elif side == 0x52:  # "R"
                h = _sha256(b"\x01" + h + sib).digest()
            else:
                return False
            nodes.append(sib)
            nodes.append(h)
            if cached:
                seen = known.get(h)
                if seen is None:
                    seen = old.get(h)
                if seen is not None:
                    if seen == signature:
                        self._remember(provider, nodes, signature)
                        return True
                    cached = False
        try:
            public_key.verify(signature, SIGNATURE_DOMAIN + h)
        except InvalidSignature:
            return False
        self._remember(provider, nodes, signature)
        return True

    def _remember(self, provider: str, nodes: list[bytes], signature: bytes) -> None:
        if self._size + len(nodes) > self._max:
            self._old = self._known  # the older generation is still consulted until the next turn
            self._known = {}
            self._size = 0
        known = self._known.get(provider)
        if known is None:
            known = self._known[provider] = {}
        for node in nodes:  # a few at a time: cheaper than update(dict.fromkeys(...))
            known[node] = signature
        self._size += len(nodes)  # an upper bound (a node may be there already)

    def forget(self) -> None:
        """Drop every remembered node (e.g. when the federation directory changes keys)."""
        self._known = {}
        self._old = {}
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

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # unpickled by tuple.__new__ alone (no Python-level __new__): batches cross to a helper process
        return _new_envelope, (Envelope, tuple(self))


_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_dataset", "ce_recordversion")
_NO_MASK: frozenset[str] = frozenset()
_TYPES = {TYPE_UPSERTED.encode(): TYPE_UPSERTED, TYPE_DELETED.encode(): TYPE_DELETED}
_a2b = binascii.a2b_base64


def _b64(raw: bytes) -> bytes | None:
    try:  # base64.b64decode(raw, validate=True) without its wrapper
        return _a2b(raw, strict_mode=True)
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


# ---- the receiver's fast path: parse_envelope and leaf_hash in one pass ------------------
#: the signed headers whose values change from message to message; a publisher sends the others
#: (source, dataset, type, record type, content type, projection, masks, encryption) unchanged
_PER_MESSAGE = ("ce_id", "ce_recordversion", "ce_subject", "ce_time")  # in signing (sorted) order
#: the headers the fast path reads by position from each message, in this order
_VARIABLE_NAMES = (*_PER_MESSAGE, H_SIGNATURE, H_PROOF)
#: the headers of every message the fast path reads (a publisher sends them all)
_FAST_NAMES = frozenset((*_REQUIRED, *_VARIABLE_NAMES))
_KEY_HEAD = [b"\x00" + n for n in _LEN4]  # the leaf preimage's start: 0x00 || the key's length
_VALUE_HEAD = b"\x00\x00\x00\x20"  # enc(SHA-256(value))'s length prefix
#: (raw ce_signature, decoded) of the last signature read, swapped whole; an empty one means none
_LAST_SIG: list[tuple[bytes, bytes | None]] = [(b"", None)]
_Getter = Callable[[Sequence[Any]], tuple[Any, ...]]


class _Constants(NamedTuple):
    """What one shape's constant headers say, for one tuple of their values (see :class:`_Shape`)."""

    size: int  # the number of headers
    pairs: tuple[tuple[str, bytes], ...]  # the constant headers (name, value), as get_constant gives them
    get_constant: _Getter  # headers -> the constant headers
    get_variable: _Getter  # headers -> the headers named in _VARIABLE_NAMES, in that order
    others: tuple[str, ...]  # the names of the headers neither signed nor read (their values do not matter)
    get_others: _Getter | None  # headers -> those headers (None: there are none)
    #: the leaf preimage's 5 pieces around the per-message headers, then what the constant headers say
    #: (Envelope's source, provider, type, dataset, record_type, partial, masked, encryption, epk, recipient):
    #: a plain tuple, unpacked faster than a named one
    said: tuple[Any, ...]


def _none(_headers: Sequence[Any]) -> tuple[Any, ...]:
    return ()


_NO_CONSTANTS = _Constants(-1, (), _none, _none, (), None, ())


def _getter(positions: Sequence[int]) -> _Getter:
    """``seq -> tuple(seq[i] for i in positions)`` at C speed."""
    if len(positions) >= 2:
        return operator.itemgetter(*positions)
    only = positions[0]
    return lambda seq: (seq[only],)


class _Shape:
    """What a message's header names (in order) tell, worked out once per name tuple.

    Only what a publisher sends is read here: no name twice, the required headers, the
    per-message ones (``_PER_MESSAGE``), ``ce_signature`` and ``ce_sigproof``. The leaf's
    preimage after the key and value is, in signing order, enc(name) || enc(value) of
    every signed header: the per-message headers are spliced between five segments that
    encode the others. Those segments, and what the other headers mean, are worked out
    once per tuple of their values (bounded cache).
    """

    __slots__ = ("size", "constant", "get_constant", "get_variable", "others", "get_others", "cache", "_signed")

    def __init__(self, names: tuple[str, ...]) -> None:
        where = {name: i for i, name in enumerate(names)}
        signed = []
        for name in sorted(names):
            prefix = _NAME_CACHE.get(name, _MISS)
            if prefix is _MISS:
                prefix = _name_prefix(name)
            if prefix is not None:
                signed.append((name, prefix))
        self.size = len(names)
        self._signed = signed
        self.constant = tuple(n for n, _ in signed if n not in _PER_MESSAGE)  # at least the 4 required others
        self.get_constant = _getter([where[n] for n in self.constant])
        self.get_variable = _getter([where[n] for n in _VARIABLE_NAMES])
        self.others = tuple(n for n in names if n not in self.constant and n not in _VARIABLE_NAMES)
        self.get_others = _getter([where[n] for n in self.others]) if self.others else None
        self.cache: dict[tuple[bytes, ...], _Constants | None] = {}

    def constants(self, values: tuple[bytes, ...]) -> _Constants | None:
        """Decode and check the constant headers (None: anything unusual, for the general path)."""
        try:
            return self.cache[values]
        except KeyError:
            if len(self.cache) >= 64:  # bounded: values come from the network
                self.cache.clear()
            out = self.cache[values] = self._constants(values)
            return out

    def _constants(self, values: tuple[bytes | None, ...]) -> _Constants | None:
        if any(v.__class__ is not bytes for v in values):
            return None
        hd: dict[str, bytes] = dict(zip(self.constant, values, strict=True))  # type: ignore[arg-type]
        ce_type = _TYPES.get(hd["ce_type"])
        if hd["ce_specversion"] != SPECVERSION or ce_type is None or \
                (ce_type is TYPE_UPSERTED and hd.get("content-type") != CONTENT_TYPE):
            return None
        try:
            source = hd["ce_source"].decode()
            provider = provider_from_source(source)
            raw_masked = hd.get("ce_masked")
            masked = frozenset(m for m in raw_masked.decode().split(",") if m) if raw_masked else _NO_MASK
            dataset, record_type, encryption, epk, recipient = [
                hd[n].decode() if n in hd else None
                for n in ("ce_dataset", "ce_recordtype", "ce_encryption", "ce_encepk", "ce_recipient")]
        except UnicodeDecodeError:
            return None
        if provider is None or dataset is None:
            return None
        segments: list[bytes] = []
        chunk: list[bytes] = []
        for name, prefix in self._signed:
            if name in hd:
                val = hd[name]
                chunk += (prefix, len(val).to_bytes(4, "big"), val)
            else:
                chunk.append(prefix)
                segments.append(b"".join(chunk))
                chunk = []
        segments.append(b"".join(chunk))
        s0, s1, s2, s3, s4 = segments  # five: the four per-message headers are there
        return _Constants(self.size, tuple(zip(self.constant, values, strict=True)),  # type: ignore[arg-type]
                          self.get_constant, self.get_variable, self.others, self.get_others,
                          (s0, s1, s2, s3, s4, source, provider, ce_type, dataset, record_type,
                           hd.get("ce_projection") == b"partial", masked, encryption, epk, recipient))


_SHAPES: dict[tuple[str, ...], _Shape | None] = {}
_LAST: list[_Constants] = [_NO_CONSTANTS]  # those of the last message read here, swapped whole


def _shape(names: tuple[str, ...]) -> _Shape | None:
    shape = _Shape(names) if len(set(names)) == len(names) and _FAST_NAMES.issubset(names) else None
    if len(_SHAPES) < 256:  # messages from one publisher share a handful of shapes
        _SHAPES[names] = shape
    return shape


def _identify(headers: Sequence[tuple[str, bytes | None]]) -> _Constants | None:
    """The constants of a message of another shape, or with other constants, than the last one."""
    names, values = zip(*headers, strict=True)  # ValueError: no headers, or one not a pair
    try:
        shape = _SHAPES[names]
    except KeyError:
        shape = _shape(names)
    if shape is None:
        return None
    c = shape.constants(shape.get_constant(values))
    if c is not None:
        _LAST[0] = c
    return c


def _general(key: bytes | None, value: bytes | None,
             headers: Sequence[tuple[str, bytes | None]]) -> tuple[Envelope, bytes]:
    env, _ = parse_envelope(headers)
    return env, leaf_hash(key, value, headers)


def read_envelope(key: bytes | None, value: bytes | None,
                  headers: Sequence[tuple[str, bytes | None]]) -> tuple[Envelope, bytes]:
    """``(parse_envelope(headers)[0], leaf_hash(key, value, headers))`` in one pass, same results.

    The common shape (what a publisher sends: see :class:`_Shape`; every value present,
    each attribute well formed) is read here, with what the headers a publisher sends
    unchanged say worked out once: a message whose constant headers (names, places and
    values) and other header names are the last one's is read by position. Anything
    else, and every refusal, goes through :func:`parse_envelope` and :func:`leaf_hash`,
    so the results and the errors are theirs. :class:`EnvelopeError` if the envelope is
    unusable.
    """
    c = _LAST[0]
    try:
        if len(headers) != c.size or c.get_constant(headers) != c.pairs or \
                (c.get_others is not None and tuple([n for n, _v in c.get_others(headers)]) != c.others):
            found = _identify(headers)
            if found is None:
                return _general(key, value, headers)
            c = found
        (n0, ce_id), (n1, version_raw), (n2, subject), (n3, time), (n4, raw_sig), (n5, raw_proof) = \
            c.get_variable(headers)
        if (n0, n1, n2, n3, n4, n5) != _VARIABLE_NAMES or not version_raw.isdigit() or len(version_raw) > 18 or \
                version_raw[0] == 0x30:
            return _general(key, value, headers)
        last = _LAST_SIG[0]
        if raw_sig == last[0]:
            signature = last[1]
        elif raw_sig:
            signature = _b64(raw_sig)
            if not signature:  # garbage: the general path says what
                return _general(key, value, headers)
            _LAST_SIG[0] = (raw_sig, signature)
        else:
            signature = None
        proof = _a2b(raw_proof, strict_mode=True) if raw_proof else b""  # binascii.Error: the general path
        (s0, s1, s2, s3, s4, source, provider, ce_type, dataset, record_type, partial, masked, encryption, epk,
         recipient) = c.said
        env: Envelope = _new_envelope(Envelope, (  # the fields in order, as Envelope(...) takes them
            ce_id.decode(), source, provider, ce_type, subject.decode(), time.decode(), dataset, int(version_raw),
            record_type, partial, masked, encryption, epk, recipient, signature, proof))
        leaf = _sha256(b"".join((
            _KEY_HEAD[len(key)], key, _VALUE_HEAD, _sha256(value).digest() if value else _EMPTY_SHA,  # type: ignore[arg-type]
            s0, _LEN4[len(ce_id)], ce_id, s1, _LEN4[len(version_raw)], version_raw,
            s2, _LEN4[len(subject)], subject, s3, _LEN4[len(time)], time, s4))).digest()
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):  # None, not UTF-8 or base64, too long ...
        return _general(key, value, headers)
    return env, leaf
