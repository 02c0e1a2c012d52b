"""The fast engine: the shapes compiled once into one Python function per type.

The generated function handles the common case (a flat record whose values
are strings or null, every key known) with straight-line code: no graph, no
per-record allocation beyond the result list. Anything else (arrays, numbers,
objects, unknown keys, a non-string id) goes to the general evaluator
(``_generic``), which has the reference engine's semantics. The two engines'
agreement is proven by tests over every example and over generated records.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from rdflib import Literal, URIRef

from node.errors import StandardError
from node.standard.model import RECORD_BASE, XSD, RecordType, Rule, Standard, ValueShape
from node.validation._generic import GenericEvaluator, _min_inclusive_ok, _value_rule_ok, datatype_ok
from node.validation._native import NATIVE_SPARQL_STR

__all__ = ["compile_type", "CompiledType"]

log = logging.getLogger(__name__)

XSD_STRING = str(XSD.string)
_SAFE_ID = re.compile(r"[A-Za-z0-9._~-]+\Z")
_STRICT_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_STRICT_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


@lru_cache(maxsize=65536)
def _lexical_ok_slow(v: str, dt: str) -> bool:
    return datatype_ok(Literal(v, datatype=URIRef(dt), normalize=False), dt)


def _date_ok(v: str) -> bool:
    if len(v) == 10 and _STRICT_DATE.match(v):
        try:
            datetime.date(int(v[:4]), int(v[5:7]), int(v[8:]))
            return True
        except ValueError:
            return False
    return _lexical_ok_slow(v, str(XSD.date))


def _decimal_ok(v: str) -> bool:
    if _STRICT_DECIMAL.match(v):
        return True
    return _lexical_ok_slow(v, str(XSD.decimal))


_MEMO_PATTERN_CHARS = 200
_MEMO_LIMIT = 65536


def _memo_search(rx: re.Pattern[str]) -> Callable[[str], bool]:
    memo: dict[str, bool] = {}

    def ok(v: str) -> bool:
        r = memo.get(v)
        if r is None:
            r = rx.search(v) is not None
            if len(memo) < _MEMO_LIMIT:
                memo[v] = r
        return r

    return ok


def _lexical_checker(dt: str) -> Callable[[str], bool]:
    if dt == str(XSD.date):
        return _date_ok
    if dt == str(XSD.decimal):
        return _decimal_ok
    return lambda v: _lexical_ok_slow(v, dt)


class CompiledType:
    """One record type, compiled: ``check(record) -> list[Rule]`` of the rules it breaks."""

    def __init__(self, rt: RecordType, check: Callable[[dict[str, Any]], list[Rule]], source: str) -> None:
        self.rt = rt
        self.check = check
        self.source = source


class _Gen:
    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self.lines: list[str] = []
        self._n = 0

    def const(self, value: Any, prefix: str = "C") -> str:
        self._n += 1
        name = f"{prefix}{self._n}"
        self.env[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _value_cond(g: _Gen, kind: str, param: Any, coerced: str | None) -> str:
    """A Python expression over the str ``v`` that is True when the value rule holds."""
    lit_dt = coerced or XSD_STRING
    if kind == "Datatype":
        if param != lit_dt:
            return "False"
        if coerced is None:
            return "True"
        return f"{g.const(_lexical_checker(coerced), 'DT')}(v)"
    if kind == "NodeKind":
        return "True" if param in ("Literal", "IRIOrLiteral", "BlankNodeOrLiteral") else "False"
    if kind == "MinLength":
        return "True" if param == 0 else f"len(v) >= {int(param)}"
    if kind == "MaxLength":
        return f"len(v) <= {int(param)}"
    if kind == "Pattern":
        if len(param) > _MEMO_PATTERN_CHARS:
            # a code list compiled to a pattern (the division codes): few distinct values, memoise
            return f"{g.const(_memo_search(re.compile(param)), 'PM')}(v)"
        return f"{g.const(re.compile(param), 'P')}.search(v) is not None"
    if kind == "In":
        lexicals = frozenset(
            str(x) for x in param if isinstance(x, Literal) and not x.language and str(x.datatype or XSD_STRING) == lit_dt
        )
        return f"v in {g.const(lexicals, 'S')}"
    raise StandardError(f"value rule {kind} is not compiled")


def _shape_cond(g: _Gen, vs: ValueShape, coerced: str | None) -> str:
    conds = [_value_cond(g, k, p, coerced) for k, p in vs.rules]
    return "(" + " and ".join(f"({c})" for c in conds) + ")" if conds else "True"


def _min_inclusive_fn(m_val: Literal, coerced: str | None) -> Callable[[str], bool]:
    dt = coerced or XSD_STRING
    numeric = dt == str(XSD.decimal) and str(m_val.datatype) in (str(XSD.integer), str(XSD.decimal))
    bound = Decimal(str(m_val)) if numeric else None

    def ok(v: str) -> bool:
        if bound is not None and _STRICT_DECIMAL.match(v):
            return Decimal(v) >= bound
        return _min_inclusive_ok(Literal(v, datatype=URIRef(dt), normalize=False), m_val)

    return ok


def _rule_cond(g: _Gen, rule: Rule, coerced: str | None) -> str:
    """Expression True when ``rule`` holds for a key with exactly one str value ``v``."""
    k = rule.kind
    if rule.sparql:  # every value is a string or null on this path
        if k not in NATIVE_SPARQL_STR:
            raise StandardError(f"SPARQL constraint {k} has no string-path native in node/validation/_native.py")
        return f"not {g.const(NATIVE_SPARQL_STR[k], 'NS')}(v, rec)"
    if k == "MinCount":
        return "True" if rule.param <= 1 else "False"
    if k == "MaxCount":
        return "True" if rule.param >= 1 else "False"
    if k == "Node":
        return _shape_cond(g, rule.param, coerced)
    if k == "Or":
        return "(" + " or ".join(_shape_cond(g, s, coerced) for s in rule.param) + ")"
    if k == "MinInclusive":
        return f"{g.const(_min_inclusive_fn(rule.param, coerced), 'M')}(v)"
    return _value_cond(g, k, rule.param, coerced)


def compile_type(std: Standard, rt: RecordType) -> CompiledType:
    all_keys = std.keys
    datatypes = std.coercions
    generic = GenericEvaluator(rt, all_keys, datatypes)
    g = _Gen()
    g.env.update(GEN=generic.evaluate, BASE=RECORD_BASE, SAFE_ID=_SAFE_ID, quote=quote)
    allowed = frozenset(rt.keys) | {"id", "type", "@type"}
    g.env["ALLOWED"] = allowed

    g.emit(0, "def check(rec):")
    g.emit(1, "if not (rec.keys() <= ALLOWED):")
    g.emit(2, "return GEN(rec)")
    g.emit(1, "out = []")
    # the record node itself (rules with no path): the id
    g.emit(1, "v = rec.get('id')")
    g.emit(1, "if v.__class__ is not str:")
    g.emit(2, "return GEN(rec)")
    g.emit(1, "iri = BASE + v if SAFE_ID.match(v) else BASE + quote(v, safe='')")
    for rule in rt.rules:
        if rule.path is not None or rule.kind == "Closed":
            continue
        rc = g.const(rule, "R")
        if rule.kind == "NodeKind":
            if rule.param not in ("IRI", "BlankNodeOrIRI", "IRIOrLiteral"):
                g.emit(1, f"out.append({rc})")
        elif rule.kind == "Pattern":
            g.emit(1, f"if {g.const(re.compile(rule.param), 'P')}.search(iri) is None:")
            g.emit(2, f"out.append({rc})")
        else:
            vr = g.const(_value_rule_ok, "VR")
            g.emit(1, f"if not {vr}({rule.kind!r}, {rc}.param, {g.const(URIRef, 'U')}(iri)):")
            g.emit(2, f"out.append({rc})")
    # phase 1: every value is a string or null, else the general path
    local = {key: f"v{i}" for i, key in enumerate(rt.keys)}
    for key, var in local.items():
        g.emit(1, f"{var} = rec.get({key!r})")
        g.emit(1, f"if {var} is not None and {var}.__class__ is not str:")
        g.emit(2, "return GEN(rec)")
    # phase 2: the rules, straight-line
    for key, var in local.items():
        rules = [r for r in rt.rules if r.path == key]
        coerced = datatypes.get(key)
        missing = [r for r in rules if r.kind == "MinCount" and r.param >= 1]
        checks = [(r, _rule_cond(g, r, coerced)) for r in rules]
        checks = [(r, c) for r, c in checks if c != "True"]
        if missing:
            g.emit(1, f"if {var} is None:")
            for r in missing:
                g.emit(2, f"out.append({g.const(r, 'R')})")
            if checks:
                g.emit(1, "else:")
                g.emit(2, f"v = {var}")
                for r, cond in checks:
                    g.emit(2, f"if not ({cond}):")
                    g.emit(3, f"out.append({g.const(r, 'R')})")
        elif checks:
            g.emit(1, f"if {var} is not None:")
            g.emit(2, f"v = {var}")
            for r, cond in checks:
                g.emit(2, f"if not ({cond}):")
                g.emit(3, f"out.append({g.const(r, 'R')})")
    g.emit(1, "return out")
    source = "\n".join(g.lines) + "\n"
    namespace = dict(g.env)
    exec(compile(source, f"<shulian fast validator {rt.name}>", "exec"), namespace)  # noqa: S102
    return CompiledType(rt, namespace["check"], source)
