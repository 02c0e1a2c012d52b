"""Checks for the identifiers a node configuration carries.

Each ``check_*`` function returns ``None`` when the value is fine, or a short
English sentence saying what is wrong (used in :class:`node.errors.ConfigError`
and :class:`node.errors.InputError` messages).
"""

from __future__ import annotations

import re

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "LEVELS",
    "SHARING_TYPES",
    "UPDATE_CYCLES",
    "RECORD_TYPES",
    "credit_code_check_char",
    "check_credit_code",
    "is_valid_credit_code",
    "check_division_code",
    "check_resource_code",
    "check_address",
    "check_dataset_id",
    "normalise_sharing_type",
    "normalise_update_cycle",
]

# GB 32100-2015: 31 symbols (no I, O, S, V, Z), values 0..30.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUES = {ch: i for i, ch in enumerate(CREDIT_CODE_ALPHABET)}

LEVELS: tuple[str, ...] = ("national", "provincial", "city", "county")

# canonical token -> accepted spellings (Chinese label first)
SHARING_TYPES: dict[str, tuple[str, ...]] = {
    "unconditional": ("无条件共享", "unconditional"),
    "conditional": ("有条件共享", "conditional"),
    "not_shared": ("不予共享", "not_shared", "not-shared"),
}
UPDATE_CYCLES: dict[str, tuple[str, ...]] = {
    "realtime": ("实时", "realtime", "real-time"),
    "daily": ("每日", "daily"),
    "weekly": ("每周", "weekly"),
    "monthly": ("每月", "monthly"),
    "quarterly": ("每季度", "quarterly"),
    "yearly": ("每年", "yearly", "annual"),
    "irregular": ("不定期", "irregular"),
}
# record types of the standard (node.validation owns their shapes)
RECORD_TYPES: tuple[str, ...] = ("Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense")

_DIVISION_RE = re.compile(r"^[0-9]{6}\Z")
# 类 (1 digit) + 项 (2) + 目 (3) + 细目 (0..n digits) "/" sequence (1..n digits)
_RESOURCE_RE = re.compile(r"^([1-9])([0-9]{2})([0-9]{3})([0-9]*)/([0-9]{1,12})\Z")
_DATASET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))\Z")


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a code."""
    if len(first17) != 17:
        raise ValueError("need exactly 17 characters")
    total = 0
    for ch, weight in zip(first17, _CREDIT_WEIGHTS, strict=True):
        value = _CREDIT_VALUES.get(ch)
        if value is None:
            raise ValueError(f"character {ch!r} is not in the GB 32100 alphabet")
        total += value * weight
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(code: object) -> str | None:
    """Why ``code`` is not a valid unified social credit code, or None."""
    if not isinstance(code, str):
        return f"must be a string, not {type(code).__name__}"
    if len(code) != 18:
        return f"unified social credit code {code!r} must have 18 characters, it has {len(code)}"
    if code != code.upper():
        return f"unified social credit code {code!r} must use upper-case letters"
    bad = sorted({ch for ch in code if ch not in _CREDIT_VALUES})
    if bad:
        return (
            f"unified social credit code {code!r} has characters outside the GB 32100 alphabet: "
            + ", ".join(repr(ch) for ch in bad)
        )
    expected = credit_code_check_char(code[:17])
    if code[17] != expected:
        return f"unified social credit code {code!r} has check character {code[17]!r}, expected {expected!r}"
    return None


def is_valid_credit_code(code: object) -> bool:
    return check_credit_code(code) is None


def check_division_code(code: object) -> str | None:
    if not isinstance(code, str):
        return f"must be a string of 6 digits, not {type(code).__name__}"
    if not _DIVISION_RE.match(code):
        return f"division code {code!r} must be 6 digits (GB/T 2260), e.g. '110105'"
    return None


def check_resource_code(code: object) -> str | None:
    if not isinstance(code, str):
        return f"must be a string, not {type(code).__name__}"
    if not _RESOURCE_RE.match(code):
        return (
            f"resource code {code!r} must be <类 1 digit><项 2><目 3><细目 digits>/<sequence digits>, "
            "e.g. '1010100/000001'"
        )
    return None


def check_address(address: object, *, allow_port_zero: bool = True) -> str | None:
    """``host:port`` (IPv6 as ``[::1]:port``)."""
    if not isinstance(address, str):
        return f"must be a 'host:port' string, not {type(address).__name__}"
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port:
        return f"address {address!r} must be 'host:port', e.g. '127.0.0.1:50051'"
    if not _HOST_RE.match(host):
        return f"address {address!r} has a bad host {host!r}"
    if not port.isdigit() or not (0 if allow_port_zero else 1) <= int(port) <= 65535:
        return f"address {address!r} has a bad port {port!r} (0-65535)"
    return None


def check_dataset_id(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not _DATASET_RE.match(value):
        return f"dataset id {value!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}"
    return None


def _normalise(value: object, table: dict[str, tuple[str, ...]], what: str) -> tuple[str | None, str | None]:
    if isinstance(value, str):
        for canonical, spellings in table.items():
            if value in spellings:
                return canonical, None
    allowed = ", ".join(f"{names[1]} ({names[0]})" for names in table.values())
    return None, f"unknown {what} {value!r}; use one of: {allowed}"


def normalise_sharing_type(value: object) -> tuple[str | None, str | None]:
    """(canonical token, None) or (None, problem)."""
    return _normalise(value, SHARING_TYPES, "sharing type")


def normalise_update_cycle(value: object) -> tuple[str | None, str | None]:
    return _normalise(value, UPDATE_CYCLES, "update cycle")
