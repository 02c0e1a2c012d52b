"""Encrypting a consumer's projection to its X25519 key.

Scheme ``x25519-hkdf-sha256-aes256gcm`` (one ephemeral key per batch and recipient):

- the provider makes an ephemeral X25519 key pair ``(e, E)``; ``shared = X25519(e, R)``
  with the recipient's public key ``R`` from the federation directory;
- ``key = HKDF-SHA256(shared, salt = E || R, info = b"shulian-kafka-value/1", 32 bytes)``;
- each value is ``nonce (12 random bytes) || AES-256-GCM(key, nonce, plaintext, aad = ce_id)``;
- headers: ``ce_encryption`` (the scheme), ``ce_encepk`` (base64 of ``E``), ``ce_recipient``
  (the consumer's code). The signature covers the ciphertext and those headers.

A fresh ephemeral key per batch keeps forward secrecy per batch while costing one
key agreement per batch instead of one per message; random 96-bit nonces are safe far
beyond a batch's size.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ENCRYPTION_SCHEME", "Sealer", "Opener", "DecryptionError"]

ENCRYPTION_SCHEME = "x25519-hkdf-sha256-aes256gcm"
_INFO = b"shulian-kafka-value/1"
_NONCE = 12


def _raw(key: x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _derive(shared: bytes, epk: bytes, recipient: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + recipient, info=_INFO).derive(shared)
    return AESGCM(key)


class DecryptionError(Exception):
    """The value cannot be decrypted (wrong recipient, altered, or not our scheme)."""


class Sealer:
    """Encrypts values to one recipient under one ephemeral key (use one per batch)."""

    def __init__(self, recipient: x25519.X25519PublicKey) -> None:
        eph = x25519.X25519PrivateKey.generate()
        epk = _raw(eph.public_key())
        self._aead = _derive(eph.exchange(recipient), epk, _raw(recipient))
        self.epk_b64 = base64.b64encode(epk)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)


class Opener:
    """Decrypts values sent to this node; derived keys are cached per ephemeral key."""

    def __init__(self, private_key: x25519.X25519PrivateKey, cache_size: int = 256) -> None:
        self._key = private_key
        self._pub = _raw(private_key.public_key())
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
        self._size = cache_size

    def _aead(self, epk_b64: str) -> AESGCM:
        aead = self._cache.get(epk_b64)
        if aead is not None:
            self._cache.move_to_end(epk_b64)
            return aead
        try:
            epk = base64.b64decode(epk_b64, validate=True)
            peer = x25519.X25519PublicKey.from_public_bytes(epk)
            shared = self._key.exchange(peer)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError(f"ce_encepk is not an X25519 public key ({exc})") from exc
        aead = _derive(shared, epk, self._pub)
        self._cache[epk_b64] = aead
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return aead

    def open(self, epk_b64: str, value: bytes, aad: bytes) -> bytes:
        if len(value) < _NONCE + 16:
            raise DecryptionError("the encrypted value is too short")
        aead = self._aead(epk_b64)
        try:
            return aead.decrypt(value[:_NONCE], value[_NONCE:], aad)
        except InvalidTag as exc:
            raise DecryptionError("the value does not decrypt with this node's key (altered, or for "
                                  "another recipient)") from exc
