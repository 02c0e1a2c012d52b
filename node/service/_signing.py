"""Batch signatures: a provider signs every batch of records it sends.

The digest is defined in ``schemas/proto/shulian/v1/common.proto`` (``RecordBatch``)
so that any implementation can check it::

    SHA-256( "shulian.v1.RecordBatch" 0x00 dataset 0x00
             then per record: id 0x00 version 0x00 ("1"|"0") 0x00 len(payload) 0x00 payload )

Numbers are ASCII decimal. The signature is Ed25519 by the provider's signing key over
the 32 digest bytes; the public key is the provider's ``signing_key`` in the federation
directory, named by :func:`node.pki.key_id`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from node.errors import IntegrityError

__all__ = ["batch_digest", "digest_prefix", "tail_digest", "sign_batch", "sign_digest", "verify_batch"]

_TAG = b"shulian.v1.RecordBatch\x00"

# (id, version, deleted, payload)
BatchItem = tuple[str, int, bool, bytes]


def batch_digest(dataset: str, records: Iterable[BatchItem]) -> bytes:
    """The 32-byte SHA-256 digest of a batch (see the module docstring)."""
    return tail_digest(dataset, b"".join([
        b"%s\x00%d\x00%s\x00%d\x00%s" % (rid.encode("utf-8"), version, b"1" if deleted else b"0", len(payload), payload)
        for rid, version, deleted, payload in records]))


def digest_prefix(dataset: str) -> bytes:
    """What the digest input of a batch of ``dataset`` starts with (the records follow)."""
    return _TAG + dataset.encode("utf-8") + b"\x00"


def tail_digest(dataset: str, tail: bytes) -> bytes:
    """The digest of a batch whose per-record part (everything after the dataset's 0x00) is ``tail``."""
    h = hashlib.sha256(digest_prefix(dataset))
    h.update(tail)
    return h.digest()


def sign_batch(key: ed25519.Ed25519PrivateKey, dataset: str, records: Iterable[BatchItem]) -> bytes:
    return key.sign(batch_digest(dataset, records))


def sign_digest(key: ed25519.Ed25519PrivateKey, digest: bytes) -> bytes:
    """Sign a batch given its digest (:func:`batch_digest`, :func:`tail_digest`)."""
    return key.sign(digest)


def verify_batch(public_key: ed25519.Ed25519PublicKey, dataset: str, records: Iterable[BatchItem],
                 signature: bytes) -> None:
    """Raise :class:`IntegrityError` unless ``signature`` signs this batch."""
    try:
        public_key.verify(signature, batch_digest(dataset, records))
    except InvalidSignature as exc:
        raise IntegrityError(f"a batch of dataset {dataset!r} does not verify against the provider's key",
                             reason="BAD_BATCH_SIGNATURE") from exc
