"""Node keys: Ed25519 for signing (records, evidence), X25519 for encryption to a member.

Private keys are PEM PKCS#8 files, mode 0600. Public keys travel as base64 of
the 32 raw bytes (the federation directory) or as PEM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from node.errors import InputError

__all__ = [
    "generate_signing_key",
    "generate_encryption_key",
    "load_signing_key",
    "load_encryption_key",
    "load_signing_public_key",
    "signing_public_key_from_b64",
    "encryption_public_key_from_b64",
    "public_key_b64",
    "key_id",
    "write_private_key",
]

PublicKey = ed25519.Ed25519PublicKey | x25519.X25519PublicKey


def write_private_key(path: Path, pem: bytes) -> None:
    """Write a private key PEM file readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)


def _private_pem(key: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def generate_signing_key(path: Path | None = None) -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 key, written to ``path`` if given."""
    key = ed25519.Ed25519PrivateKey.generate()
    if path is not None:
        write_private_key(path, _private_pem(key))
    return key


def generate_encryption_key(path: Path | None = None) -> x25519.X25519PrivateKey:
    """A new X25519 key, written to ``path`` if given."""
    key = x25519.X25519PrivateKey.generate()
    if path is not None:
        write_private_key(path, _private_pem(key))
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: {what} file not found") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} file: {exc.strerror}") from exc


def load_signing_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """Load an Ed25519 private key (PEM)."""
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path}: not a PEM private key ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InputError(f"{path}: the signing key must be Ed25519, found {type(key).__name__}")
    return key


def load_encryption_key(path: Path) -> x25519.X25519PrivateKey:
    """Load an X25519 private key (PEM)."""
    data = _read(path, "encryption key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path}: not a PEM private key ({exc})") from exc
    if not isinstance(key, x25519.X25519PrivateKey):
        raise InputError(f"{path}: the encryption key must be X25519, found {type(key).__name__}")
    return key


def load_signing_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    """An Ed25519 public key from a file holding a PEM public key, a PEM private key
    (its public half is used) or the base64 of the 32 raw bytes."""
    data = _read(path, "public key").strip()
    if data.startswith(b"-----BEGIN") and b"PRIVATE KEY" in data.split(b"\n", 1)[0]:
        return load_signing_key(path).public_key()
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InputError(f"{path}: not a PEM public key ({exc})") from exc
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise InputError(f"{path}: the public key must be Ed25519, found {type(key).__name__}")
        return key
    try:
        return signing_public_key_from_b64(data.decode("ascii"))
    except (InputError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not an Ed25519 public key (PEM or base64 of 32 bytes)") from exc


def _raw_from_b64(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} is not valid base64") from exc
    if len(raw) != 32:
        raise InputError(f"{what} must be 32 bytes, found {len(raw)}")
    return raw


def signing_public_key_from_b64(value: str) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(_raw_from_b64(value, "Ed25519 public key"))


def encryption_public_key_from_b64(value: str) -> x25519.X25519PublicKey:
    return x25519.X25519PublicKey.from_public_bytes(_raw_from_b64(value, "X25519 public key"))


def _public(key: PublicKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey):
        return key.public_key()
    return key


def public_key_b64(key: PublicKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> str:
    """Base64 of the 32 raw public-key bytes (for a private key: of its public half)."""
    raw = _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(key: PublicKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> str:
    """A short stable name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
