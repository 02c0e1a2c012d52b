"""Catalog conformance: the catalog-example cases of the manifests, and catalog files.

The verdict is :func:`node.catalog.profile.validate_catalog`'s; for catalog files the
kit also keeps pySHACL's own ``sh:ValidationReport`` graph for the report folder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rdflib import Graph, URIRef

from conformance._manifest import file_of
from conformance._model import Case, Expectation, Outcome, Result, Subject
from conformance._records import file_subject
from conformance._vocab import CATALOG_SHAPES_IRI, SH, SLS, SLT, bind_prefixes
from node.catalog.profile import CatalogReport, catalog_shapes, load_catalog_graph, validate_catalog
from node.errors import InputError

__all__ = ["profile_subject", "run_catalog_examples", "check_catalog_files", "catalog_version"]

_EXPAND = {"sls:": str(SLS), "sh:": str(SH)}


def _expand(name: str | None) -> str:
    if name is None:
        return ""
    for prefix, ns in _EXPAND.items():
        if name.startswith(prefix):
            return ns + name[len(prefix):]
    return name


def _short(iri: str) -> str:
    for prefix, ns in _EXPAND.items():
        if iri.startswith(ns):
            return prefix + iri[len(ns):]
    return iri


def catalog_version(standard_dir: Path | None) -> str | None:
    """The ``owl:versionInfo`` of the catalog shapes."""
    g = catalog_shapes(standard_dir)
    v = g.value(URIRef(CATALOG_SHAPES_IRI), URIRef("http://www.w3.org/2002/07/owl#versionInfo"))
    return str(v) if v is not None else None


def profile_subject(version: str | None) -> Subject:
    return Subject("https://w3id.org/shulian/conformance/engine/catalog-profile",
                   "Shulian catalog profile check (pySHACL over shapes/catalog.ttl)", "software", version)


def _details(report: CatalogReport) -> tuple[str, ...]:
    return tuple(
        f"{r.severity} {r.shape or '(unnamed shape)'} [{r.component}] at {r.focus}"
        f"{' ' + r.path if r.path else ''}: {r.message_zh} / {r.message_en}"
        for r in report.results
    )


def _pairs(pairs: set[tuple[str, str]] | frozenset[tuple[str, str]]) -> str:
    return ", ".join(f"{_short(s)} {_short(c)}" for s, c in sorted(pairs)) or "nothing"


def _judge(exp: Expectation, report: CatalogReport) -> tuple[Outcome, str]:
    got = {(_expand(r.shape), _expand(r.component)) for r in report.violations}
    if exp.conforms:
        if report.conforms:
            return Outcome.PASSED, "conforms, as expected"
        return Outcome.FAILED, f"expected to conform; violations: {_pairs(got)}"
    if report.conforms:
        return Outcome.FAILED, f"expected violations ({_pairs(exp.violations)}); the catalog was accepted"
    missing = set(exp.violations) - got
    if missing:
        return Outcome.FAILED, f"expected {_pairs(missing)} to be reported; reported: {_pairs(got)}"
    extra = got - set(exp.violations)
    if exp.exhaustive and extra:
        return Outcome.FAILED, f"reported more than expected: {_pairs(extra)}"
    return Outcome.PASSED, f"rejected, as expected: {_pairs(got)}"


def run_catalog_examples(cases: Sequence[Case], *, standard_dir: Path | None) -> list[Result]:
    """Run ``slt:CatalogExampleTest`` cases against the catalog profile."""
    subject = profile_subject(catalog_version(standard_dir))
    out: list[Result] = []
    for c in cases:
        path = file_of(c.action) if c.action else None
        if path is None or not path.is_file():
            out.append(Result(c, Outcome.CANT_TELL, subject, f"the example file is missing: {c.action}"))
            continue
        if c.expected is None:
            out.append(Result(c, Outcome.CANT_TELL, subject, "the case has no mf:result"))
            continue
        t0 = time.monotonic()
        try:
            report = validate_catalog(path, standard_dir=standard_dir)
        except InputError as exc:  # an unreadable example is the example's fault, not a verdict
            out.append(Result(c, Outcome.CANT_TELL, subject, exc.message))
            continue
        outcome, message = _judge(c.expected, report)
        out.append(Result(c, outcome, subject, message, _details(report), time.monotonic() - t0))
    return out


def _shacl_graph(graph: Graph, standard_dir: Path | None) -> Graph:
    """pySHACL's report graph for a catalog, run the way the profile check runs it (over Oxigraph)."""
    import pyoxigraph
    import pyshacl
    from pyshacl.graph_abstraction import DataGraph

    store = pyoxigraph.Store()
    store.load(graph.serialize(format="nt", encoding="utf-8"), format=pyoxigraph.RdfFormat.N_TRIPLES)
    _conforms, report, _text = pyshacl.validate(
        DataGraph.from_oxigraph_store(store), shacl_graph=catalog_shapes(standard_dir), inference="none",
        inplace=True, allow_warnings=True, abort_on_first=False,
    )
    out = Graph()
    for t in report:
        out.add(t)
    return out


def check_catalog_files(files: Sequence[str], *, standard_dir: Path | None) -> tuple[list[Result], Graph]:
    """Check each catalog file (Turtle, JSON-LD, ...) against the catalog profile: one result per file.

    Raises :class:`InputError` for a file that is missing or cannot be parsed.
    """
    files = list(dict.fromkeys(files))
    results: list[Result] = []
    reports = Graph()
    bind_prefixes(reports.namespace_manager)
    for f in files:
        path = Path(f)
        graph = load_catalog_graph(path)
        subj = file_subject(path, "catalog")
        t0 = time.monotonic()
        report = validate_catalog(graph, standard_dir=standard_dir)
        elapsed = time.monotonic() - t0
        g = _shacl_graph(graph, standard_dir)
        for node in list(g.subjects(SH.conforms, None)):
            g.add((node, SLT.file, URIRef(subj.iri)))
        reports += g
        case = Case(
            id=f,
            iri=f"{subj.iri}#catalog",
            name_zh=f"目录 {f} 符合目录规范",
            name_en=f"catalog {f} conforms to the catalog profile",
            test_type=str(SLT.CatalogConformance),
            clauses=(CATALOG_SHAPES_IRI,),
            suite=f,
            action=subj.iri,
        )
        warn = len(report.warnings)
        if report.conforms:
            msg = "conforms" + (f" ({warn} warning(s))" if warn else "")
            results.append(Result(case, Outcome.PASSED, subj, msg, _details(report), elapsed))
        else:
            msg = f"does not conform: {len(report.violations)} violation(s)" + (f", {warn} warning(s)" if warn else "")
            results.append(Result(case, Outcome.FAILED, subj, msg, _details(report), elapsed))
    return results, reports
