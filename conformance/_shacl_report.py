"""The SHACL validation report (an ``sh:ValidationReport`` graph) of record files.

Both engines report, per record, the violated (path, constraint) pairs with
severity and messages; this module writes them back in SHACL's report
vocabulary, so the report has the same shape whichever engine ran:

* ``sh:focusNode`` — the record (``https://w3id.org/shulian/record/{id}``);
* ``sh:resultPath`` — the property of the key (absent for rules on the record itself);
* ``sh:sourceShape`` / ``sh:sourceConstraintComponent`` (and ``sh:sourceConstraint``
  for the standard's SPARQL constraints) — the rule of the standard broken;
* ``sh:resultSeverity`` and ``sh:resultMessage`` in Chinese and English;
* ``slt:file`` / ``slt:line`` — where the record was read (record ids may repeat across files).

A record that could not be turned into RDF at all (not a JSON object, not JSON,
unknown type) has no place in a SHACL report; the report says how many there were
and the JUnit/EARL reports list them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rdflib import RDF, BNode, Graph, Literal, URIRef

from conformance._vocab import RDFS, RECORD_SHAPES_IRI, SH, SLT, XSD, bind_prefixes
from node.standard.model import RECORD_BASE, UNDECLARED_BASE, Rule, Standard
from node.validation import RecordReport

__all__ = ["RecordShaclReport", "type_shape"]

_CORE = {
    "Datatype", "NodeKind", "MinLength", "MaxLength", "Pattern", "In", "MinCount", "MaxCount",
    "Node", "Or", "LessThan", "MinInclusive", "Closed",
}


def type_shape(std: Standard, record_type: str) -> str:
    """The IRI of the node shape of a record type (the clause a record of that type is checked against)."""
    rt = std.types.get(record_type)
    if rt is None:
        return RECORD_SHAPES_IRI
    g = std.shapes_graph
    for shape in sorted(g.subjects(SH.targetClass, URIRef(rt.class_iri)), key=str):
        if (shape, SH.property, None) in g:
            return str(shape)
    return RECORD_SHAPES_IRI


class RecordShaclReport:
    """Accumulates the results of many records into one ``sh:ValidationReport``."""

    def __init__(self, std: Standard) -> None:
        self.std = std
        self.g = Graph()
        bind_prefixes(self.g.namespace_manager)
        self.node = BNode("report")
        self.g.add((self.node, RDF.type, SH.ValidationReport))
        self.conforms = True
        self.not_validated = 0
        self.results = 0
        self._index: dict[str, dict[tuple[str, str], Rule]] = {}
        for name, rt in std.types.items():
            idx: dict[tuple[str, str], Rule] = {}
            for r in rt.rules:
                idx.setdefault(("*" if r.kind == "Closed" else r.report_path, r.kind), r)
            self._index[name] = idx

    def _rule(self, record_type: str, path: str, constraint: str) -> Rule | None:
        idx = self._index.get(record_type, {})
        return idx.get((path, constraint)) or (idx.get(("*", "Closed")) if constraint == "Closed" else None)

    def add(self, file_iri: str, line: int, record: Any, rep: RecordReport) -> None:
        if rep.error is not None or rep.type is None or not isinstance(record, dict):
            self.not_validated += 1
            return
        rid = record.get("id")
        focus: URIRef | BNode = URIRef(RECORD_BASE + quote(rid, safe="")) if isinstance(rid, str) else BNode()
        g = self.g
        for v in rep.violations:
            res = BNode()
            self.results += 1
            g.add((self.node, SH.result, res))
            g.add((res, RDF.type, SH.ValidationResult))
            g.add((res, SH.focusNode, focus))
            g.add((res, SH.resultSeverity, SH[v.severity]))
            g.add((res, SH.resultMessage, Literal(v.message_zh, lang="zh")))
            g.add((res, SH.resultMessage, Literal(v.message_en, lang="en")))
            g.add((res, SLT.file, URIRef(file_iri)))
            g.add((res, SLT.line, Literal(line, datatype=XSD.integer)))
            rule = self._rule(rep.type, v.path, v.constraint)
            if rule is not None:
                g.add((res, SH.sourceShape, URIRef(rule.shape)))
            if rule is not None and rule.sparql:
                g.add((res, SH.sourceConstraintComponent, SH.SPARQLConstraintComponent))
                constraint = self.std.shapes_graph.value(URIRef(rule.shape), SH.sparql)
                if constraint is not None:
                    g.add((res, SH.sourceConstraint, constraint))
            elif v.constraint in _CORE:
                g.add((res, SH.sourceConstraintComponent, SH[f"{v.constraint}ConstraintComponent"]))
            else:
                g.add((res, SH.sourceConstraintComponent, SH.SPARQLConstraintComponent))
            on_record = rule.path is None and rule.kind != "Closed" if rule is not None else v.path == "id"
            if not on_record:  # a rule on the record itself (its id) has no path
                prop = self.std.keys.get(v.path, UNDECLARED_BASE + quote(v.path, safe=""))
                g.add((res, SH.resultPath, URIRef(prop)))
            if v.severity == "Violation":
                self.conforms = False

    def graph(self) -> Graph:
        """The report graph (``sh:conforms`` set from what was added)."""
        self.g.set((self.node, SH.conforms, Literal(self.conforms)))
        if self.not_validated:
            self.g.set((self.node, RDFS.comment, Literal(
                f"{self.not_validated} input item(s) could not be validated (not a JSON object, not JSON or an "
                "unknown type) and are not in this report; see the JUnit or EARL report", lang="en")))
        return self.g
