"""Validate responsibility-list graphs against ontology/shapes/policy.ttl.

Two engines, same verdicts (tests/policy/test_shacl_examples.py proves it on every example
and on generated lists):

``reference``
    pySHACL with the whole shapes graph (SHACL Core + SHACL-SPARQL), the standard way.
``fast`` (default)
    pySHACL for the Core constraints, and each SPARQL constraint run once over the whole
    graph, keeping the rows whose ``$this`` is one of the shape's focus nodes. pySHACL
    parses a SPARQL constraint's query again for every focus node (about 20 ms each), so
    the reference engine needs about a minute for a 100-dataset list; the fast one, seconds.
    This relies on the shapes' convention that every query binds ``$this`` in its outer
    pattern (then pre-binding ``$this`` and filtering afterwards give the same rows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal as TypingLiteral

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SH
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.sparql import Query
from rdflib.term import Node

from node.errors import StandardError, ValidationFailed

from ._rdf import from_graph, read_graph, to_graph
from .model import ResponsibilityList

__all__ = [
    "Engine",
    "ShapeViolation",
    "PolicyReport",
    "validate_graph",
    "validate_list",
    "load_validated",
    "shapes_graph",
]

log = logging.getLogger(__name__)

SHAPES_NS = "https://w3id.org/shulian/shapes/policy#"

Engine = TypingLiteral["fast", "reference"]


@dataclass(frozen=True, slots=True)
class ShapeViolation:
    focus: str
    path: str | None
    shape: str  # the source shape, prefixed "slp:" when it is one of ours
    component: str  # the SHACL constraint component, e.g. "sh:MinCountConstraintComponent"
    severity: str
    message: str
    value: str | None = None

    def __str__(self) -> str:
        where = self.focus + (f" {self.path}" if self.path else "")
        return f"{where}: {self.message} [{self.shape}]"


@dataclass(frozen=True, slots=True)
class PolicyReport:
    conforms: bool
    violations: tuple[ShapeViolation, ...]

    @property
    def shapes(self) -> frozenset[str]:
        return frozenset(v.shape for v in self.violations)

    def text(self) -> str:
        return "\n".join(str(v) for v in self.violations) or "conforms"


def _shapes_path() -> Path:
    return Path(str(resources.files("ontology"))) / "shapes" / "policy.ttl"


@lru_cache(maxsize=1)
def shapes_graph() -> Graph:
    path = _shapes_path()
    try:
        return Graph().parse(path, format="turtle")
    except Exception as exc:  # missing or broken shapes file: the standard itself is broken
        raise StandardError(f"cannot load the policy shapes {path}: {exc}") from exc


def _short(node: object) -> str:
    text = str(node)
    for prefix, ns in (
        ("slp:", SHAPES_NS),
        ("sh:", str(SH)),
        ("sl:", "https://w3id.org/shulian/ns#"),
        ("odrl:", "http://www.w3.org/ns/odrl/2/"),
        ("dct:", "http://purl.org/dc/terms/"),
    ):
        if text.startswith(ns):
            return prefix + text[len(ns) :]
    return text


def _path_text(results: Graph, node: object) -> str | None:
    if node is None:
        return None
    if isinstance(node, URIRef):
        return _short(node)
    items = list(results.items(node))  # type: ignore[arg-type]
    if items:
        return "/".join(_short(i) for i in items)
    return str(node)


def _message(results: Graph, result: object) -> str:
    messages = [m for m in results.objects(result, SH.resultMessage) if isinstance(m, Literal)]  # type: ignore[arg-type]
    ours = [str(m) for m in messages if m.language == "zh"]
    return (ours or [str(m) for m in messages] or ["constraint violated"])[0]


@dataclass(frozen=True, slots=True)
class _SparqlCheck:
    shape: URIRef
    query: Query
    messages: tuple[Literal, ...]
    targets: tuple[tuple[URIRef, Node], ...]  # (target kind, its value)


@lru_cache(maxsize=1)
def _split_shapes() -> tuple[Graph, tuple[_SparqlCheck, ...]]:
    """The Core part of the shapes (``sh:sparql`` removed), and the SPARQL constraints compiled once."""
    shapes = shapes_graph()
    core = Graph()
    for triple in shapes:
        if triple[1] != SH.sparql:
            core.add(triple)
    checks = []
    for shape, constraint in shapes.subject_objects(SH.sparql):
        if (constraint, SH.deactivated, Literal(True)) in shapes:
            continue
        prefixes = "".join(
            f"PREFIX {shapes.value(d, SH.prefix)}: <{shapes.value(d, SH.namespace)}>\n"
            for owner in shapes.objects(constraint, SH.prefixes)
            for d in shapes.objects(owner, SH.declare)
        )
        select = str(shapes.value(constraint, SH.select))
        messages = tuple(
            m for m in shapes.objects(constraint, SH.message) if isinstance(m, Literal)
        ) or tuple(m for m in shapes.objects(shape, SH.message) if isinstance(m, Literal))
        targets = tuple(
            (kind, value)
            for kind in (SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf, SH.targetNode)
            for value in shapes.objects(shape, kind)
        )
        assert isinstance(shape, URIRef)
        checks.append(_SparqlCheck(shape, prepareQuery(prefixes + select), messages, targets))
    return core, tuple(checks)


def _focus_nodes(data: Graph, targets: tuple[tuple[URIRef, Node], ...]) -> set[Node]:
    focus: set[Node] = set()
    for kind, value in targets:
        if kind == SH.targetNode:
            focus.add(value)
        elif kind == SH.targetSubjectsOf:
            focus.update(data.subjects(value, None))
        elif kind == SH.targetObjectsOf:
            focus.update(data.objects(None, value))
        else:  # targetClass: instances of the class and of its subclasses (rdfs:subClassOf* in the data)
            for cls in data.transitive_subjects(RDFS.subClassOf, value):
                focus.update(data.subjects(RDF.type, cls))
    return focus


def _substitute(message: Literal, row: dict[str, Node]) -> str:
    return re.sub(r"\{[?$](\w+)\}", lambda m: str(row[m[1]]) if m[1] in row else m[0], str(message))


def _sparql_violations(data: Graph) -> Iterator[ShapeViolation]:
    for check in _split_shapes()[1]:
        focus = _focus_nodes(data, check.targets)
        if not focus:
            continue
        for result in data.query(check.query):
            row = {str(k): v for k, v in result.asdict().items()}  # type: ignore[union-attr]
            this = row.get("this")
            if this is None or this not in focus:
                continue
            ours = [m for m in check.messages if m.language == "zh"] or list(check.messages)
            # SHACL-SPARQL: without ?value, a node shape's result value is the focus node
            path, value = row.get("path"), row.get("value", this)
            yield ShapeViolation(
                focus=str(this),
                path=_short(path) if path is not None else None,
                shape=_short(check.shape),
                component="sh:SPARQLConstraintComponent",
                severity="sh:Violation",
                message=_substitute(ours[0], row) if ours else "constraint violated",
                value=None if value is None else str(value),
            )


def _pyshacl(data: Graph, shapes: Graph) -> tuple[bool, list[ShapeViolation]]:
    from pyshacl import validate  # imported lazily: it is slow to import

    conforms, results, _text = validate(
        data,
        shacl_graph=shapes,
        inference="none",
        abort_on_first=False,
        allow_warnings=False,
        meta_shacl=False,
        advanced=False,
    )
    assert isinstance(results, Graph)
    out = []
    for r in results.subjects(RDF.type, SH.ValidationResult):
        shape = results.value(r, SH.sourceShape)
        value = results.value(r, SH.value)
        out.append(
            ShapeViolation(
                focus=str(results.value(r, SH.focusNode)),
                path=_path_text(results, results.value(r, SH.resultPath)),
                shape=_short(shape) if isinstance(shape, URIRef) else "(anonymous shape)",
                component=_short(results.value(r, SH.sourceConstraintComponent)),
                severity=_short(results.value(r, SH.resultSeverity)),
                message=_message(results, r),
                value=None if value is None or isinstance(value, BNode) else str(value),
            )
        )
    return bool(conforms), out


def validate_graph(data: Graph, engine: Engine = "fast") -> PolicyReport:
    """Check ``data`` against the policy shapes (no inference); see the module doc for the engines."""
    if engine == "reference":
        _conforms, violations = _pyshacl(data, shapes_graph())
    else:
        core, _checks = _split_shapes()
        _conforms, violations = _pyshacl(data, core)
        violations.extend(_sparql_violations(data))
    violations.sort(key=lambda v: (v.focus, v.shape, v.path or "", v.value or ""))
    return PolicyReport(not violations, tuple(violations))


def validate_list(lst: ResponsibilityList) -> PolicyReport:
    return validate_graph(to_graph(lst))


def load_validated(path: Path) -> ResponsibilityList:
    """Read a Turtle list, check it against the shapes, and build the model.

    Raises :class:`ValidationFailed` listing every violation, or ``InputError`` for unreadable files.
    """
    graph = read_graph(path)
    report = validate_graph(graph)
    if not report.conforms:
        raise ValidationFailed(f"{path}: the responsibility list breaks the policy shapes:\n{report.text()}")
    return from_graph(graph)
