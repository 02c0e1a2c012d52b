"""The federation directory: who the members are, signed by the federation CA.

File format (UTF-8 JSON, keys sorted, 2-space indent)::

    {
      "format": "shulian-federation-directory/1",
      "federation": "<name>",
      "version": 3,                       # +1 on every change
      "updated": "2025-01-02T03:04:05Z",
      "members": [                        # sorted by code
        {"code": "...", "name": "...", "level": "city", "division": "110100",
         "address": "host:port",
         "signing_key": "<base64 of the 32-byte Ed25519 public key>",
         "encryption_key": "<base64 of the 32-byte X25519 public key>"}
      ],
      "signature": {"alg": "ES256", "ca_fingerprint": "<sha256 of the CA cert DER>",
                    "value": "<base64 DER ECDSA signature>"}
    }

The signature covers the canonical bytes of everything except ``signature``:
``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8. A node refuses a directory whose signature does not verify.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519

from node.config import LEVELS, check_address, check_credit_code, check_division_code
from node.errors import InputError, IntegrityError, NotFound
from node.pki import (
    CertificateAuthority,
    encryption_public_key_from_b64,
    fingerprint,
    signing_public_key_from_b64,
)

__all__ = [
    "FORMAT",
    "FederationMember",
    "FederationDirectory",
    "DirectorySignature",
    "canonical_json",
    "sign_directory",
    "verify_directory",
    "read_directory_file",
    "load_directory",
    "write_directory_file",
]

FORMAT = "shulian-federation-directory/1"
SIGNATURE_ALG = "ES256"


def canonical_json(value: Any) -> bytes:
    """Canonical bytes: sorted keys, no spaces, UTF-8 (no ASCII escaping), no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FederationMember:
    code: str
    name: str
    level: str
    division: str
    address: str
    signing_key: str  # base64 of the raw Ed25519 public key
    encryption_key: str  # base64 of the raw X25519 public key

    def __post_init__(self) -> None:
        problems = _member_problems(dataclasses.asdict(self))
        if problems:
            key, message = problems[0]
            raise InputError(f"federation member {self.code!r}: {key}: {message}")

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def signing_public_key(self) -> ed25519.Ed25519PublicKey:
        return signing_public_key_from_b64(self.signing_key)

    def encryption_public_key(self) -> x25519.X25519PublicKey:
        return encryption_public_key_from_b64(self.encryption_key)


_MEMBER_KEYS = tuple(f.name for f in dataclasses.fields(FederationMember))


def _member_problems(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in _MEMBER_KEYS:
        if key not in d:
            problems.append((key, "missing"))
        elif not isinstance(d[key], str):
            problems.append((key, f"must be a string, not {type(d[key]).__name__}"))
    unknown = sorted(set(d) - set(_MEMBER_KEYS))
    if unknown:
        problems.append((unknown[0], "unknown key"))
    if problems:
        return problems
    checks = [
        ("code", check_credit_code(d["code"])),
        ("division", check_division_code(d["division"])),
        ("address", check_address(d["address"])),
        ("level", None if d["level"] in LEVELS else f"unknown level {d['level']!r}; use {', '.join(LEVELS)}"),
        ("name", None if d["name"].strip() else "must not be empty"),
    ]
    for key, loader in (("signing_key", signing_public_key_from_b64),
                        ("encryption_key", encryption_public_key_from_b64)):
        try:
            loader(d[key])
        except (InputError, ValueError) as exc:
            checks.append((key, str(exc)))
    return [(k, p) for k, p in checks if p]


@dataclass(frozen=True)
class FederationDirectory:
    federation: str
    version: int = 0
    updated: str = ""
    members: tuple[FederationMember, ...] = ()

    def __contains__(self, code: object) -> bool:
        return any(m.code == code for m in self.members)

    def __iter__(self) -> Iterator[FederationMember]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(m.code for m in self.members)

    def member(self, code: str) -> FederationMember:
        for m in self.members:
            if m.code == code:
                return m
        raise NotFound(f"department {code} is not a member of federation {self.federation!r}")

    def with_member(self, member: FederationMember) -> FederationDirectory:
        """A new version with ``member`` added (or replacing the member with its code)."""
        members = [m for m in self.members if m.code != member.code] + [member]
        return dataclasses.replace(self, version=self.version + 1, updated=_now_iso(),
                                   members=tuple(sorted(members, key=lambda m: m.code)))

    def without_member(self, code: str) -> FederationDirectory:
        self.member(code)  # NotFound if absent
        return dataclasses.replace(self, version=self.version + 1, updated=_now_iso(),
                                   members=tuple(m for m in self.members if m.code != code))

    def content(self) -> dict[str, Any]:
        """The signed content (everything but the signature)."""
        return {
            "format": FORMAT,
            "federation": self.federation,
            "version": self.version,
            "updated": self.updated,
            "members": [m.to_dict() for m in sorted(self.members, key=lambda m: m.code)],
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.content())

    @classmethod
    def from_content(cls, doc: Mapping[str, Any], where: str) -> FederationDirectory:
        if doc.get("format") != FORMAT:
            raise InputError(f"{where}: not a federation directory (format {doc.get('format')!r}, "
                             f"expected {FORMAT!r})")
        name, version, updated = doc.get("federation"), doc.get("version"), doc.get("updated", "")
        if not isinstance(name, str) or not isinstance(version, int) or isinstance(version, bool) \
                or not isinstance(updated, str):
            raise InputError(f"{where}: federation (string), version (integer) and updated (string) are required")
        raw_members = doc.get("members")
        if not isinstance(raw_members, list):
            raise InputError(f"{where}: members must be a list")
        members: list[FederationMember] = []
        seen: set[str] = set()
        for i, m in enumerate(raw_members):
            if not isinstance(m, dict):
                raise InputError(f"{where}: members[{i}] must be an object")
            problems = _member_problems(m)
            if problems:
                key, message = problems[0]
                raise InputError(f"{where}: members[{i}].{key}: {message}")
            if m["code"] in seen:
                raise InputError(f"{where}: members[{i}].code: {m['code']} is listed twice")
            seen.add(m["code"])
            members.append(FederationMember(**m))
        return cls(federation=name, version=version, updated=updated,
                   members=tuple(sorted(members, key=lambda x: x.code)))


@dataclass(frozen=True)
class DirectorySignature:
    ca_fingerprint: str
    value: str  # base64 of the DER ECDSA-SHA256 signature
    alg: str = SIGNATURE_ALG

    def to_dict(self) -> dict[str, str]:
        return {"alg": self.alg, "ca_fingerprint": self.ca_fingerprint, "value": self.value}


def sign_directory(directory: FederationDirectory, ca: CertificateAuthority) -> DirectorySignature:
    """Sign the directory's canonical bytes with the federation CA key (ECDSA P-256, SHA-256)."""
    if ca.key is None:
        raise InputError("the federation CA key is needed to sign the directory")
    sig = ca.key.sign(directory.canonical_bytes(), ec.ECDSA(hashes.SHA256()))
    return DirectorySignature(ca_fingerprint=fingerprint(ca.cert), value=base64.b64encode(sig).decode("ascii"))


def verify_directory(directory: FederationDirectory, signature: DirectorySignature | None,
                     ca_cert: x509.Certificate, *, where: str = "federation directory") -> None:
    """Raise :class:`IntegrityError` unless ``signature`` is the CA's over ``directory``."""
    _verify_bytes(directory.canonical_bytes(), signature, ca_cert, where)


def _verify_bytes(data: bytes, signature: DirectorySignature | None, ca_cert: x509.Certificate,
                  where: str) -> None:
    if signature is None:
        raise IntegrityError(f"{where}: the federation directory is not signed; "
                             "the CA operator must run 'shulian federation sign'")
    if signature.alg != SIGNATURE_ALG:
        raise IntegrityError(f"{where}: unsupported signature algorithm {signature.alg!r}; refusing it")
    expected_fp = fingerprint(ca_cert)
    if signature.ca_fingerprint != expected_fp:
        raise IntegrityError(f"{where}: signed by another CA (fingerprint {signature.ca_fingerprint[:16]}…), "
                             f"not the federation CA ({expected_fp[:16]}…); refusing it")
    public = ca_cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise IntegrityError(f"{where}: the federation CA key is not ECDSA")
    try:
        raw = base64.b64decode(signature.value, validate=True)
        public.verify(raw, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise IntegrityError(f"{where}: the signature does not verify: the directory was altered after "
                             "it was signed (or the signature is corrupt); refusing it") from exc


def _read_raw(path: Path) -> tuple[dict[str, Any], DirectorySignature | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: federation directory not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the federation directory: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: the federation directory is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path}: the federation directory must be a JSON object")
    raw_sig = doc.pop("signature", None)
    signature: DirectorySignature | None = None
    if raw_sig is not None:
        if not isinstance(raw_sig, dict) or not all(
                isinstance(raw_sig.get(k), str) for k in ("alg", "ca_fingerprint", "value")):
            raise IntegrityError(f"{path}: the signature block is malformed; refusing the directory")
        signature = DirectorySignature(alg=raw_sig["alg"], ca_fingerprint=raw_sig["ca_fingerprint"],
                                       value=raw_sig["value"])
    return doc, signature


def read_directory_file(path: Path) -> tuple[FederationDirectory, DirectorySignature | None]:
    """Parse a directory file WITHOUT verifying it (for editing). Use :func:`load_directory` to trust it."""
    path = Path(path)
    doc, signature = _read_raw(path)
    return FederationDirectory.from_content(doc, str(path)), signature


def load_directory(path: Path, ca_cert: x509.Certificate) -> FederationDirectory:
    """Read a directory file and verify its signature against the federation CA.

    The signature is checked over the file's own content before it is interpreted.
    Raises :class:`IntegrityError` when it is unsigned or the signature fails.
    """
    path = Path(path)
    doc, signature = _read_raw(path)
    signed = canonical_json(doc)
    _verify_bytes(signed, signature, ca_cert, str(path))
    directory = FederationDirectory.from_content(doc, str(path))
    if directory.canonical_bytes() != signed:
        raise InputError(f"{path}: the signed directory has content this version does not understand")
    return directory


def write_directory_file(path: Path, directory: FederationDirectory,
                         signature: DirectorySignature | None = None) -> None:
    """Write the directory (keys sorted, indented; signature inside), atomically."""
    path = Path(path)
    doc: dict[str, Any] = directory.content()
    if signature is not None:
        doc["signature"] = signature.to_dict()
    text = json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
