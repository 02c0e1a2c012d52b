"""Crosswalks published as RDF: a local SKOS concept scheme whose concepts carry
``skos:exactMatch``/``skos:closeMatch`` links to the standard's code lists
(concept IRIs ``https://w3id.org/shulian/code/<scheme>/<notation>``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, unquote

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, SKOS

from node.errors import ConfigError

__all__ = ["CODE_BASE", "load_skos_crosswalk", "crosswalk_to_skos", "standard_code"]

log = logging.getLogger(__name__)

CODE_BASE = "https://w3id.org/shulian/code/"
_MATCHES = {"exactMatch": SKOS.exactMatch, "closeMatch": SKOS.closeMatch}
_FORMATS = {".ttl": "turtle", ".nt": "nt", ".rdf": "xml", ".xml": "xml", ".jsonld": "json-ld", ".n3": "n3"}


def standard_code(iri: str) -> tuple[str, str] | None:
    """``https://w3id.org/shulian/code/sex/1`` -> ``("sex", "1")``; None for any other IRI."""
    if not iri.startswith(CODE_BASE):
        return None
    rest = iri[len(CODE_BASE) :]
    scheme, sep, notation = rest.partition("/")
    if not sep or not scheme or not notation or "/" in notation:
        return None
    return scheme, unquote(notation)


def load_skos_crosswalk(
    path: str | Path,
    *,
    target: str | None = None,
    match: Iterable[str] = ("exactMatch", "closeMatch"),
    scheme: str | None = None,
    key: str = "crosswalks",
) -> dict[str, str]:
    """Local notations and labels -> standard notations.

    Every concept (in ``scheme`` if given) that links to a standard code of the
    ``target`` code list contributes its ``skos:notation``, ``skos:prefLabel``,
    ``skos:altLabel`` and ``skos:hiddenLabel`` values as keys. ``exactMatch``
    is preferred to ``closeMatch``; a concept with two different targets of the
    same strength, or two concepts claiming the same local key for different
    codes, is an error in the published crosswalk.
    """
    p = Path(path)
    kinds = list(match)
    for kind in kinds:
        if kind not in _MATCHES:
            raise ConfigError(f"match must name exactMatch and/or closeMatch, not {kind!r}", key=f"{key}.match")
    graph = Graph()
    try:
        graph.parse(p, format=_FORMATS.get(p.suffix.lower(), "turtle"))
    except FileNotFoundError as exc:
        raise ConfigError(f"SKOS crosswalk file not found: {p}", key=f"{key}.skos") from exc
    except Exception as exc:  # rdflib raises many parser-specific types
        raise ConfigError(f"cannot parse SKOS crosswalk {p}: {exc}", key=f"{key}.skos") from exc

    scheme_ref = URIRef(scheme) if scheme else None
    table: dict[str, str] = {}
    owner: dict[str, str] = {}
    concepts = set(graph.subjects(RDF.type, SKOS.Concept))
    for kind in kinds:
        concepts.update(graph.subjects(_MATCHES[kind], None))
    for concept in sorted(concepts, key=str):
        if standard_code(str(concept)) is not None:
            continue  # a standard concept described in the same file, not a local one
        if scheme_ref is not None and (concept, SKOS.inScheme, scheme_ref) not in graph:
            continue
        code = _target_code(graph, concept, kinds, target, p)
        if code is None:
            continue
        keys = {
            str(v)
            for pred in (SKOS.notation, SKOS.prefLabel, SKOS.altLabel, SKOS.hiddenLabel)
            for v in graph.objects(concept, pred)
        }
        if not keys:
            log.warning("%s: concept %s has no notation or label; skipped", p, concept)
            continue
        for k in keys:
            if k in table and table[k] != code:
                raise ConfigError(
                    f"local value {k!r} maps to {table[k]} (concept {owner[k]}) and to {code} (concept {concept})",
                    file=str(p),
                )
            table[k] = code
            owner[k] = str(concept)
    if not table:
        raise ConfigError(
            f"no concept links to a standard code{f' of list {target!r}' if target else ''} "
            f"with skos:{' or skos:'.join(kinds)}",
            file=str(p),
        )
    return table


def _target_code(graph: Graph, concept: object, kinds: list[str], target: str | None, path: Path) -> str | None:
    for kind in kinds:
        codes: set[str] = set()
        for obj in graph.objects(concept, _MATCHES[kind]):  # type: ignore[arg-type]
            found = standard_code(str(obj))
            if found is None:
                continue
            list_name, notation = found
            if target is not None and list_name != target:
                continue
            codes.add(notation)
        if len(codes) > 1:
            raise ConfigError(
                f"concept {concept} has skos:{kind} to several codes: {', '.join(sorted(codes))}", file=str(path)
            )
        if codes:
            return codes.pop()
    return None


def crosswalk_to_skos(
    table: Mapping[str, str], *, scheme_iri: str, target: str, title: str | None = None
) -> Graph:
    """Publish a crosswalk as a SKOS concept scheme (one concept per local value)."""
    graph = Graph()
    graph.bind("skos", SKOS)
    base = scheme_iri.rstrip("/#") + "/"
    local = Namespace(base)
    scheme = URIRef(scheme_iri)
    graph.add((scheme, RDF.type, SKOS.ConceptScheme))
    if title:
        graph.add((scheme, SKOS.prefLabel, Literal(title, lang="zh")))
    for value, code in sorted(table.items()):
        concept = local[quote(value, safe="")]
        graph.add((concept, RDF.type, SKOS.Concept))
        graph.add((concept, SKOS.inScheme, scheme))
        graph.add((concept, SKOS.notation, Literal(value)))
        graph.add((concept, SKOS.exactMatch, URIRef(f"{CODE_BASE}{target}/{quote(code, safe='')}")))
    return graph
