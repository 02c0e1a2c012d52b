"""Check a catalog (DCAT 3 + 政务信息资源目录 terms) against the standard's catalog profile.

The profile is ``ontology/shapes/catalog.ttl``; this module runs it with pySHACL (a catalog
is small and validated rarely: when it is published, not per record) and turns the SHACL
report into plain values with the messages in Chinese and English. The catalog is loaded
into an in-memory Oxigraph store first, so the profile's SPARQL constraints are parsed and
run by Oxigraph (about ten times faster than rdflib's SPARQL engine)::

    from node.catalog.profile import validate_catalog
    report = validate_catalog("catalog.ttl")
    if not report.conforms:
        for r in report.violations:
            print(r.focus, r.path, r.message_zh)

Warnings (recommended but missing, e.g. an English title) are reported but do not make
the catalog non-conforming.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import NamespaceManager
from rdflib.term import Node
from rdflib.util import guess_format

from node.errors import InputError, StandardError
from node.standard._paths import resolve_standard_dir

__all__ = [
    "CATALOG_SHAPES_FILE",
    "CatalogFinding",
    "CatalogReport",
    "catalog_shapes",
    "load_catalog_graph",
    "validate_catalog",
]

log = logging.getLogger(__name__)

CATALOG_SHAPES_FILE = Path("shapes") / "catalog.ttl"

SH = Namespace("http://www.w3.org/ns/shacl#")

_PREFIXES = {
    "sl": "https://w3id.org/shulian/ns#",
    "sls": "https://w3id.org/shulian/shapes#",
    "code": "https://w3id.org/shulian/code/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "spdx": "http://spdx.org/rdf/terms#",
    "adms": "http://www.w3.org/ns/adms#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "dcatap": "http://data.europa.eu/r5r/",
    "sh": str(SH),
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

_SEVERITY_ORDER = {"Violation": 0, "Warning": 1, "Info": 2}


@dataclass(frozen=True)
class CatalogFinding:
    """One result of the catalog check.

    ``focus`` is the IRI of the node at fault (a blank node is shown as ``<subject> predicate []``);
    ``path`` the property (``dct:identifier``) or None for a rule on the whole node;
    ``shape`` the named rule of the profile (``sls:Dataset-resourceCode``);
    ``component`` the SHACL constraint component (``sh:MinCountConstraintComponent``).
    """

    focus: str
    path: str | None
    value: str | None
    severity: str  # "Violation" | "Warning" | "Info"
    shape: str | None
    component: str
    message_zh: str
    message_en: str

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class CatalogReport:
    """``conforms`` is True when there is no Violation (warnings are allowed)."""

    conforms: bool
    results: tuple[CatalogFinding, ...]

    @property
    def violations(self) -> tuple[CatalogFinding, ...]:
        return tuple(r for r in self.results if r.severity == "Violation")

    @property
    def warnings(self) -> tuple[CatalogFinding, ...]:
        return tuple(r for r in self.results if r.severity != "Violation")

    def to_dict(self) -> dict[str, Any]:
        return {"conforms": self.conforms, "results": [r.to_dict() for r in self.results]}


def _namespace_manager() -> NamespaceManager:
    nm = NamespaceManager(Graph(), bind_namespaces="none")
    for prefix, ns in _PREFIXES.items():
        nm.bind(prefix, ns, override=True, replace=True)
    return nm


@functools.lru_cache(maxsize=8)
def _shapes_for(path: str, mtime_ns: int, size: int) -> Graph:
    g = Graph()
    try:
        g.parse(path, format="turtle")
    except Exception as exc:  # rdflib raises many parser exception types
        raise StandardError(f"{path}: the catalog shapes are not valid Turtle ({exc})") from exc
    return g


def catalog_shapes(standard_dir: str | os.PathLike[str] | None = None) -> Graph:
    """The catalog profile's shapes graph (parsed once per file version). Do not modify it."""
    path = resolve_standard_dir(standard_dir) / CATALOG_SHAPES_FILE
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise StandardError(f"{path}: the standard has no catalog shapes") from exc
    return _shapes_for(str(path.resolve()), st.st_mtime_ns, st.st_size)


def load_catalog_graph(source: Graph | str | os.PathLike[str]) -> Graph:
    """``source`` as an rdflib Graph: a Graph is returned as is; a path is parsed by its suffix
    (.ttl Turtle, .jsonld JSON-LD, .rdf/.xml RDF/XML, .nt, .trig; anything else as Turtle)."""
    if isinstance(source, Graph):
        return source
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: catalog file not found")
    fmt = guess_format(str(path)) or "turtle"
    g = Graph()
    try:
        g.parse(path, format=fmt)
    except Exception as exc:  # rdflib raises many parser exception types
        raise InputError(f"{path}: cannot read the catalog as {fmt} ({exc}); fix the syntax and try again") from exc
    return g


class _Described:
    """The data graph pySHACL validated (blank-node ids are the store's, not the input's)."""

    def __init__(self, data: Any) -> None:
        self._data = data

    def subject_predicates(self, node: Node) -> list[tuple[Node, Node]]:
        return list(self._data.subject_predicates(node))


def _describe(data: _Described, node: Any, nm: NamespaceManager) -> str:
    if isinstance(node, URIRef):
        return str(node)
    if isinstance(node, BNode):
        for s, p in data.subject_predicates(node):
            if not isinstance(s, BNode):
                return f"<{s}> {p.n3(nm)} []"
        return "[]"
    if isinstance(node, Literal):
        return str(node)
    return str(node)


def _path_text(report: Graph, path: Any, nm: NamespaceManager) -> str | None:
    if path is None:
        return None
    if isinstance(path, URIRef):
        return str(path.n3(nm))
    inverse = report.value(path, SH.inversePath)
    if inverse is not None:
        return f"^{_path_text(report, inverse, nm)}"
    return "(complex path)"


def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


def _messages(report: Graph, result: Any, fallback: str) -> tuple[str, str]:
    zh = en = None
    for m in sorted(report.objects(result, SH.resultMessage), key=str):
        if not isinstance(m, Literal):
            continue
        lang = (m.language or "").lower()
        if not lang:
            # pySHACL drops the language tag of SPARQL-constraint messages when it fills in
            # their variables; every message of the profile is Chinese or English, so tell them
            # apart by script.
            lang = "zh" if _has_cjk(str(m)) else "en"
        if lang.startswith("zh"):
            zh = zh or str(m)
        elif lang.startswith("en"):
            en = en or str(m)
    en = en or zh or fallback
    return zh or en, en


def _local(node: Any) -> str:
    text = str(node)
    return text.rsplit("#", 1)[-1]


def _findings(data: _Described, report: Graph) -> list[CatalogFinding]:
    nm = _namespace_manager()
    out: list[CatalogFinding] = []
    for result in report.subjects(RDF.type, SH.ValidationResult):
        focus = report.value(result, SH.focusNode)
        shape = report.value(result, SH.sourceShape)
        component = report.value(result, SH.sourceConstraintComponent)
        value = report.value(result, SH.value)
        severity = _local(report.value(result, SH.resultSeverity) or SH.Violation)
        component_text = component.n3(nm) if isinstance(component, URIRef) else "sh:unknown"
        zh, en = _messages(report, result, f"{component_text} not satisfied")
        out.append(
            CatalogFinding(
                focus=_describe(data, focus, nm),
                path=_path_text(report, report.value(result, SH.resultPath), nm),
                value=None if value is None or value == focus else _describe(data, value, nm),
                severity=severity,
                shape=shape.n3(nm) if isinstance(shape, URIRef) else None,
                component=component_text,
                message_zh=zh,
                message_en=en,
            )
        )
    out.sort(key=lambda r: (_SEVERITY_ORDER.get(r.severity, 3), r.focus, r.path or "", r.shape or "", r.value or ""))
    return out


def validate_catalog(
    graph_or_path: Graph | str | os.PathLike[str], *, standard_dir: str | os.PathLike[str] | None = None
) -> CatalogReport:
    """Validate a catalog (an rdflib Graph or a file) against ``shapes/catalog.ttl``.

    Raises :class:`InputError` when the file cannot be read or parsed, and
    :class:`StandardError` when the profile itself is broken.
    """
    # imported here: pySHACL and Oxigraph are slow to import and only the catalog check needs them
    import pyoxigraph
    import pyshacl
    from pyshacl.graph_abstraction import DataGraph

    graph = load_catalog_graph(graph_or_path)
    shapes = catalog_shapes(standard_dir)
    store = pyoxigraph.Store()
    store.load(graph.serialize(format="nt", encoding="utf-8"), format=pyoxigraph.RdfFormat.N_TRIPLES)
    data = DataGraph.from_oxigraph_store(store)
    try:
        conforms, report, _text = pyshacl.validate(
            data, shacl_graph=shapes, inference="none", inplace=True, allow_warnings=True, abort_on_first=False
        )
    except pyshacl.errors.ReportableRuntimeError as exc:
        raise StandardError(f"the catalog shapes cannot be evaluated: {exc}") from exc
    findings = _findings(_Described(data), report)
    conforming = not any(f.severity == "Violation" for f in findings)
    if bool(conforms) != conforming:
        log.debug("pySHACL conforms=%s but findings say %s", conforms, conforming)
    return CatalogReport(conforms=conforming, results=tuple(findings))
