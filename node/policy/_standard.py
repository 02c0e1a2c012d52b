"""What the policy package reads from the standard's core vocabulary and code lists.

- information items are the standard's record properties (``sl:identityNumber`` ...): a list
  can only name keys the standard defines, so a typo cannot silently withhold nothing or
  grant nothing; Chinese names and synonyms (身份证号, 姓名, sfzh ...) come from the
  vocabulary's labels;
- sharing methods are concepts of the ``sharing-method`` code list (系统对接 = interface ...).

Read once per process from the packaged standard (``node.standard``), on first use.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

from node.errors import StandardError

if TYPE_CHECKING:
    from node.standard.codelists import CodeList

__all__ = [
    "RECORD_CLASSES",
    "record_keys",
    "item_label",
    "find_item",
    "check_record_key",
    "method_notation",
    "method_label",
    "method_iri",
    "method_from_iri",
]

RECORD_CLASSES = ("Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense")
_SL = "https://w3id.org/shulian/ns#"


@lru_cache(maxsize=1)
def _keys() -> dict[str, tuple[str, tuple[str, ...]]]:
    """key -> (Chinese label, synonyms) for every record property of the standard."""
    from node.standard.codelists import load_vocabulary

    classes = {_SL + c for c in RECORD_CLASSES}
    out = {
        t.key: (t.label_zh, t.synonyms)
        for t in load_vocabulary().values()
        if t.kind == "DatatypeProperty" and classes & set(t.domain_includes)
    }
    if not out:
        raise StandardError("the core vocabulary defines no record properties")
    return out


def record_keys() -> frozenset[str]:
    return frozenset(_keys())


def item_label(key: str) -> str | None:
    found = _keys().get(key)
    return found[0] if found else None


def check_record_key(key: str) -> str:
    """``key`` if it is a record property of the standard, else ``ValueError`` naming the close matches."""
    if key in _keys():
        return key
    near = sorted(k for k in _keys() if k.casefold() == key.casefold())
    hint = f"; did you mean {near[0]}?" if near else f" (known: {', '.join(sorted(_keys()))})"
    raise ValueError(f"item {key!r} is not a record property of the standard{hint}")


def find_item(text: str) -> str | None:
    """The record key whose key, Chinese label or synonym equals ``text`` (NFKC, case-insensitive);
    ``None`` when nothing or more than one key matches."""
    wanted = unicodedata.normalize("NFKC", text).strip().casefold()
    found = {
        key
        for key, (label, synonyms) in _keys().items()
        if wanted in {key.casefold(), label.casefold(), *(s.casefold() for s in synonyms)}
    }
    return found.pop() if len(found) == 1 else None


@lru_cache(maxsize=1)
def _methods() -> CodeList:
    from node.standard.codelists import load_codelist

    return load_codelist("sharing-method")


def method_notation(text: str) -> str:
    """The sharing-method notation for a label, notation or IRI (系统对接, interface ...)."""
    code = _methods().find(unicodedata.normalize("NFKC", text))
    if code is None:
        known = ", ".join(f"{c.label_zh} ({c.notation})" for c in _methods())
        raise ValueError(f"sharing method {text!r} is not in the sharing-method code list: {known}")
    return code.notation


def method_label(notation: str) -> str:
    code = _methods().get(notation)
    return code.label_zh if code is not None else notation


def method_iri(notation: str) -> str:
    return f"https://w3id.org/shulian/code/sharing-method/{notation}"


def method_from_iri(iri: str) -> str | None:
    prefix = method_iri("")
    if not iri.startswith(prefix):
        return None
    notation = iri[len(prefix) :]
    return notation if _methods().get(notation) is not None else None
