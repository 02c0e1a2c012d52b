"""Reports: JUnit XML parses and its counts match; EARL parses and holds one assertion per case."""

from __future__ import annotations

import dataclasses
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator

import pytest
from rdflib import RDF, Graph, URIRef

from conformance import (
    NodeContext,
    NodeTarget,
    Outcome,
    Registry,
    Run,
    RunOptions,
    earl_graph,
    junit_xml,
    load_manifests,
    manifests_dir,
    run_cases,
)
from conformance._vocab import DCT, EARL, SLT


@pytest.fixture()
def mixed_run(shipped_run: Run) -> Iterator[Run]:
    """The shipped data run plus node cases with every other outcome (failed, can't tell, n/a, not run)."""
    reg = Registry()

    @reg.case("CAT-01")
    def fails(ctx: NodeContext) -> None:
        ctx.fail("the catalog breaks sls:Dataset-titleZh")

    @reg.case("CAT-02")
    def cant_tell(ctx: NodeContext) -> None:
        ctx.cant_tell("no dataset to describe")

    @reg.case("QRY-01")
    def inapplicable(ctx: NodeContext) -> None:
        ctx.inapplicable("no unconditional dataset")

    srv = socket.create_server(("127.0.0.1", 0))
    try:
        node = run_cases(load_manifests([manifests_dir() / "node.ttl"]),
                         RunOptions(target=NodeTarget(f"127.0.0.1:{srv.getsockname()[1]}"), registry=reg))
    finally:
        srv.close()
    yield dataclasses.replace(shipped_run, results=shipped_run.results + node.results)


def test_the_mixed_run_has_every_outcome(mixed_run: Run) -> None:
    assert {r.outcome for r in mixed_run.results} == set(Outcome)
    assert mixed_run.exit_code == 1


def test_junit_parses_and_counts_match(mixed_run: Run) -> None:
    root = ET.fromstring(junit_xml(mixed_run))
    c = mixed_run.counts()
    assert root.tag == "testsuites"
    assert int(root.get("tests", -1)) == len(mixed_run.results)
    assert int(root.get("failures", -1)) == c["failed"]
    assert int(root.get("errors", -1)) == c["cantTell"]
    assert int(root.get("skipped", -1)) == c["untested"] + c["inapplicable"]
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(mixed_run.results)
    assert sum(int(s.get("tests", -1)) for s in root.findall("testsuite")) == len(mixed_run.results)
    assert len(root.findall("./testsuite/testcase/failure")) == c["failed"]
    assert len(root.findall("./testsuite/testcase/error")) == c["cantTell"]
    assert len(root.findall("./testsuite/testcase/skipped")) == c["untested"] + c["inapplicable"]
    by_id = {tc.find("properties/property[@name='id']").get("value"): tc for tc in cases}  # type: ignore[union-attr]
    assert set(by_id) == {r.case.id for r in mixed_run.results}
    assert by_id["CAT-01"].find("failure").get("message") == "the catalog breaks sls:Dataset-titleZh"  # type: ignore[union-attr]
    skipped = by_id["SUB-01"].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("not run:")
    names = {s.get("name") for s in root.findall("testsuite")}
    assert {"Data conformance: record examples", "Data conformance: catalog examples", "Node conformance"} == names


def test_earl_has_one_assertion_per_case(mixed_run: Run) -> None:
    text = earl_graph(mixed_run).serialize(format="turtle")
    g = Graph().parse(data=text, format="turtle")
    assertions = list(g.subjects(RDF.type, EARL.Assertion))
    assert len(assertions) == len(mixed_run.results)
    tests = Counter(g.value(a, EARL.test) for a in assertions)
    assert all(n == 1 for n in tests.values())
    outcomes = Counter()
    for a in assertions:
        assert g.value(a, EARL.assertedBy) == URIRef("https://w3id.org/shulian/conformance/kit")
        assert g.value(a, EARL.mode) == EARL.automatic
        assert (g.value(a, EARL.subject), RDF.type, EARL.TestSubject) in g
        result = g.value(a, EARL.result)
        assert (result, RDF.type, EARL.TestResult) in g
        outcome = g.value(result, EARL.outcome)
        assert outcome in {EARL[o.value] for o in Outcome}
        outcomes[str(outcome).rsplit("#", 1)[1]] += 1
        test = g.value(a, EARL.test)
        assert {t.language for t in g.objects(test, DCT.title)} == {"zh", "en"}
        assert g.value(test, SLT.level) in (SLT.Mandatory, SLT.Optional)
        assert list(g.objects(test, DCT.source))
    assert dict(outcomes) == {k: v for k, v in mixed_run.counts().items() if v}
    # the test is named by its stable id, not by a local file path
    assert URIRef("https://w3id.org/shulian/conformance/test#KFK-01") in tests
