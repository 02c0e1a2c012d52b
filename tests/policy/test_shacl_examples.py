"""The examples next to the standard: the valid list conforms; each invalid one breaks exactly the shape it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Graph

from node.errors import ValidationFailed
from node.policy import import_csv, load_validated, to_graph, validate_graph, validate_list
from node.policy.shacl import shapes_graph

from .conftest import EXAMPLES

INVALID = sorted((EXAMPLES / "invalid").glob("*.ttl"))


def _expected(path: Path) -> str:
    found = re.search(r"^# violates: (slp:\S+)", path.read_text(encoding="utf-8"), re.M)
    assert found, f"{path.name} must name the shape it breaks in a '# violates: slp:...' line"
    return found[1]


def _graph(path: Path):
    from node.policy import read_graph

    return read_graph(path)


def test_valid_example_conforms():
    report = validate_graph(_graph(EXAMPLES / "valid" / "list.ttl"))
    assert report.conforms, report.text()
    assert load_validated(EXAMPLES / "valid" / "list.ttl").provider_code == "91110000600037341L"


def test_there_are_invalid_examples_for_many_shapes():
    assert len(INVALID) >= 20
    assert len({_expected(p) for p in INVALID}) >= 20


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_example_breaks_exactly_its_shape(path):
    """(With pySHACL run the standard way too: test_fast_engine_agrees_with_pyshacl.)"""
    report = validate_graph(_graph(path))
    assert not report.conforms
    assert report.shapes == {_expected(path)}, report.text()
    assert all(v.message and v.severity == "sh:Violation" for v in report.violations)
    with pytest.raises(ValidationFailed, match=re.escape(_expected(path))):
        load_validated(path)


def _verdicts(report):
    return sorted(
        (v.focus if not v.focus.startswith("n") else "_", v.shape, v.component) for v in report.violations
    )


@pytest.mark.parametrize("path", [EXAMPLES / "valid" / "list.ttl", *INVALID], ids=lambda p: p.stem)
def test_fast_engine_agrees_with_pyshacl(path):
    graph = _graph(path)
    fast, reference = validate_graph(graph, "fast"), validate_graph(graph, "reference")
    assert fast.conforms == reference.conforms
    assert _verdicts(fast) == _verdicts(reference)
    assert sorted(
        (v.focus, v.value, v.message) for v in fast.violations if "SPARQL" in v.component
    ) == sorted((v.focus, v.value, v.message) for v in reference.violations if "SPARQL" in v.component)


def test_fast_engine_agrees_on_all_invalid_examples_at_once():
    """Every invalid example in one graph (IRIs made distinct per file): many rules, many focus nodes."""
    text = "\n".join(
        p.read_text(encoding="utf-8")
        .replace("D1", f"D1x{i}")
        .replace("D2", f"D2x{i}")
        .replace("/g1", f"/g{i}")
        for i, p in enumerate(INVALID)
    )
    graph = Graph().parse(data=text, format="turtle")
    fast, reference = validate_graph(graph, "fast"), validate_graph(graph, "reference")
    assert _verdicts(fast) == _verdicts(reference)
    assert fast.shapes == reference.shapes == {_expected(p) for p in INVALID}


def test_every_named_shape_is_exercised_or_structural():
    """Each named rule of the shapes file has an invalid example (except the plain datatype checks)."""
    names = {str(s).split("#", 1)[1] for s in shapes_graph().subjects() if "/shapes/policy#" in str(s)}
    covered = {_expected(p).removeprefix("slp:") for p in INVALID}
    structural = {
        "",  # the ontology node holding the SPARQL prefixes
        "ResponsibilityListShape",
        "DatasetShape",
        "InformationItemShape",
        "PolicyShape",
        "PermissionShape",
        "MaskingRuleShape",
        "PurposeConstraint",
        "DateTimeConstraint",
        "List-listedDataset",
        "Dataset-texts-condition",
        "Dataset-basis",
        "Dataset-withheldItem",
        "Dataset-hasPolicy",
        "Item-partOf",
        "Policy-permission",
        "Permission-identifier",
        "Permission-basis",
        "Permission-request",
        "Masking-item",
    }
    assert names - covered - structural == set()


@pytest.mark.parametrize("name", ["list-zh-gb18030.csv", "list-en-utf8.csv"])
def test_imported_examples_conform(name):
    assert validate_list(import_csv(EXAMPLES / name).list).conforms


def test_shapes_reject_an_item_of_another_dataset_in_dataset_masking():
    from rdflib import Graph

    g = Graph().parse(
        data="""
        @prefix sl: <https://w3id.org/shulian/ns#> . @prefix odrl: <http://www.w3.org/ns/odrl/2/> .
        @prefix dct: <http://purl.org/dc/terms/> . @prefix dcat: <http://www.w3.org/ns/dcat#> .
        <urn:d1> a dcat:Dataset ; dct:identifier "D1" ; sl:sharingType <https://w3id.org/shulian/code/sharing-type/1> ;
            sl:masking [ a sl:MaskingRule ; sl:maskedItem <urn:i2> ; sl:maskMethod sl:FullRedaction ] .
        <urn:d2> a dcat:Dataset ; dct:identifier "D2" ; sl:sharingType <https://w3id.org/shulian/code/sharing-type/1> .
        <urn:i2> a sl:InformationItem ; sl:itemProperty sl:name ; odrl:partOf <urn:d2> .
        <urn:d1> sl:withheldItem <urn:i2> ; sl:legalBasis "b" .
        """,
        format="turtle",
    )
    assert validate_graph(g).shapes == {"slp:DatasetMasksOwnItems", "slp:WithheldItemOfDataset"}
    assert validate_graph(g, "reference").shapes == validate_graph(g).shapes


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_engine_agrees_on_mutated_lists(policy, data):
    """Delete some triples and rewire some objects at random: both engines reach the same verdicts."""
    graph = to_graph(policy)
    triples = sorted(graph, key=lambda t: tuple(str(x) for x in t))
    objects = sorted({o for _s, _p, o in triples}, key=str)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        s, p, o = data.draw(st.sampled_from(triples), label="triple")
        graph.remove((s, p, o))
        if data.draw(st.booleans(), label="rewire"):
            graph.add((s, p, data.draw(st.sampled_from(objects), label="object")))
    fast, reference = validate_graph(graph, "fast"), validate_graph(graph, "reference")
    assert _verdicts(fast) == _verdicts(reference)


def test_shapes_lists_match_the_core_vocabulary_and_code_lists():
    """slp:Item-property and slp:Dataset-sharingMethod restate the standard; keep them equal."""
    from rdflib import URIRef
    from rdflib.collection import Collection
    from rdflib.namespace import SH

    from node.policy._standard import record_keys
    from node.standard.codelists import load_codelist

    shapes = shapes_graph()
    ns = "https://w3id.org/shulian/shapes/policy#"

    def listed(shape: str) -> set[str]:
        head = shapes.value(URIRef(ns + shape), SH["in"])
        return {str(x) for x in Collection(shapes, head)}

    assert listed("Item-property") == {f"https://w3id.org/shulian/ns#{k}" for k in record_keys()}
    assert listed("Dataset-sharingMethod") == {c.iri for c in load_codelist("sharing-method")}
