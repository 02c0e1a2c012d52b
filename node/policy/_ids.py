"""IRIs, identifier syntax and small text normalisers used across the policy package.

Everything here is pure and cheap. The IRI scheme is defined once, here:

- department:  ``https://w3id.org/shulian/dept/<unified social credit code>``
- dataset:     ``https://w3id.org/shulian/dataset/<percent-encoded dataset id>``
- item:        ``<dataset IRI>/item/<record key>``
- policy:      ``<dataset IRI>/policy`` (one ``odrl:Set`` per dataset with grants)
- grant:       ``<dataset IRI>/grant/<grant id>``
- list:        ``https://w3id.org/shulian/list/<provider code>`` (``.../list/local`` without one)
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote, unquote

__all__ = [
    "SL",
    "ODRL",
    "PROFILE_IRI",
    "CHINA_TZ",
    "STRUCTURAL_KEYS",
    "dept_iri",
    "dataset_iri",
    "item_iri",
    "policy_iri",
    "grant_iri",
    "list_iri",
    "sharing_type_iri",
    "is_credit_code",
    "normalise_code",
    "check_credit_code",
    "check_dataset_id",
    "check_item_key",
    "normalise_text",
    "local_date",
    "make_grant_id",
]

SL = "https://w3id.org/shulian/ns#"
ODRL = "http://www.w3.org/ns/odrl/2/"
#: The ODRL profile IRI of the standard (declared in ontology/vocab/policy.ttl).
PROFILE_IRI = "https://w3id.org/shulian/profile/policy"
_BASE = "https://w3id.org/shulian/"
#: Dates in the list (grant expiry, request deadlines) are calendar dates in China Standard Time.
CHINA_TZ = timezone(timedelta(hours=8), "CST")

#: Keys every projection keeps: they identify the record, they are not information items.
STRUCTURAL_KEYS: tuple[str, ...] = ("id", "type")

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {c: i for i, c in enumerate(_CREDIT_ALPHABET)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_RE = re.compile(r"^[1-9ANY][0-9A-HJ-NPQRTUWXY]\d{6}[0-9A-HJ-NPQRTUWXY]{10}\Z")
_DATASET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~/:-]{0,127}\Z")
_ITEM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_WS_RE = re.compile(r"\s+")


def dept_iri(code: str) -> str:
    return f"{_BASE}dept/{code}"


def dataset_iri(dataset_id: str) -> str:
    return f"{_BASE}dataset/{quote(dataset_id, safe='-._~')}"


def dataset_id_from_iri(iri: str) -> str | None:
    prefix = f"{_BASE}dataset/"
    if not iri.startswith(prefix) or "/" in iri[len(prefix) :]:
        return None
    return unquote(iri[len(prefix) :])


def item_iri(dataset_id: str, key: str) -> str:
    return f"{dataset_iri(dataset_id)}/item/{key}"


def policy_iri(dataset_id: str) -> str:
    return f"{dataset_iri(dataset_id)}/policy"


def grant_iri(dataset_id: str, grant_id: str) -> str:
    return f"{dataset_iri(dataset_id)}/grant/{quote(grant_id, safe='-._~')}"


def list_iri(provider_code: str | None) -> str:
    return f"{_BASE}list/{provider_code or 'local'}"


def sharing_type_iri(notation: str) -> str:
    return f"{_BASE}code/sharing-type/{notation}"


def normalise_code(text: str) -> str:
    """Full-width to half-width, strip, upper-case (credit codes are written all ways)."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def is_credit_code(code: str) -> bool:
    """True when ``code`` is a well-formed GB 32100-2015 unified social credit code."""
    if not _CREDIT_RE.match(code):
        return False
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(code[:17], _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31] == code[17]


def check_credit_code(code: str, what: str = "department code") -> str:
    """Return the normalised code or raise ``ValueError`` with a readable reason."""
    norm = normalise_code(code)
    if not _CREDIT_RE.match(norm):
        raise ValueError(
            f"{what} {code!r} is not an 18-character unified social credit code (GB 32100), "
            "e.g. 91110000600037341L"
        )
    if not is_credit_code(norm):
        raise ValueError(f"{what} {code!r} has a wrong check character (GB 32100)")
    return norm


def check_dataset_id(dataset_id: str) -> str:
    norm = unicodedata.normalize("NFKC", dataset_id).strip()
    if not _DATASET_RE.match(norm):
        raise ValueError(
            f"dataset id {dataset_id!r} must be 1-128 characters of letters, digits and . _ ~ / : -, "
            "starting with a letter or digit (e.g. a resource code 101/000001)"
        )
    return norm


def check_item_key(key: str) -> str:
    norm = unicodedata.normalize("NFKC", key).strip()
    if not _ITEM_RE.match(norm):
        raise ValueError(f"item {key!r} is not a record key (letters, digits, _; e.g. identityNumber)")
    if norm in STRUCTURAL_KEYS:
        raise ValueError(f"item {norm!r} is the record's {norm}, always delivered; it cannot be granted")
    return norm


def normalise_text(text: str) -> str:
    """NFKC, trimmed, inner whitespace collapsed: how purposes are compared."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def local_date(moment: datetime) -> date:
    """The calendar date of ``moment`` in China Standard Time (naive datetimes are taken as CST)."""
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(CHINA_TZ).date()


def make_grant_id(
    consumer_code: str, purposes: tuple[str, ...], until: date | None, basis: str | None
) -> str:
    """A deterministic grant id: re-importing the same spreadsheet yields the same IRIs."""
    material = "\x1f".join(
        [consumer_code, "\x1e".join(purposes), until.isoformat() if until else "", basis or ""]
    )
    return f"{consumer_code}-{hashlib.sha256(material.encode()).hexdigest()[:10]}"
