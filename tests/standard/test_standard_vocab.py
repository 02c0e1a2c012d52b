"""The core vocabulary (ontology/vocab/core.ttl) and the Turtle files of the standard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rdflib import OWL, RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

from node.standard._paths import ontology_dir as shipped_ontology_dir
from node.standard._paths import resolve_standard_dir, schemas_dir
from node.standard.codelists import load_vocabulary

SL = Namespace("https://w3id.org/shulian/ns#")
SLS = Namespace("https://w3id.org/shulian/shapes#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
SH = Namespace("http://www.w3.org/ns/shacl#")
SCHEMA = Namespace("http://schema.org/")
CODE = "https://w3id.org/shulian/code/"

# the record JSON keys of docs/dev/NOTES.md and the range each takes
RECORD_KEYS = {
    "identityNumber": XSD.string, "name": XSD.string, "sex": XSD.string, "ethnicity": XSD.string,
    "birthDate": XSD.date, "householdDivision": XSD.string,
    "creditCode": XSD.string, "legalRepresentative": XSD.string, "establishmentDate": XSD.date,
    "registrationDivision": XSD.string, "entityStatus": XSD.string,
    "insuranceType": XSD.string, "enrollmentStatus": XSD.string, "startDate": XSD.date,
    "contributionBase": XSD.decimal,
    "licenseType": XSD.string, "licenseNumber": XSD.string, "holder": XSD.string,
    "issuingDepartment": XSD.string, "issuingDepartmentCode": XSD.string, "validFrom": XSD.date,
    "validUntil": XSD.date,
}
RECORD_CLASSES = {"Person": "人口基础信息", "LegalEntity": "法人单位基础信息",
                  "SocialInsuranceEnrollment": "社保参保", "ElectronicLicense": "电子证照"}


@pytest.fixture(scope="module")
def core(ontology_dir: Path) -> Graph:
    return Graph().parse(ontology_dir / "vocab" / "core.ttl", format="turtle")


def _sl_terms(g: Graph) -> set[URIRef]:
    kinds = (OWL.Class, OWL.DatatypeProperty, OWL.ObjectProperty, OWL.AnnotationProperty)
    return {s for k in kinds for s in g.subjects(RDF.type, k) if isinstance(s, URIRef) and str(s).startswith(str(SL))}


def _langs(g: Graph, s: URIRef, p: URIRef) -> list[str]:
    return sorted(str(o.language) for o in g.objects(s, p) if isinstance(o, Literal) and o.language)


def test_every_turtle_file_of_the_standard_parses(ontology_dir: Path) -> None:
    files = sorted(ontology_dir.rglob("*.ttl"))
    assert len(files) > 20
    for f in files:
        g = Graph().parse(f, format="turtle")
        assert len(g) > 0, f


def test_ontology_is_versioned(core: Graph) -> None:
    onto = URIRef("https://w3id.org/shulian/ns")
    assert (onto, RDF.type, OWL.Ontology) in core
    assert core.value(onto, OWL.versionInfo) == Literal("0.1.0")


def test_every_term_has_labels_and_definitions_in_chinese_and_english(core: Graph) -> None:
    terms = _sl_terms(core)
    assert len(terms) >= 4 + len(RECORD_KEYS)
    for t in sorted(terms):
        assert _langs(core, t, RDFS.label) == ["en", "zh"], f"{t}: rdfs:label needs exactly one @zh and one @en"
        assert _langs(core, t, SKOS.definition) == ["en", "zh"], f"{t}: skos:definition needs @zh and @en"
        assert list(core.objects(t, SKOS.altLabel)), f"{t}: no synonyms (skos:altLabel)"


def test_record_classes(core: Graph) -> None:
    for name, label in RECORD_CLASSES.items():
        assert (SL[name], RDF.type, OWL.Class) in core
        assert Literal(label, lang="zh") in set(core.objects(SL[name], RDFS.label))


def test_record_properties_are_exactly_the_record_json_keys(core: Graph) -> None:
    record_props = {
        str(s)[len(str(SL)) :]
        for s in core.subjects(RDF.type, OWL.DatatypeProperty)
        if any(d in {SL[c] for c in RECORD_CLASSES} for d in core.objects(s, SCHEMA.domainIncludes))
    }
    assert record_props == set(RECORD_KEYS)
    for key, rng in RECORD_KEYS.items():
        p = SL[key]
        assert (p, RDF.type, OWL.DatatypeProperty) in core, key
        assert core.value(p, RDFS.range) == rng, key
        assert core.value(p, SL.dataFormat) is not None, f"{key}: no sl:dataFormat"


@pytest.mark.parametrize(
    ("synonym", "key"),
    [
        ("xm", "name"), ("sfzh", "identityNumber"), ("gmsfhm", "identityNumber"), ("zjhm", "identityNumber"),
        ("身份证号", "identityNumber"), ("公民身份号码", "identityNumber"), ("xb", "sex"), ("gender", "sex"),
        ("csrq", "birthDate"), ("dob", "birthDate"), ("mz", "ethnicity"), ("hjdz", "householdDivision"),
        ("hjszd", "householdDivision"), ("户籍地", "householdDivision"), ("tyshxydm", "creditCode"),
        ("xydm", "creditCode"), ("dwmc", "name"), ("qymc", "name"), ("单位名称", "name"), ("企业名称", "name"),
        ("fddbr", "legalRepresentative"), ("clrq", "establishmentDate"), ("djjg", "registrationDivision"),
        ("djzt", "entityStatus"), ("xzlx", "insuranceType"), ("cbzt", "enrollmentStatus"), ("cbrq", "startDate"),
        ("参保日期", "startDate"), ("jfjs", "contributionBase"), ("zzlx", "licenseType"), ("zzbh", "licenseNumber"),
        ("czzt", "holder"), ("fzjg", "issuingDepartment"), ("yxqqsrq", "validFrom"), ("yxqjzrq", "validUntil"),
        ("id number", "identityNumber"),
    ],
)
def test_local_column_names_are_synonyms(synonym: str, key: str) -> None:
    vocab = load_vocabulary()
    term = vocab[key]
    assert synonym in term.synonyms or synonym in (term.label_zh, term.label_en)


def test_pinyin_synonyms_are_tagged_and_unambiguous(core: Graph) -> None:
    owner: dict[str, URIRef] = {}
    for key in RECORD_KEYS:
        for alt in core.objects(SL[key], SKOS.altLabel):
            assert isinstance(alt, Literal) and alt.language, f"{key}: synonym {alt!r} has no language tag"
            text = str(alt).casefold()
            assert owner.setdefault(text, SL[key]) == SL[key], f"synonym {alt} names both {owner[text]} and {key}"
    pinyin = [a for k in RECORD_KEYS for a in core.objects(SL[k], SKOS.altLabel) if (a.language or "").lower() == "zh-latn-pinyin"]
    assert all(re.fullmatch(r"[a-z]+", str(a)) for a in pinyin)
    assert len(pinyin) >= 30


def test_code_list_annotations_name_existing_schemes(core: Graph, ontology_dir: Path) -> None:
    schemes = set()
    for f in (ontology_dir / "codelists").glob("*.ttl"):
        schemes |= set(Graph().parse(f, format="turtle").subjects(RDF.type, SKOS.ConceptScheme))
    used = set(core.objects(None, SL.codeList))
    assert {URIRef(CODE + n) for n in ("sex", "ethnicity", "division", "entity-status", "insurance-type",
                                         "enrollment-status", "sharing-type")} <= used
    assert used <= schemes


def test_sl_terms_used_by_catalog_shapes_and_examples_are_defined(core: Graph, ontology_dir: Path) -> None:
    defined = _sl_terms(core)
    files = [ontology_dir / "shapes" / "catalog.ttl", *sorted((ontology_dir / "examples" / "catalog").rglob("*.ttl"))]
    for f in files:
        g = Graph().parse(f, format="turtle")
        used = {t for triple in g for t in triple if isinstance(t, URIRef) and str(t).startswith(str(SL))}
        # foaf:name in the "unknown property" example is not sl:; everything sl: must exist
        assert used <= defined, f"{f.name}: undefined sl: terms {sorted(used - defined)}"


def test_catalog_item_rules_restate_the_vocabulary(core: Graph, ontology_dir: Path) -> None:
    shapes = Graph().parse(ontology_dir / "shapes" / "catalog.ttl", format="turtle")
    bound = set(Collection(shapes, shapes.value(SLS["InformationItem-property"], SH["in"])))
    assert bound == {SL[k] for k in RECORD_KEYS}
    query = str(shapes.value(SLS.ItemDataTypeMatchesRange, SH.select))
    restated: dict[str, URIRef] = {}
    for names, dtype in re.findall(r"IF\(\?property IN \(([^)]*)\), xsd:(\w+)", query):
        for name in re.findall(r"sl:(\w+)", names):
            restated[name] = XSD[dtype]
    assert restated == RECORD_KEYS


def test_vocabulary_api(ontology_dir: Path) -> None:
    vocab = load_vocabulary(ontology_dir)
    t = vocab["householdDivision"]
    assert (t.kind, t.label_zh, t.data_format, t.code_list) == ("DatatypeProperty", "户籍地行政区划", "n6", "division")
    assert t.range == str(XSD.string)
    assert vocab["Person"].kind == "Class"
    assert vocab["contributionBase"].range == str(XSD.decimal)
    assert str(SL.Person) in vocab["identityNumber"].domain_includes


def test_paths() -> None:
    d = shipped_ontology_dir()
    assert (d / "vocab" / "core.ttl").is_file()
    assert (d / "shapes" / "catalog.ttl").is_file()
    assert schemas_dir().is_dir()
    assert resolve_standard_dir(None) == d
    assert resolve_standard_dir("x") == Path("x")
