"""What ``map suggest`` knows of the standard: properties with their labels and synonyms, and code lists.

Read from the standard's Turtle files: ``vocab/*.ttl`` (properties in the ``sl:``
namespace: rdfs:label, skos:prefLabel, skos:altLabel, skos:hiddenLabel;
schema:domainIncludes or rdfs:domain; rdfs:range; sl:codeList) and
``codelists/*.ttl`` (SKOS concepts: skos:notation and labels). The division list
is not read here (it is large and has its own index).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from adapters.crosswalk import CODE_BASE, standard_code
from node.errors import StandardError

__all__ = ["SL", "PropertyInfo", "CodeList", "Vocabulary", "load_vocabulary"]

log = logging.getLogger(__name__)

SL = Namespace("https://w3id.org/shulian/ns#")
_SCHEMA_DOMAIN = (URIRef("http://schema.org/domainIncludes"), URIRef("https://schema.org/domainIncludes"), RDFS.domain)
_LABELS = (RDFS.label, SKOS.prefLabel, SKOS.altLabel, SKOS.hiddenLabel)
_SKIP_CODELISTS = {"divisions.ttl"}


@dataclass(frozen=True)
class PropertyInfo:
    name: str  # local name = the record JSON key
    labels: tuple[tuple[str, str], ...]  # (text, language tag or "")
    domains: frozenset[str]  # local names of classes; empty: any type
    range: str | None  # local name of the range (date, string, decimal ...)
    code_list: str | None  # scheme name under https://w3id.org/shulian/code/
    unit: str | None = None

    def label(self, lang: str = "zh") -> str:
        for text, tag in self.labels:
            if tag == lang:
                return text
        return self.name


@dataclass(frozen=True)
class CodeList:
    scheme: str
    # notation -> labels (any language) of the concept
    concepts: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary:
    properties: dict[str, PropertyInfo]
    code_lists: dict[str, CodeList]
    source: str

    def for_type(self, record_type: str) -> list[PropertyInfo]:
        """Properties whose domain includes the type (all properties if the vocabulary gives no domains)."""
        if not any(p.domains for p in self.properties.values()):
            return list(self.properties.values())
        return [p for p in self.properties.values() if record_type in p.domains]


def _local(iri: str) -> str:
    for sep in ("#", "/"):
        if sep in iri:
            iri = iri.rsplit(sep, 1)[1]
    return iri


def load_vocabulary(standard_dir: str | Path | None = None, *, vocab_files: list[Path] | None = None) -> Vocabulary:
    """Properties of the ``sl:`` namespace and the code lists of the standard at ``standard_dir``."""
    if standard_dir is None:
        from node.standard import ontology_dir

        root = ontology_dir()
    else:
        root = Path(standard_dir)
    files = vocab_files if vocab_files is not None else sorted((root / "vocab").glob("*.ttl"))
    if not files:
        raise StandardError(f"no vocabulary found: {root / 'vocab'} has no .ttl files")
    graph = Graph()
    for f in files:
        try:
            graph.parse(f, format="turtle")
        except Exception as exc:  # rdflib parser errors have no common base
            raise StandardError(f"{f}: not valid Turtle ({exc})") from exc
    properties: dict[str, PropertyInfo] = {}
    subjects = {s for s in graph.subjects(RDF.type, None) if isinstance(s, URIRef) and str(s).startswith(str(SL))}
    for prop in sorted(subjects, key=str):
        kinds = {str(o) for o in graph.objects(prop, RDF.type)}
        if not kinds & {str(RDF.Property), "http://www.w3.org/2002/07/owl#DatatypeProperty",
                        "http://www.w3.org/2002/07/owl#ObjectProperty"}:  # fmt: skip
            continue
        name = str(prop)[len(str(SL)) :]
        labels = tuple(
            (str(lit), lit.language or "")
            for pred in _LABELS
            for lit in graph.objects(prop, pred)
            if isinstance(lit, Literal)
        )
        domains = frozenset(_local(str(d)) for pred in _SCHEMA_DOMAIN for d in graph.objects(prop, pred))
        rng = graph.value(prop, RDFS.range)
        code_list_iri = graph.value(prop, SL.codeList)
        code_list = None
        if code_list_iri is not None and str(code_list_iri).startswith(CODE_BASE):
            code_list = str(code_list_iri)[len(CODE_BASE) :].strip("/")
        unit = next((str(u) for u in graph.objects(prop, SL.unit) if isinstance(u, Literal) and u.language in ("zh", None)), None)
        properties[name] = PropertyInfo(name, labels, domains, _local(str(rng)) if rng is not None else None, code_list, unit)
    code_lists: dict[str, CodeList] = {}
    for f in sorted((root / "codelists").glob("*.ttl")):
        if f.name in _SKIP_CODELISTS:
            continue
        g = Graph()
        try:
            g.parse(f, format="turtle")
        except Exception as exc:  # rdflib parser errors have no common base
            raise StandardError(f"{f}: not valid Turtle ({exc})") from exc
        for concept in g.subjects(RDF.type, SKOS.Concept):
            found = standard_code(str(concept))
            if found is None:
                continue
            scheme, notation_from_iri = found
            notation = g.value(concept, SKOS.notation)
            names = tuple(str(lit) for pred in _LABELS for lit in g.objects(concept, pred) if isinstance(lit, Literal))
            code_lists.setdefault(scheme, CodeList(scheme)).concepts[str(notation or notation_from_iri)] = names
    log.debug("vocabulary: %d properties, %d code lists from %s", len(properties), len(code_lists), root)
    return Vocabulary(properties, code_lists, str(root))
