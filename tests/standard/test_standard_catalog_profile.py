"""The catalog profile (ontology/shapes/catalog.ttl), its examples, and node.catalog.profile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyshacl
import pytest
from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef

from node.catalog.profile import validate_catalog
from node.errors import InputError

SH = Namespace("http://www.w3.org/ns/shacl#")
SLS = Namespace("https://w3id.org/shulian/shapes#")
DCT = Namespace("http://purl.org/dc/terms/")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
SL = Namespace("https://w3id.org/shulian/ns#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")

EXAMPLES = Path(__file__).resolve().parents[2] / "ontology" / "examples" / "catalog"
VALID = sorted((EXAMPLES / "valid").glob("*.ttl"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.ttl"))
BREAKS = re.compile(r"^# breaks: (sls:\S+) \((sh:\w+)\)$")


@pytest.fixture(scope="module")
def shapes(ontology_dir: Path) -> Graph:
    return Graph().parse(ontology_dir / "shapes" / "catalog.ttl", format="turtle")


def _dcat_ap(data: Graph, dcat_ap_shapes: Graph) -> tuple[bool, str]:
    conforms, _report, text = pyshacl.validate(data, shacl_graph=dcat_ap_shapes)
    return bool(conforms), text


def _breaks(path: Path) -> set[tuple[str, str]]:
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = BREAKS.match(line)
        if m:
            found.add((m.group(1), m.group(2)))
    return found


# ---------------------------------------------------------------------------
# examples
# ---------------------------------------------------------------------------


def test_there_are_examples() -> None:
    assert len(VALID) >= 2 and len(INVALID) >= 30


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_passes_the_profile_and_dcat_ap(path: Path, dcat_ap_shapes: Graph) -> None:
    report = validate_catalog(path)
    assert report.conforms and report.results == (), [r.message_en for r in report.results]
    conforms, text = _dcat_ap(Graph().parse(path, format="turtle"), dcat_ap_shapes)
    assert conforms, text


def test_the_realistic_catalog_has_two_bilingual_datasets() -> None:
    g = Graph().parse(EXAMPLES / "valid" / "hangzhou-psb-catalog.ttl", format="turtle")
    datasets = list(g.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == 2
    for d in datasets:
        assert {t.language for t in g.objects(d, DCT.title)} == {"zh", "en"}
    assert {str(g.value(d, SL.sharingType)).rsplit("/", 1)[1] for d in datasets} == {"1", "2"}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_fails_with_exactly_the_named_constraint(path: Path, shapes: Graph) -> None:
    expected = _breaks(path)
    assert expected, f"{path.name}: no '# breaks: sls:Shape (sh:Component)' line"
    for shape, _component in expected:
        assert (SLS[shape.split(":", 1)[1]], None, None) in shapes, f"{path.name}: {shape} is not in catalog.ttl"
    report = validate_catalog(path)
    assert not report.conforms
    got = {(r.shape, r.component) for r in report.results}
    assert got == expected
    assert all(r.severity == "Violation" and r.message_zh and r.message_en for r in report.results)
    assert all(re.search(r"[\u4e00-\u9fff]", r.message_zh) for r in report.results)


def test_invalid_examples_are_named_after_distinct_breaks() -> None:
    seen: dict[frozenset[tuple[str, str]], str] = {}
    for path in INVALID:
        key = frozenset(_breaks(path))
        assert key not in seen, f"{path.name} breaks the same as {seen.get(key)}"
        seen[key] = path.name


# ---------------------------------------------------------------------------
# the profile implies DCAT-AP 3
# ---------------------------------------------------------------------------

_MAIN_CLASSES = {DCAT.Catalog, DCAT.Dataset, DCAT.Distribution, DCAT.DataService, FOAF.Agent}


def _constraints(g: Graph, pred: URIRef) -> dict[tuple[URIRef, URIRef], int]:
    """(target class, path) -> count bound, over Violation-severity property shapes of node shapes."""
    out: dict[tuple[URIRef, URIRef], int] = {}
    for shape in g.subjects(RDF.type, SH.NodeShape):
        for cls in g.objects(shape, SH.targetClass):
            for prop in g.objects(shape, SH.property):
                sev = g.value(prop, SH.severity)
                path = g.value(prop, SH.path)
                bound = g.value(prop, pred)
                if bound is None or not isinstance(path, URIRef) or sev not in (None, SH.Violation):
                    continue
                out[(cls, path)] = int(bound)
    return out


def test_every_dcat_ap_mandatory_property_is_required_by_the_profile(shapes: Graph, dcat_ap_shapes: Graph) -> None:
    theirs = _constraints(dcat_ap_shapes, SH.minCount)
    ours = _constraints(shapes, SH.minCount)
    assert len(theirs) >= 15
    missing = {k: v for k, v in theirs.items() if ours.get(k, 0) < v}
    assert not missing, missing


def test_dcat_ap_cardinalities_of_the_main_classes_are_in_the_profile(shapes: Graph, dcat_ap_shapes: Graph) -> None:
    theirs = {k: v for k, v in _constraints(dcat_ap_shapes, SH.maxCount).items() if k[0] in _MAIN_CLASSES}
    ours = _constraints(shapes, SH.maxCount)
    missing = {k: v for k, v in theirs.items() if k not in ours or ours[k] > v}
    assert not missing, missing


def test_removing_any_statement_never_passes_the_profile_but_fails_dcat_ap(dcat_ap_shapes: Graph) -> None:
    """Delete each triple of the minimal catalog in turn: whatever the profile accepts, DCAT-AP accepts."""
    base = Graph().parse(EXAMPLES / "valid" / "minimal-catalog.ttl", format="turtle")
    checked = 0
    for triple in sorted(base, key=lambda t: tuple(str(x) for x in t)):
        if any(isinstance(x, BNode) for x in triple):
            continue
        mutated = Graph()
        for t in base:
            if t != triple:
                mutated.add(t)
        if validate_catalog(mutated).conforms:
            conforms, text = _dcat_ap(mutated, dcat_ap_shapes)
            assert conforms, f"without {triple} the profile passes but DCAT-AP fails:\n{text}"
            checked += 1
    assert checked >= 1  # some statements are optional (e.g. the distribution's access service link)


# ---------------------------------------------------------------------------
# the shapes file itself
# ---------------------------------------------------------------------------


def test_every_message_is_in_chinese_and_english(shapes: Graph) -> None:
    holders = set(shapes.subjects(SH.message, None))
    assert len(holders) > 50
    for h in holders:
        langs = sorted(str(m.language) for m in shapes.objects(h, SH.message) if isinstance(m, Literal))
        assert langs == ["en", "zh"], h


def test_every_constraint_shape_has_a_message(shapes: Graph) -> None:
    # members of sh:or lists and qualified value shapes report through the shape that holds them
    members = set(shapes.objects(None, RDF.first)) | set(shapes.objects(None, SH.qualifiedValueShape))
    # a property shape holding only sh:sparql reports the SPARQL constraint's own message (checked below)
    property_shapes = [s for s in set(shapes.subjects(SH.path, None))
                       if s not in members and (s, SH.sparql, None) not in shapes]
    assert len(property_shapes) > 50
    for s in property_shapes:
        assert (s, SH.message, None) in shapes, s
    direct = {SH["or"], SH["in"], SH.pattern, SH.datatype, SH.nodeKind, SH["class"], SH["not"]}
    for s in shapes.subjects(RDF.type, SH.NodeShape):
        if set(shapes.predicates(s, None)) & direct:
            assert (s, SH.message, None) in shapes, s
    for c in shapes.subjects(RDF.type, SH.SPARQLConstraint):
        assert (c, SH.message, None) in shapes, c


def test_named_property_shapes_are_all_used(shapes: Graph) -> None:
    named = {s for s in shapes.subjects(RDF.type, SH.PropertyShape) if isinstance(s, URIRef)}
    used = set(shapes.objects(None, SH.property))
    assert named and named <= used, sorted(named - used)


# ---------------------------------------------------------------------------
# node.catalog.profile
# ---------------------------------------------------------------------------


def test_validate_a_graph_and_report_blank_node_items() -> None:
    g = Graph().parse(EXAMPLES / "valid" / "hangzhou-psb-catalog.ttl", format="turtle")
    item = next(i for i in g.objects(None, SL.informationItem) if g.value(i, SL.itemProperty) == SL.birthDate)
    g.remove((item, SL.itemDataType, None))
    g.add((item, SL.itemDataType, URIRef("http://www.w3.org/2001/XMLSchema#string")))
    report = validate_catalog(g)
    assert not report.conforms
    (r,) = report.violations
    assert r.shape == "sls:InformationItem-dataTypeMatchesRange" and r.path == "sl:itemDataType"
    assert r.focus == "<https://shulian-node.hzgaj.example/dataset/household-population> sl:informationItem []"
    assert r.value == "http://www.w3.org/2001/XMLSchema#string"
    assert r.message_zh == "信息项的数据类型与所绑定属性的值域不一致"
    assert r.message_en.startswith("the item's data type")
    json.dumps(report.to_dict(), ensure_ascii=False)


def test_warnings_do_not_break_conformance() -> None:
    g = Graph().parse(EXAMPLES / "valid" / "minimal-catalog.ttl", format="turtle")
    ds = URIRef("https://shulian-node.hzgaj.example/population")
    g.remove((ds, DCT.title, Literal("Basic information on the registered household population", lang="en")))
    g.remove((ds, DCAT.contactPoint, None))
    report = validate_catalog(g)
    assert report.conforms and report.violations == ()
    assert {(w.shape, w.severity) for w in report.warnings} == {
        ("sls:Dataset-titleEn", "Warning"), ("sls:Dataset-contactPoint", "Warning")}


def test_eu_frequency_iri_is_an_accepted_update_cycle() -> None:
    g = Graph().parse(EXAMPLES / "valid" / "minimal-catalog.ttl", format="turtle")
    ds = URIRef("https://shulian-node.hzgaj.example/population")
    g.set((ds, DCT.accrualPeriodicity, URIRef("http://publications.europa.eu/resource/authority/frequency/MONTHLY")))
    assert validate_catalog(g).conforms


def test_json_ld_catalog_file(tmp_path: Path) -> None:
    g = Graph().parse(EXAMPLES / "valid" / "minimal-catalog.ttl", format="turtle")
    f = tmp_path / "catalog.jsonld"
    f.write_text(g.serialize(format="json-ld"), encoding="utf-8")
    assert validate_catalog(f).conforms


def test_unreadable_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="catalog file not found"):
        validate_catalog(tmp_path / "missing.ttl")
    bad = tmp_path / "bad.ttl"
    bad.write_text("<a> <b> .", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.ttl: cannot read the catalog as turtle"):
        validate_catalog(bad)


def test_empty_catalog_conforms() -> None:
    assert validate_catalog(Graph()).conforms
