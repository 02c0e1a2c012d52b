"""Record JSON -> RDF terms, following the standard's JSON-LD context.

This is the JSON-LD 1.1 to-RDF algorithm restricted to what a record can be
(a flat object; values are scalars, arrays, or objects that become blank
nodes), written out so that both engines see exactly the same triples:

* the record is ``<https://w3id.org/shulian/record/{id}>`` (``id`` percent-
  encoded); without a string ``id`` it is a blank node;
* ``type``/``@type`` names the class; the class being validated is always asserted;
* a key the context declares maps to its ``sl:`` property; any other key maps
  to ``https://w3id.org/shulian/undeclared/{key}`` (the context's ``@vocab``),
  so ``sh:closed`` sees it;
* strings, numbers and booleans become literals as JSON-LD does: a coerced
  datatype (``xsd:date``, ``xsd:decimal``) applies to any scalar; otherwise
  strings are ``xsd:string``, integers ``xsd:integer``, other numbers
  ``xsd:double`` in canonical form, booleans ``xsd:boolean``;
* ``null`` and empty arrays produce nothing; nested arrays are flattened;
* an object value is a fresh blank node (value objects are not supported).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

from rdflib import RDF, BNode, Literal, URIRef

from node.standard.model import RECORD_BASE, UNDECLARED_BASE, XSD, RecordType

__all__ = [
    "MISSING",
    "json_values",
    "scalar_lexical",
    "to_term",
    "record_subject",
    "record_triples",
    "key_of_predicate",
]

XSD_STRING = str(XSD.string)
XSD_INTEGER = str(XSD.integer)
XSD_DOUBLE = str(XSD.double)
XSD_BOOLEAN = str(XSD.boolean)

MISSING: Any = object()
_bnodes = itertools.count()


def json_values(raw: Any) -> list[Any]:
    """The JSON values a key contributes (arrays flattened, nulls dropped)."""
    if raw is None or raw is MISSING:
        return []
    if isinstance(raw, list):
        out: list[Any] = []
        stack = [iter(raw)]
        while stack:
            for item in stack[-1]:
                if isinstance(item, list):
                    stack.append(iter(item))
                    break
                if item is not None:
                    out.append(item)
            else:
                stack.pop()
        return out
    return [raw]


def _double_lexical(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "INF" if v > 0 else "-INF"
    mantissa, exp = f"{v:.15E}".split("E")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}E{int(exp)}"


def scalar_lexical(v: Any, coerced: str | None) -> tuple[str, str]:
    """(lexical form, datatype IRI) of a JSON scalar, as JSON-LD to-RDF gives it."""
    if isinstance(v, str):
        return v, coerced or XSD_STRING
    if isinstance(v, bool):
        return ("true" if v else "false"), coerced or XSD_BOOLEAN
    if isinstance(v, int):
        return str(v), coerced or XSD_INTEGER
    if isinstance(v, float):
        if coerced == XSD_DOUBLE or (v != int(v) if math.isfinite(v) else True) or abs(v) >= 1e21:
            return _double_lexical(v), coerced or XSD_DOUBLE
        return str(int(v)), coerced or XSD_INTEGER
    raise TypeError(f"not a JSON scalar: {type(v).__name__}")


def to_term(v: Any, coerced: str | None) -> Literal | BNode:
    if isinstance(v, dict):
        return BNode(f"v{next(_bnodes)}")
    lex, dt = scalar_lexical(v, coerced)
    return Literal(lex, datatype=URIRef(dt), normalize=False)


def record_subject(record: dict[str, Any]) -> URIRef | BNode:
    rid = record.get("id")
    if isinstance(rid, str):
        return URIRef(RECORD_BASE + quote(rid, safe=""))
    return BNode(f"r{next(_bnodes)}")


def _predicate(key: str, rt: RecordType, all_keys: dict[str, str]) -> str:
    iri = all_keys.get(key)
    if iri is not None:
        return iri
    return UNDECLARED_BASE + quote(key, safe="")


def key_of_predicate(iri: str, all_keys: dict[str, str]) -> str:
    if iri.startswith(UNDECLARED_BASE):
        return unquote(iri[len(UNDECLARED_BASE):])
    for k, v in all_keys.items():
        if v == iri:
            return k
    return iri


_SPECIAL = frozenset({"id", "type", "@type"})


def record_triples(
    record: dict[str, Any], rt: RecordType, all_keys: dict[str, str], datatypes: dict[str, str]
) -> tuple[URIRef | BNode, Iterator[tuple[Any, Any, Any]]]:
    """The subject and triples of one record validated as type ``rt``."""
    subject = record_subject(record)

    def gen() -> Iterator[tuple[Any, Any, Any]]:
        yield subject, RDF.type, URIRef(rt.class_iri)
        for key, raw in record.items():
            if key in _SPECIAL:
                continue
            pred = URIRef(_predicate(key, rt, all_keys))
            coerced = datatypes.get(key)
            for v in json_values(raw):
                yield subject, pred, to_term(v, coerced)

    return subject, gen()
