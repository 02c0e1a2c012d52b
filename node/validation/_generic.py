"""Rule evaluation over RDF terms, with the reference engine's semantics.

This is the fast engine's general path: it handles any record the generated
hot path does not (non-string values, arrays, unknown keys, odd ids), without
building a graph. It converts the record with the same code the reference
engine uses (``_terms``) and applies each rule as pySHACL does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from rdflib import BNode, Literal, URIRef

from node.errors import StandardError
from node.standard.model import XSD, RecordType, Rule, ValueShape
from node.validation._native import NATIVE_SPARQL, Term
from node.validation._terms import key_of_predicate, record_triples

__all__ = ["GenericEvaluator", "datatype_ok"]

XSD_STRING = XSD.string


def _is_string_value(term: Any) -> bool:
    return isinstance(term, Literal) and isinstance(term.value, str)


_uri = lru_cache(maxsize=256)(URIRef)  # a datatype IRI, made once


def datatype_ok(term: Any, dt: str) -> bool:
    """pySHACL's DatatypeConstraintComponent for one value node."""
    if not isinstance(term, Literal):
        return False
    dtype = _uri(dt)
    datatype = term.datatype
    if datatype == dtype:
        if getattr(term, "ill_typed", None) is True:
            return False
        return _actual(term, dtype)
    if datatype is None and term.language is None and dtype == XSD_STRING:
        return _actual(term, dtype)
    return False


_XSD_INTEGER, _XSD_DECIMAL, _XSD_BOOLEAN, _XSD_DATE = XSD.integer, XSD.decimal, XSD.boolean, XSD.date
_XSD_DOUBLE, _XSD_FLOAT = XSD.double, XSD.float  # (an attribute of XSD makes a new URIRef each time)


def _actual(term: Literal, dtype: URIRef) -> bool:
    import datetime
    from decimal import Decimal

    value = term.value
    if dtype == XSD_STRING:
        return isinstance(value, (str, bytes))
    if dtype == _XSD_INTEGER:
        return isinstance(value, int)
    if dtype == _XSD_DECIMAL:
        return isinstance(value, Decimal)
    if dtype == _XSD_BOOLEAN:
        return isinstance(value, bool)
    if dtype == _XSD_DATE:
        return isinstance(value, datetime.date)
    if dtype == _XSD_DOUBLE or dtype == _XSD_FLOAT:
        return isinstance(value, float)
    return True


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _lexical(term: Any) -> str:
    return str(term)


def _value_rule_ok(kind: str, param: Any, term: Any) -> bool:
    if kind == "Datatype":
        return datatype_ok(term, param)
    if kind == "NodeKind":
        if param == "IRI":
            return isinstance(term, URIRef)
        if param == "BlankNode":
            return isinstance(term, BNode)
        if param == "Literal":
            return isinstance(term, Literal)
        if param == "BlankNodeOrIRI":
            return isinstance(term, (BNode, URIRef))
        if param == "IRIOrLiteral":
            return isinstance(term, (URIRef, Literal))
        if param == "BlankNodeOrLiteral":
            return isinstance(term, (BNode, Literal))
        raise StandardError(f"unknown sh:nodeKind {param}")
    if kind == "MinLength":
        if param == 0:
            return True
        return not isinstance(term, BNode) and len(_lexical(term)) >= param
    if kind == "MaxLength":
        return not isinstance(term, BNode) and len(_lexical(term)) <= param
    if kind == "Pattern":
        if isinstance(term, BNode):
            return False
        rx = _regex(param)
        s = _lexical(term)
        return bool(rx.match(s) or rx.search(s))
    if kind == "In":
        if isinstance(term, Literal) and not term.language:
            plain, others = _in_index(param)
            if (str(term), str(term.datatype or XSD_STRING)) in plain:
                return True
            return any(_same_term(term, x) for x in others)
        return any(_same_term(term, x) for x in param)
    raise StandardError(f"value rule {kind} not implemented")


@lru_cache(maxsize=1024)
def _in_index(param: tuple[Any, ...]) -> tuple[frozenset[tuple[str, str]], tuple[Any, ...]]:
    """An ``sh:in`` list for a literal without a language tag: the (lexical form, datatype) of its
    literals without one (what :func:`_same_term` compares such a pair by), and the other members."""
    plain = frozenset(
        (str(x), str(x.datatype or XSD_STRING)) for x in param if isinstance(x, Literal) and not x.language
    )
    others = tuple(x for x in param if not (isinstance(x, Literal) and not x.language))
    return plain, others


def _same_term(a: Any, b: Any) -> bool:
    # RDF 1.1: a simple literal is an xsd:string literal
    if isinstance(a, Literal) and isinstance(b, Literal):
        if a.language or b.language:
            return a == b
        return str(a) == str(b) and (a.datatype or XSD_STRING) == (b.datatype or XSD_STRING)
    return bool(a == b)


def value_shape_ok(shape: ValueShape, term: Any) -> bool:
    return all(_value_rule_ok(k, p, term) for k, p in shape.rules)


def _min_inclusive_ok(term: Any, m_val: Literal) -> bool:
    """pySHACL's MinInclusiveConstraintComponent for one value node (its own comparison)."""
    from pyshacl.rdfutil.compare import compare_literal

    if not isinstance(term, Literal):
        return False
    v_is_string = isinstance(term.value, str)
    min_is_string = isinstance(m_val.value, str)
    if v_is_string != min_is_string:
        return False
    try:
        return bool(compare_literal(term, m_val) >= 0)  # type: ignore[no-untyped-call]
    except (TypeError, NotImplementedError, ArithmeticError):  # "NaN"^^xsd:decimal is not comparable
        return False


def _as_term(term: Any) -> Term:
    return (isinstance(term, Literal), str(term))


class GenericEvaluator:
    """Evaluates all rules of one record type on one record."""

    def __init__(self, rt: RecordType, all_keys: dict[str, str], datatypes: dict[str, str]) -> None:
        self.rt = rt
        self.all_keys = all_keys
        self.datatypes = datatypes
        for r in rt.rules:
            if r.sparql and r.kind not in NATIVE_SPARQL:
                raise StandardError(
                    f"SPARQL constraint {r.kind} has no native implementation in node/validation/_native.py"
                )

    def evaluate(self, record: dict[str, Any]) -> list[Rule]:
        subject, triples = record_triples(record, self.rt, self.all_keys, self.datatypes)
        by_key: dict[str, list[Any]] = {}
        for _s, p, o in triples:
            if str(p) == "http://www.w3.org/1999/02/22-rdf-syntax-ns#type":
                continue
            vals = by_key.setdefault(key_of_predicate(str(p), self.all_keys), [])
            if o not in vals:  # a graph is a set: the same term twice is one triple
                vals.append(o)
        node_terms: dict[str, list[Term]] | None = None
        failed: list[Rule] = []
        for rule in self.rt.rules:
            values: Sequence[Any] = [subject] if rule.path is None else by_key.get(rule.path, ())
            kind = rule.kind
            bad = False
            if rule.sparql:
                if node_terms is None:
                    node_terms = {k: [_as_term(t) for t in v] for k, v in by_key.items()}
                fn: Callable[[Term, Mapping[str, Sequence[Term]]], bool] = NATIVE_SPARQL[kind]
                bad = any(fn(_as_term(t), node_terms) for t in values)
            elif kind == "MinCount":
                bad = len(values) < rule.param
            elif kind == "MaxCount":
                bad = len(values) > rule.param
            elif kind == "Closed":
                allowed = rule.param
                bad = any(k not in allowed for k in by_key)
                if bad:
                    for k in by_key:
                        if k not in allowed:
                            failed.append(_closed_rule(rule, k))
                    continue
            elif kind == "Node":
                bad = any(not value_shape_ok(rule.param, t) for t in values)
            elif kind == "Or":
                bad = any(not any(value_shape_ok(s, t) for s in rule.param) for t in values)
            elif kind == "MinInclusive":
                bad = any(not _min_inclusive_ok(t, rule.param) for t in values)
            else:
                bad = any(not _value_rule_ok(kind, rule.param, t) for t in values)
            if bad:
                failed.append(rule)
        return failed


def _closed_rule(rule: Rule, key: str) -> Rule:
    return Rule(rule.shape, key, "Closed", None, rule.severity, rule.message)

