"""EARL 1.0 in Turtle: what auditors and W3C-style report tools read.

One ``earl:Assertion`` per case::

    [] a earl:Assertion ;
        earl:assertedBy <https://w3id.org/shulian/conformance/kit> ;
        earl:subject <file:///data/people.jsonl> ;
        earl:test t:DAT-01 ;
        earl:mode earl:automatic ;
        earl:result [ a earl:TestResult ; earl:outcome earl:passed ; dct:date "..."^^xsd:dateTime ;
                      dct:description "valid, as expected"@en ] .

Test cases and subjects are described once (titles in zh and en, clause, level,
file digests), so the report reads on its own.
"""

from __future__ import annotations

from rdflib import RDF, BNode, Graph, Literal, URIRef

from conformance._model import Run
from conformance._vocab import DCT, DOAP, EARL, KIT_IRI, MF, SLT, XSD, bind_prefixes

__all__ = ["earl_graph"]


def earl_graph(run: Run) -> Graph:
    g = Graph()
    bind_prefixes(g.namespace_manager)
    kit = URIRef(KIT_IRI)
    g.add((kit, RDF.type, EARL.Assertor))
    g.add((kit, RDF.type, EARL.Software))
    g.add((kit, DOAP.name, Literal("shulian-conform")))
    g.add((kit, DOAP.revision, Literal(run.tool_version)))
    g.add((kit, DCT.title, Literal("数链标准符合性测试工具", lang="zh")))
    g.add((kit, DCT.title, Literal("Shulian conformance kit", lang="en")))
    for s in run.subjects:
        node = URIRef(s.iri)
        g.add((node, RDF.type, EARL.TestSubject))
        g.add((node, DCT.title, Literal(s.title)))
        g.add((node, SLT.subjectKind, Literal(s.kind)))
        if s.version:
            g.add((node, DOAP.revision, Literal(s.version)))
        if s.sha256:
            g.add((node, SLT.sha256, Literal(s.sha256)))
    date = Literal(run.finished.isoformat(), datatype=XSD.dateTime)
    for r in run.results:
        c = r.case
        test = URIRef(c.iri)
        g.add((test, RDF.type, EARL.TestCase))
        g.add((test, DCT.identifier, Literal(c.id)))
        g.add((test, DCT.title, Literal(c.name_zh, lang="zh")))
        g.add((test, DCT.title, Literal(c.name_en, lang="en")))
        g.add((test, SLT.level, SLT.Mandatory if c.mandatory else SLT.Optional))
        for clause in c.clauses:
            g.add((test, DCT.source, URIRef(clause)))
        if c.action:
            g.add((test, MF.action, URIRef(c.action)))
        a, res = BNode(), BNode()
        g.add((a, RDF.type, EARL.Assertion))
        g.add((a, EARL.assertedBy, kit))
        g.add((a, EARL.subject, URIRef(r.subject.iri)))
        g.add((a, EARL.test, test))
        g.add((a, EARL.mode, EARL.automatic))
        g.add((a, EARL.result, res))
        g.add((res, RDF.type, EARL.TestResult))
        g.add((res, EARL.outcome, EARL[r.outcome.value]))
        g.add((res, DCT.date, date))
        if r.message:
            g.add((res, DCT.description, Literal(r.message, lang="en")))
        if r.details:
            g.add((res, EARL.info, Literal("\n".join(r.details))))
    return g
