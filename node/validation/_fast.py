"""The fast engine: the shapes compiled once into Python functions per type.

``full`` handles a flat record whose values are strings or null, every key
known, with straight-line code: no graph, no per-record allocation beyond the
result list. Anything else (arrays, numbers, objects, unknown keys, a non-string
id) goes to the general evaluator (``_generic``), which has the reference
engine's semantics. ``check``, the entry point, first tries the common case of
all, a record that breaks no rule, in one pass that stops at the first doubt
(value rules behind per-value memos, the SPARQL natives inlined, the id pattern
matched on the id itself), and hands anything else to ``full``;
``check_columns`` is the same pass over records given column by column. The two
engines' agreement is proven by tests over every example and over generated
records, and ``check``'s and ``full``'s by tests of their own.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from itertools import repeat
from typing import Any
from urllib.parse import quote

from rdflib import Literal, URIRef

from node.errors import StandardError
from node.standard.model import RECORD_BASE, XSD, RecordType, Rule, Standard, ValueShape
from node.validation._generic import (
    GenericEvaluator,
    _closed_rule,
    _min_inclusive_ok,
    _value_rule_ok,
    datatype_ok,
)
from node.validation._native import NATIVE_FACTS, NATIVE_INLINE_ENV, NATIVE_SPARQL_INLINE, NATIVE_SPARQL_STR
from node.validation._terms import json_values

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

    def __init__(self, rt: RecordType, check: Callable[[dict[str, Any]], list[Rule]], source: str,
                 full: Callable[[dict[str, Any]], list[Rule]] | None = None,
                 check_columns: Callable[[Sequence[Any], Mapping[str, Sequence[Any]]], list[int]] | None = None,
                 ) -> None:  # fmt: skip
        self.rt = rt
        self.check = check
        self.source = source
        #: every rule evaluated, no shortcut (``check`` gives the same list; tests compare the two)
        self.full = full or check
        #: ``check_columns(ids, {key: column})``: the positions of the records (given column by column,
        #: None where a record lacks a key; every key one the type has, none of type/@type) for which
        #: ``check`` would not return ``[]``, and of every record with a value that is not a string
        #: (``check`` asks ``full`` about those). None when some rule needs the record as a dict.
        self.check_columns = check_columns


class _Gen:
    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self.lines: list[str] = []
        self.helpers: list[str] = []  # module-level helper functions, emitted before the others
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


_CONTEXT_SENSITIVE = re.compile(r"\^|\\[AbBgZz0-9]|\\$|\(\?<|\(\?P=|\(\?\(|\(\?[a-zA-Z]")


def _id_pattern_on_value(pattern: str) -> re.Pattern[str] | None:
    """A pattern on the record IRI that begins ``^`` + the escaped record base, turned into one
    that matches the id ``v`` itself exactly when ``SAFE_ID`` matches ``v`` and the original
    matches ``BASE + v`` (the IRI of a safe id): the base is a literal the IRI starts with, so
    what follows it must match the id. None when the rest could see the base or the string's
    start (anchors, word boundaries, lookbehinds, back references, inline flags)."""
    head = "^" + re.escape(RECORD_BASE)
    if not pattern.startswith(head):
        return None
    rest = pattern[len(head):]
    if _CONTEXT_SENSITIVE.search(rest):
        return None
    try:
        return re.compile(r"(?=[A-Za-z0-9._~-]+\Z)(?:" + rest + ")")
    except re.error:
        return None


def _memo_worthy(conds: list[str]) -> bool:
    """Whether a key's value rules are worth a per-value memo: they parse a typed literal (a date,
    a decimal) or test a code list compiled to a pattern. Such values repeat (a few thousand
    dates or division codes in a million records); free text and identity numbers do not, and
    their rules (lengths, a short pattern) cost less than a memo that never answers."""
    return any(_MEMO_WORTHY.search(c) for c in conds)


_MEMO_WORTHY = re.compile(r"\b(DT|PM|M)[0-9]+\(")


def compile_type(std: Standard, rt: RecordType) -> CompiledType:
    """The generated functions: ``full(rec)`` evaluates every rule and lists the broken ones;
    ``check(rec)`` is the one used: it settles the common case (a flat record of strings that
    breaks no rule) with one pass that stops at the first doubt, and hands anything else to
    ``full``. Every condition in ``check`` is one of ``full``'s, so ``check`` returns ``[]``
    exactly when ``full`` would. ``check_columns(ids, columns)``, when every rule can be said
    without the record as a dict, runs ``check``'s pass over columns and names the records
    it does not pass (see :class:`CompiledType`)."""
    all_keys = std.keys
    datatypes = std.coercions
    generic = GenericEvaluator(rt, all_keys, datatypes)
    g = _Gen()
    g.env.update(GEN=generic.evaluate, BASE=RECORD_BASE, SAFE_ID=_SAFE_ID, quote=quote, LIMIT=_MEMO_LIMIT)
    g.env.update(NATIVE_INLINE_ENV)
    allowed = frozenset(rt.keys) | {"id", "type", "@type"}
    g.env["ALLOWED"] = allowed

    g.env["UNKNOWN"] = _unknown_keys(rt, all_keys, generic.evaluate, allowed)
    g.emit(0, "def full(rec):")
    g.emit(1, "if not (rec.keys() <= ALLOWED):")
    g.emit(2, "return UNKNOWN(rec, full)")
    g.emit(1, "out = []")
    # the record node itself (rules with no path): the id
    g.emit(1, "v = rec.get('id')")
    g.emit(1, "if v.__class__ is not str:")
    g.emit(2, "return GEN(rec)")
    g.emit(1, "iri = BASE + v if SAFE_ID.match(v) else BASE + quote(v, safe='')")
    id_conds: list[str] = ["SAFE_ID.match(v) is not None"]  # for check(): a safe id's IRI is BASE + v
    for rule in rt.rules:
        if rule.path is not None or rule.kind == "Closed":
            continue
        rc = g.const(rule, "R")
        if rule.kind == "NodeKind":
            if rule.param not in ("IRI", "BlankNodeOrIRI", "IRIOrLiteral"):
                g.emit(1, f"out.append({rc})")
                id_conds.append("False")
        elif rule.kind == "Pattern":
            pc = g.const(re.compile(rule.param), "P")
            g.emit(1, f"if {pc}.search(iri) is None:")
            g.emit(2, f"out.append({rc})")
            on_value = _id_pattern_on_value(rule.param)
            if on_value is None:
                id_conds.append(f"{pc}.search(BASE + v) is not None")
            else:  # one match on the id itself, its safety included
                id_conds.append(f"{g.const(on_value, 'PV')}.match(v) is not None")
                id_conds[0] = "True"
        else:
            vr, uc = g.const(_value_rule_ok, "VR"), g.const(URIRef, "U")
            g.emit(1, f"if not {vr}({rule.kind!r}, {rc}.param, {uc}(iri)):")
            g.emit(2, f"out.append({rc})")
            id_conds.append(f"{vr}({rule.kind!r}, {rc}.param, {uc}(BASE + v))")
    # phase 1: every value is a string or null, else the general path
    local = {key: f"v{i}" for i, key in enumerate(rt.keys)}
    for key, var in local.items():
        g.emit(1, f"{var} = rec.get({key!r})")
        g.emit(1, f"if {var} is not None and {var}.__class__ is not str:")
        g.emit(2, "return GEN(rec)")
    # phase 2: the rules, straight-line
    # per key: (key, required, conditions on the value alone, rules that look across keys)
    clean: list[tuple[str, bool, list[str], list[Rule]]] = []
    for key, var in local.items():
        rules = [r for r in rt.rules if r.path == key]
        coerced = datatypes.get(key)
        missing = [r for r in rules if r.kind == "MinCount" and r.param >= 1]
        checks = [(r, _rule_cond(g, r, coerced)) for r in rules]
        checks = [(r, c) for r, c in checks if c != "True"]
        clean.append((key, bool(missing), _clean_conds(g, checks), [r for r, _ in checks if r.sparql]))
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
    g.emit(0, "")
    # the common case: stop at the first doubt and let full() say what is wrong
    g.emit(0, "def check(rec):")
    g.emit(1, "if not (rec.keys() <= ALLOWED):")
    g.emit(2, "return full(rec)")
    g.emit(1, "v = rec.get('id')")
    gets = [f"{var} = rec.get({key!r})" for key, var in local.items()]
    columnar = all(NATIVE_SPARQL_INLINE.get(r.kind) is not None for *_, rules in clean for r in rules)
    if columnar:
        # An integer in a key with a coerced datatype is the same literal as its decimal digits
        # as a string (``_terms.scalar_lexical``): the string path, rather than the general one.
        # Only when every rule reads the local variables, never ``rec``.
        for key, var in local.items():
            if key in datatypes:
                gets.append(f"if {var}.__class__ is int and {-(1 << 63)} <= {var} < {1 << 64}: {var} = str({var})")
    _emit_clean(g, 1, ["return full(rec)"], id_conds, gets, local, clean)
    g.emit(1, "return []")
    g.emit(0, "")
    # the same over records given column by column, when every rule can be said without ``rec``
    if columnar:
        g.env["NONE"] = repeat(None)
        g.emit(0, "def check_columns(ids, cols):")
        g.emit(1, "bad = []")
        g.emit(1, "i = -1")
        columns = ", ".join(["ids", *(f"cols.get({key!r}) or NONE" for key in local)])
        g.emit(1, f"for {', '.join(['v', *local.values()])} in zip({columns}):")
        g.emit(2, "i += 1")
        _emit_clean(g, 2, ["bad.append(i)", "continue"], id_conds, [], local, clean)
        g.emit(1, "return bad")
    source = "\n".join(g.helpers + g.lines) + "\n"
    namespace = dict(g.env)
    exec(compile(source, f"<shulian fast validator {rt.name}>", "exec"), namespace)  # noqa: S102
    return CompiledType(rt, namespace["check"], source, namespace["full"], namespace.get("check_columns"))


def _emit_clean(g: _Gen, indent: int, fail: list[str], id_conds: list[str], gets: list[str], local: dict[str, str],
                clean: list[tuple[str, bool, list[str], list[Rule]]]) -> None:  # fmt: skip
    """The tests of a clean record, each followed by ``fail`` where it does not hold: the id (in
    ``v``), ``gets`` (binding each key's variable), each key's value, then the rules across keys."""

    def test(condition: str) -> None:
        g.emit(indent, f"if {condition}:")
        for line in fail:
            g.emit(indent + 1, line)

    test(f"v.__class__ is not str or not ({' and '.join(f'({c})' for c in id_conds)})")
    for line in gets:  # every key a str or None before any rule looks across keys
        g.emit(indent, line)
    for key, required, value_conds, _ in clean:
        conds = " and ".join(f"({c})" for c in value_conds) if value_conds else "True"
        g.emit(indent, f"v = {local[key]}")
        if required:
            test(f"v.__class__ is not str or not ({conds})")
        else:
            test(f"v is not None and (v.__class__ is not str or not ({conds}))")
    facts = _Facts()
    broken: list[tuple[str, bool, str]] = []
    for key, required, _, record_rules in clean:
        if record_rules:
            names = _KeyNames(local, local[key], facts)
            broken.append((local[key], required, " or ".join(f"({_native_broken(g, r, names)})" for r in record_rules)))
    for line in facts.assignments():
        g.emit(indent, line)
    for var, required, condition in broken:
        g.emit(indent, f"v = {var}")
        test(condition if required else f"v is not None and ({condition})")


_PLAIN_SCALARS = (str, bool, float)


def _unknown_keys(rt: RecordType, all_keys: dict[str, str], general: Callable[[dict[str, Any]], list[Rule]],
                  allowed: frozenset[str]) -> Callable[[dict[str, Any], Callable[[dict[str, Any]], list[Rule]]], list[Rule]]:  # fmt: skip
    """What ``full`` does with a record that has keys its type does not: the general evaluator's
    verdict, without its cost when the extra keys are plain. A key no type declares maps to its
    own undeclared predicate (``_terms``), which only ``sh:closed`` looks at: the record is its
    known keys (evaluated as usual) plus a Closed result for each extra key with a value (null
    and empty arrays make no triple, so no result). Anything else (a key another type declares,
    a value that is not a plain scalar or a flat list of them, a key that is not valid Unicode)
    goes to the general evaluator."""
    closed = next((r for r in rt.rules if r.kind == "Closed"), None)

    def scalar(value: Any) -> bool:
        cls = value.__class__
        if cls in _PLAIN_SCALARS or value is None:
            return True
        return cls is int and bool(-(1 << 63) <= value < (1 << 64))

    def plain(value: Any) -> bool:
        return all(map(scalar, value)) if value.__class__ is list else scalar(value)

    def unknown(rec: dict[str, Any], full: Callable[[dict[str, Any]], list[Rule]]) -> list[Rule]:
        extra: list[Rule] = []
        for key, value in rec.items():
            if key in allowed:
                continue
            if key in all_keys or not plain(value) or not _utf8(key):
                return general(rec)
            if closed is not None and json_values(value):
                extra.append(_closed_rule(closed, key))
        return full({k: v for k, v in rec.items() if k in allowed}) + extra

    return unknown


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean_conds(g: _Gen, checks: list[tuple[Rule, str]]) -> list[str]:
    """The conditions (over ``v``, a str) under which a key's value breaks none of its rules on
    the value alone; when worth it (``_memo_worthy``), behind a memo of the values known to pass
    them (a bounded set, filled by a generated ``LEARN`` function). Rules that look across keys
    (SPARQL natives) are not here: ``check`` tests them once every key's type is known."""
    value_conds = [c for r, c in checks if not r.sparql]
    if value_conds and _memo_worthy(value_conds):
        known = g.const(set(), "OK")
        learn = g.const(None, "LEARN")  # defined by the helper below, in the same namespace
        g.helpers += [
            f"def {learn}(v):",
            f"    if {' and '.join(f'({c})' for c in value_conds)}:",
            f"        if len({known}) < LIMIT:",
            f"            {known}.add(v)",
            "        return True",
            "    return False",
            "",
        ]
        value_conds = [f"v in {known} or {learn}(v)"]
    return value_conds


class _Var:
    """A key's local variable in a native's inline template: ``{key}`` is its name, ``{key:fact}``
    the name of a boolean computed once per record (``_Facts``)."""

    def __init__(self, var: str | None, facts: _Facts) -> None:
        self.var = var
        self.facts = facts

    def __format__(self, spec: str) -> str:
        if not spec:
            return self.var or "None"
        return self.facts.name(self.var, spec)


class _Facts:
    """The per-record booleans the inline templates share, in order of first use."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], str] = {}

    def name(self, var: str | None, fact: str) -> str:
        if var is None:  # a key the record type does not have: never a str
            return "False"
        key = (var, fact)
        if key not in self.by_key:
            self.by_key[key] = f"{fact.upper()}_{var}"
        return self.by_key[key]

    def assignments(self) -> list[str]:
        return [f"{name} = {var} is not None and {NATIVE_FACTS[fact].format(var)}"
                for (var, fact), name in self.by_key.items()]  # fmt: skip


class _KeyNames(dict[str, _Var]):
    """``{key}`` in a template -> that key's variable; a key the record type does not have -> None."""

    def __init__(self, local: dict[str, str], own: str, facts: _Facts) -> None:
        super().__init__({k: _Var(var, facts) for k, var in local.items()})
        self["self"] = _Var(own, facts)
        self.facts = facts

    def __missing__(self, key: str) -> _Var:
        return _Var(None, self.facts)


def _native_broken(g: _Gen, rule: Rule, names: _KeyNames) -> str:
    """An expression True when a SPARQL native is violated: inline when it has a template."""
    template = NATIVE_SPARQL_INLINE.get(rule.kind)
    if template is not None:
        return template.format_map(names)
    return f"{g.const(NATIVE_SPARQL_STR[rule.kind], 'NS')}(v, rec)"
