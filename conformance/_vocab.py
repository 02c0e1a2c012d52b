"""The vocabularies the kit reads and writes.

* ``mf:`` — the W3C test-manifest vocabulary (manifests, entries, action, result);
* ``earl:`` — EARL 1.0 (the report);
* ``slt:`` — the kit's own terms: test types, levels, expected results, statements;
* ``t:`` — the test cases themselves (``t:DAT-01``), stable across machines;
* ``clause:`` — requirements of the node protocol that are not shapes (issue clauses).
"""

from __future__ import annotations

from rdflib import Namespace
from rdflib.namespace import NamespaceManager

__all__ = [
    "MF",
    "EARL",
    "SLT",
    "TEST",
    "CLAUSE",
    "DCT",
    "DOAP",
    "FOAF",
    "OWL",
    "RDFS",
    "SH",
    "SL",
    "SLS",
    "XSD",
    "CATALOG_SHAPES_IRI",
    "RECORD_SHAPES_IRI",
    "KIT_IRI",
    "PREFIXES",
    "bind_prefixes",
]

MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
EARL = Namespace("http://www.w3.org/ns/earl#")
SLT = Namespace("https://w3id.org/shulian/conformance#")
TEST = Namespace("https://w3id.org/shulian/conformance/test#")
CLAUSE = Namespace("https://w3id.org/shulian/conformance/clause#")
DCT = Namespace("http://purl.org/dc/terms/")
DOAP = Namespace("http://usefulinc.com/ns/doap#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
RDFS = Namespace("http://www.w3.org/2000/01/rdf-schema#")
SH = Namespace("http://www.w3.org/ns/shacl#")
SL = Namespace("https://w3id.org/shulian/ns#")
SLS = Namespace("https://w3id.org/shulian/shapes#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")

RECORD_SHAPES_IRI = str(SLS)
CATALOG_SHAPES_IRI = "https://w3id.org/shulian/shapes/catalog"
KIT_IRI = "https://w3id.org/shulian/conformance/kit"

PREFIXES: dict[str, Namespace] = {
    "mf": MF,
    "earl": EARL,
    "slt": SLT,
    "t": TEST,
    "clause": CLAUSE,
    "dct": DCT,
    "doap": DOAP,
    "foaf": FOAF,
    "owl": OWL,
    "rdfs": RDFS,
    "sh": SH,
    "sl": SL,
    "sls": SLS,
    "xsd": XSD,
}


def bind_prefixes(nm: NamespaceManager) -> None:
    for prefix, ns in PREFIXES.items():
        nm.bind(prefix, ns, override=True, replace=True)
