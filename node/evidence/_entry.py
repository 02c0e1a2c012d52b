"""Evidence entries: canonical bytes, hash, signature."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from node.errors import InputError

__all__ = [
    "GENESIS_HASH",
    "KIND_RE",
    "ACCESS_GRANTED",
    "ACCESS_REFUSED",
    "ACCESS_REQUESTED",
    "PUSH_ACCEPTED",
    "PUSH_REJECTED",
    "RECORDS_DELIVERED",
    "RECORDS_RECEIVED",
    "RECORDS_QUARANTINED",
    "EvidenceEntry",
    "entry_hash",
    "entry_hash_encoded",
    "canonical",
]

GENESIS_HASH = "0" * 64
KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")

# kinds in use (any dotted lower-case name is accepted)
ACCESS_REQUESTED = "access.requested"
ACCESS_GRANTED = "access.granted"
ACCESS_REFUSED = "access.refused"
PUSH_ACCEPTED = "push.accepted"
PUSH_REJECTED = "push.rejected"
RECORDS_DELIVERED = "records.delivered"
RECORDS_RECEIVED = "records.received"
RECORDS_QUARANTINED = "records.quarantined"


def _plain(value: Any) -> bool:
    """Only dicts with string keys, lists, strings, integers, booleans and None (exact types)?"""
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        v = pop()
        cls = v.__class__
        if cls is str or cls is int or cls is bool or v is None:
            continue
        if cls is dict:
            for k, item in v.items():
                if k.__class__ is not str:
                    return False
                push(item)
        elif cls is list:
            extend(v)
        else:  # a float, a tuple, a subclass ...: the stdlib encoder decides
            return False
    return True


def canonical(value: Any) -> bytes:
    """The canonical JSON of ``value``: sorted keys, no spaces, UTF-8 (the stdlib encoder's bytes).

    Values made only of dicts, lists, strings, integers, booleans and None are encoded by
    orjson, whose output for them is byte for byte the stdlib's (escapes included); floats
    (spelled differently by the two) and anything else take the stdlib encoder.
    """
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits, nesting beyond orjson's limit, a lone surrogate
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def canonical_plain(value: Any) -> bytes:
    """:func:`canonical` of a value the caller knows to be plain (what ``_plain`` checks), without the check."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return canonical(value)


def entry_hash(*, seq: int, time: str, kind: str, actor: str, details: Mapping[str, Any], prev_hash: str,
               key_id: str) -> str:
    """SHA-256 (hex) over the canonical JSON of every field except hash and signature."""
    return hashlib.sha256(canonical({
        "seq": seq, "time": time, "kind": kind, "actor": actor, "details": details,
        "prev_hash": prev_hash, "key_id": key_id,
    })).hexdigest()


def entry_hash_encoded(*, seq: int, time: str, kind: str, actor: str, details_json: bytes, prev_hash: str,
                       key_id: str) -> str:
    """:func:`entry_hash` with the details already encoded (``details_json`` = ``canonical(details)``).

    The canonical JSON of the entry is put together around the details' bytes: the
    same bytes :func:`canonical` writes for the whole entry (keys in sorted order), so
    the same hash, without encoding large details twice.
    """
    return hashlib.sha256(b"".join((
        b'{"actor":', canonical(actor), b',"details":', details_json, b',"key_id":', canonical(key_id),
        b',"kind":', canonical(kind), b',"prev_hash":', canonical(prev_hash), b',"seq":', canonical(seq),
        b',"time":', canonical(time), b"}"))).hexdigest()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class EvidenceEntry:
    seq: int
    time: str  # ISO 8601 UTC, e.g. 2025-01-02T03:04:05.123456Z
    kind: str  # e.g. access.granted
    actor: str  # who caused it: a department code, "operator:<name>", "node"
    details: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str  # which node key signed it (node.pki.key_id)
    signature: str  # base64 Ed25519 signature over bytes.fromhex(hash)

    def computed_hash(self, seq: int | None = None) -> str:
        return entry_hash(seq=self.seq if seq is None else seq, time=self.time, kind=self.kind, actor=self.actor,
                          details=self.details, prev_hash=self.prev_hash, key_id=self.key_id)

    def signature_ok(self, key: ed25519.Ed25519PublicKey) -> bool:
        try:
            key.verify(base64.b64decode(self.signature, validate=True), bytes.fromhex(self.hash))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "time": self.time, "kind": self.kind, "actor": self.actor, "details": self.details,
            "prev_hash": self.prev_hash, "hash": self.hash, "key_id": self.key_id, "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "entry") -> EvidenceEntry:
        fields = {"seq": int, "time": str, "kind": str, "actor": str, "details": dict, "prev_hash": str,
                  "hash": str, "key_id": str, "signature": str}
        for name, typ in fields.items():
            value = d.get(name)
            if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                raise InputError(f"{where}: field {name!r} missing or not a {typ.__name__}")
        return cls(seq=d["seq"], time=d["time"], kind=d["kind"], actor=d["actor"], details=dict(d["details"]),
                   prev_hash=d["prev_hash"], hash=d["hash"], key_id=d["key_id"], signature=d["signature"])
