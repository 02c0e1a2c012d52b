"""Native implementations of the standard's SHACL-SPARQL constraints.

Each function mirrors one ``sh:select`` query in ``ontology/shapes/records.ttl``
exactly (same filters, same error behaviour: a SPARQL expression error means
"no result"). The fast engine refuses to compile a SPARQL constraint that has no
entry here; ``tests/validation`` proves the pairs agree.

Terms are passed as ``(is_literal, lexical)``: the queries only look at
``isLiteral`` and ``STR``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "NATIVE_SPARQL",
    "NATIVE_SPARQL_STR",
    "NATIVE_SPARQL_INLINE",
    "NATIVE_INLINE_ENV",
    "NATIVE_FACTS",
    "gb11643_check_char",
    "gb32100_check_char",
    "gb11643_ok",
    "gb32100_ok",
    "Term",
]

Term = tuple[bool, str]  # (is literal, lexical form / IRI string)

# SPARQL REGEX has XPath semantics: "$" is the end of the string, so use \Z
ID_RE = re.compile(r"^[0-9]{17}[0-9X]\Z")
CC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}\Z")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
CC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CC_VALUE = {c: i for i, c in enumerate(CC_ALPHABET)}
_CC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


# per-position tables {character: value * weight}: summing lookups keeps the loop in C (hot path)
_ID_TABLES = tuple({str(d): d * w for d in range(10)} for w in _ID_WEIGHTS)
_CC_TABLES = tuple({c: v * w for c, v in _CC_VALUE.items()} for w in _CC_WEIGHTS)


def gb11643_check_char(first17: str) -> str:
    """The GB 11643 check character of 17 digits."""
    try:
        return _ID_CHECK[sum(map(dict.__getitem__, _ID_TABLES, first17[:17])) % 11]
    except KeyError as exc:
        raise ValueError(f"not a digit: {exc.args[0]!r}") from None


def gb32100_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a credit code."""
    try:
        s = sum(map(dict.__getitem__, _CC_TABLES, first17[:17]))
    except KeyError as exc:
        raise ValueError(f"not a credit code character: {exc.args[0]!r}") from None
    return CC_ALPHABET[(31 - s % 31) % 31]


def _gb11643_digits_check_py(v: str) -> str:
    """The check character of a value whose first 17 characters are ASCII digits (``ID_RE``
    matched; ``int`` would accept other text). The weights are 2^(18-i) mod 11 and 13 is 2 mod
    11, so the weighted sum is 2 * (the 17 digits read in base 13) mod 11: one C call."""
    return _ID_CHECK[2 * int(v[:17], 13) % 11]


_gb11643_digits_check: Callable[[str], str]
try:  # the same in C, an eighth of the time (optional: node/_fastprep.c; any other value takes Python's steps)
    from node._fastprep import gb11643_check as _gb11643_c
except ImportError:  # not built
    _gb11643_digits_check = _gb11643_digits_check_py
else:
    _gb11643_digits_check = _gb11643_c


def gb11643_ok(v: str) -> bool:
    """``v`` has the 18-character form and a correct check character."""
    return ID_RE.match(v) is not None and gb11643_check_char(v[:17]) == v[17]


def gb32100_ok(v: str) -> bool:
    return CC_RE.match(v) is not None and gb32100_check_char(v[:17]) == v[17]


# --- one function per SPARQL constraint: (value term, the record's terms by key) -> violation?


def _gb11643(value: Term, node: Mapping[str, Sequence[Term]]) -> bool:
    is_lit, v = value
    return is_lit and ID_RE.match(v) is not None and gb11643_check_char(v[:17]) != v[17]


def _gb32100(value: Term, node: Mapping[str, Sequence[Term]]) -> bool:
    is_lit, v = value
    return is_lit and CC_RE.match(v) is not None and gb32100_check_char(v[:17]) != v[17]


def _holder(value: Term, node: Mapping[str, Sequence[Term]]) -> bool:
    is_lit, v = value
    if not is_lit:
        return False
    is_id = ID_RE.match(v) is not None
    is_cc = CC_RE.match(v) is not None
    if not (is_id or is_cc):
        return False
    ok_id = is_id and _gb11643_digits_check(v) == v[17]
    ok_cc = is_cc and gb32100_check_char(v[:17]) == v[17]
    return not ok_id and not ok_cc


def _birth_date(value: Term, node: Mapping[str, Sequence[Term]]) -> bool:
    is_lit, v = value
    if not is_lit:
        return False
    target = v.replace("-", "")
    for id_lit, id_v in node.get("identityNumber", ()):
        if id_lit and ID_RE.match(id_v) is not None and id_v[6:14] != target:
            return True
    return False


def _sex_parity(value: Term, node: Mapping[str, Sequence[Term]]) -> bool:
    _is_lit, v = value
    if not _is_lit:  # STR() of a blank node is an error: no result
        return False
    if v not in ("1", "2"):
        return False
    for id_lit, id_v in node.get("identityNumber", ()):
        if id_lit and ID_RE.match(id_v) is not None:
            odd = int(id_v[16]) % 2
            if (v == "1" and odd == 0) or (v == "2" and odd == 1):
                return True
    return False


def _valid_from_before_until(value: Term, node: Mapping[str, Sequence[Term]]) -> bool:
    is_lit, v = value
    if not is_lit or DATE_RE.match(v) is None:
        return False
    for u_lit, u in node.get("validUntil", ()):
        if u_lit and DATE_RE.match(u) is not None and v >= u:
            return True
    return False


NATIVE_SPARQL: dict[str, Callable[[Term, Mapping[str, Sequence[Term]]], bool]] = {
    "GB11643Check": _gb11643,
    "GB32100Check": _gb32100,
    "HolderCheck": _holder,
    "BirthDateMatchesId": _birth_date,
    "SexMatchesId": _sex_parity,
    "ValidFromBeforeUntil": _valid_from_before_until,
}


# --- the same constraints on the fast engine's all-strings path: the value and the record
# (every value of the record is a string or null there), no term tuples, no mapping object.


def _gb11643_str(v: str, rec: Mapping[str, Any]) -> bool:
    return ID_RE.match(v) is not None and _gb11643_digits_check(v) != v[17]


def _gb32100_str(v: str, rec: Mapping[str, Any]) -> bool:
    return CC_RE.match(v) is not None and gb32100_check_char(v) != v[17]


def _holder_str(v: str, rec: Mapping[str, Any]) -> bool:
    return _holder((True, v), {})


def _birth_date_str(v: str, rec: Mapping[str, Any]) -> bool:
    i = rec.get("identityNumber")
    return isinstance(i, str) and ID_RE.match(i) is not None and i[6:14] != v.replace("-", "")


def _sex_parity_str(v: str, rec: Mapping[str, Any]) -> bool:
    if v != "1" and v != "2":
        return False
    i = rec.get("identityNumber")
    if not isinstance(i, str) or ID_RE.match(i) is None:
        return False
    odd = int(i[16]) % 2
    return (v == "1" and odd == 0) or (v == "2" and odd == 1)


def _valid_from_before_until_str(v: str, rec: Mapping[str, Any]) -> bool:
    u = rec.get("validUntil")
    return isinstance(u, str) and DATE_RE.match(v) is not None and DATE_RE.match(u) is not None and v >= u


NATIVE_SPARQL_STR: dict[str, Callable[[str, Mapping[str, Any]], bool]] = {
    "GB11643Check": _gb11643_str,
    "GB32100Check": _gb32100_str,
    "HolderCheck": _holder_str,
    "BirthDateMatchesId": _birth_date_str,
    "SexMatchesId": _sex_parity_str,
    "ValidFromBeforeUntil": _valid_from_before_until_str,
}


# --- the same again as Python expressions, inlined by the fast engine's common-case function.
# Each is True when the constraint is violated. ``v`` is the value (a str). ``{key}`` stands for
# the local variable holding another key's value, a str or None there (the generated code has
# checked every key's type first; a key the record type does not have is None), and ``{self}``
# for the constrained key's own. ``{key:fact}`` is a boolean computed once per record for every
# template that uses it: the key's value is a str and FACTS[fact] (over ``{}``) holds for it.
# Names come from NATIVE_INLINE_ENV. tests/validation compares these with the functions above.

NATIVE_INLINE_ENV: dict[str, Any] = {
    "ID_MATCH": ID_RE.match,
    "CC_MATCH": CC_RE.match,
    "DATE_MATCH": DATE_RE.match,
    "ID_CHECK": _gb11643_digits_check,
    "CC_CHECK_CHAR": gb32100_check_char,
    "HOLDER": _holder_str,
    "ODD_DIGITS": frozenset("13579"),
}

NATIVE_FACTS: dict[str, str] = {
    "id": "ID_MATCH({}) is not None",  # the 18-character identity number form
    "cc": "CC_MATCH({}) is not None",  # the credit code form
    "date": "DATE_MATCH({}) is not None",  # YYYY-MM-DD
}

NATIVE_SPARQL_INLINE: dict[str, str] = {
    "GB11643Check": "{self:id} and ID_CHECK(v) != v[17]",
    "GB32100Check": "{self:cc} and CC_CHECK_CHAR(v) != v[17]",
    "HolderCheck": "HOLDER(v, None)",
    "BirthDateMatchesId": "{identityNumber:id} and {identityNumber}[6:14] != v.replace('-', '')",
    "SexMatchesId": (
        "(v == '1' or v == '2') and {identityNumber:id} and ({identityNumber}[16] in ODD_DIGITS) != (v == '1')"
    ),
    "ValidFromBeforeUntil": "{validUntil:date} and {self:date} and v >= {validUntil}",
}
