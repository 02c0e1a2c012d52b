"""The reference engine: record -> RDF through the context -> pySHACL.

The records of a batch are loaded into one ``pyoxigraph.Store`` (pySHACL then
runs its SPARQL on oxigraph, ~100x faster than on an rdflib Graph) and
validated in one pass against the shapes graph.

Known divergence: for a valid typed literal in a non-canonical lexical form
(``"1991-01-01Z"^^xsd:date``, ``"+3"^^xsd:decimal``, ``"1e5"^^xsd:decimal``)
pySHACL over oxigraph checks ``sh:pattern`` against the canonical form and so
misses the pattern violation that the fast engine reports against the form
actually sent. The fast engine's verdict is the standard's intent (the
patterns forbid those forms); recorded in the CHANGELOG's known issues.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pyoxigraph as ox
from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef

from node.standard.model import XSD, RecordType, Standard
from node.validation._report import Violation
from node.validation._terms import key_of_predicate, record_triples

__all__ = ["ShaclEngine", "normalised_shapes"]

log = logging.getLogger(__name__)
SH = Namespace("http://www.w3.org/ns/shacl#")


def normalised_shapes(std: Standard) -> Graph:
    """The shapes graph with simple literals typed xsd:string.

    RDF 1.1 makes "1" and "1"^^xsd:string the same term, but rdflib compares
    them as different; oxigraph hands pySHACL the typed form, so sh:in lists
    must use it too.
    """
    g = Graph()
    for s, p, o in std.shapes_graph:
        if isinstance(o, Literal) and o.datatype is None and o.language is None:
            o = Literal(str(o), datatype=XSD.string)
        g.add((s, p, o))
    return g


def _ox(term: Any) -> Any:
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.datatype is None or term.datatype == XSD.string:
            return ox.Literal(str(term))
        return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
    raise TypeError(f"unexpected term {term!r}")


def _nan_safe_range_comparisons() -> None:
    """Make pySHACL's range constraints (sh:minInclusive ...) treat a NaN decimal as not comparable.

    A decimal literal spelled "NaN" (or "nan", "sNaN", ...) is a Python ``Decimal('NaN')`` in rdflib,
    and ordering it raises ``decimal.InvalidOperation``, which pySHACL does not catch: validation
    stopped with that error. pySHACL counts a value it cannot compare (``TypeError``) as failing the
    constraint, which is the SHACL reading (``$min <= NaN`` is not true) and the fast engine's
    verdict; the comparison it uses is wrapped to say so.
    """
    from pyshacl.constraints.core import value_range_constraints as ranges

    compare: Callable[[Any, Any], Any] = getattr(ranges, "compare_literal")  # noqa: B009 - not in its exports
    if getattr(compare, "_shulian_nan_safe", False):
        return

    def compare_literal(l1: Any, l2: Any) -> Any:
        try:
            return compare(l1, l2)
        except decimal.InvalidOperation as exc:  # NaN: not comparable
            raise TypeError(f"cannot order {l1!r} and {l2!r}") from exc

    compare_literal._shulian_nan_safe = True  # type: ignore[attr-defined]
    setattr(ranges, "compare_literal", compare_literal)  # noqa: B010 - as above


class ShaclEngine:
    def __init__(self, std: Standard) -> None:
        import pyshacl  # imported lazily: only the reference engine needs it

        _nan_safe_range_comparisons()
        self._pyshacl = pyshacl
        self.std = std
        self.shapes = normalised_shapes(std)
        self.all_keys = std.keys
        self.datatypes = std.coercions
        # messages come from the shapes (pySHACL drops the language tag of SPARQL messages)
        self.messages = {(r.shape, r.kind): r.message for rt in std.types.values() for r in rt.rules}

    def validate_batch(self, items: Sequence[tuple[dict[str, Any], RecordType]]) -> list[list[Violation]]:
        """Violations per record; record subjects must be unique in ``items``."""
        store = ox.Store()
        subjects: dict[str, int] = {}
        quads = []
        for i, (record, rt) in enumerate(items):
            subject, triples = record_triples(record, rt, self.all_keys, self.datatypes)
            subjects[str(subject)] = i
            for s, p, o in triples:
                quads.append(ox.Quad(_ox(s), _ox(p), _ox(o), ox.DefaultGraph()))
        store.extend(quads)
        _conforms, results_graph, _text = self._pyshacl.validate(
            store,  # type: ignore[arg-type]  # pySHACL takes an oxigraph Store; its hints omit it
            shacl_graph=self.shapes, inference="none", abort_on_first=False, allow_warnings=False
        )
        out: list[set[Violation]] = [set() for _ in items]
        rg: Graph = results_graph
        # top-level results only (sh:node failures carry nested sh:detail results)
        results = [r for rep in rg.subjects(RDF.type, SH.ValidationReport) for r in rg.objects(rep, SH.result)]
        for r in results:
            focus = rg.value(r, SH.focusNode)
            idx = subjects.get(str(focus))
            if idx is None:
                log.warning("validation result for an unknown focus node %s", focus)
                continue
            path = rg.value(r, SH.resultPath)
            key = key_of_predicate(str(path), self.all_keys) if path is not None else "id"
            component = str(rg.value(r, SH.sourceConstraintComponent))
            kind = component.rsplit("#", 1)[-1].removesuffix("ConstraintComponent")
            if kind == "SPARQL":
                source = str(rg.value(r, SH.sourceConstraint))
                kind = source.rsplit("#", 1)[-1]
            severity = str(rg.value(r, SH.resultSeverity)).rsplit("#", 1)[-1]
            msg = self.messages.get((str(rg.value(r, SH.sourceShape)), kind))
            if msg is not None:
                zh, en = msg.zh, msg.en
            else:
                texts = [str(m) for m in rg.objects(r, SH.resultMessage)]
                zh = en = "; ".join(texts)
            out[idx].add(Violation(key, kind, severity, zh, en))
        return [sorted(v) for v in out]
