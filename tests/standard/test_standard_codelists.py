"""The SKOS code lists (ontology/codelists/*.ttl) and node.standard.codelists."""

from __future__ import annotations

import re
from pathlib import Path

import pyshacl
import pytest
from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef

from node.errors import NotFound
from node.standard.codelists import codelist_names, load_codelist, load_codelists

SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
DCT = Namespace("http://purl.org/dc/terms/")
CODE = "https://w3id.org/shulian/code/"
EU_FREQ = "http://publications.europa.eu/resource/authority/frequency/"

HAND_MAINTAINED = [
    "administrative-level", "enrollment-status", "entity-status", "ethnicity", "insurance-type", "open-type",
    "resource-class", "resource-format", "sex", "sharing-method", "sharing-type", "update-cycle",
]


def _graph(ontology_dir: Path, name: str) -> Graph:
    return Graph().parse(ontology_dir / "codelists" / f"{name}.ttl", format="turtle")


def _langs(g: Graph, s: URIRef, p: URIRef) -> list[str]:
    return sorted(str(o.language) for o in g.objects(s, p) if isinstance(o, Literal) and o.language)


def test_the_standard_ships_every_code_list(ontology_dir: Path) -> None:
    assert codelist_names(ontology_dir) == tuple(sorted([*HAND_MAINTAINED, "divisions"]))


@pytest.mark.parametrize("name", HAND_MAINTAINED)
def test_code_list_structure(ontology_dir: Path, name: str) -> None:
    g = _graph(ontology_dir, name)
    scheme = URIRef(CODE + name)
    assert list(g.subjects(RDF.type, SKOS.ConceptScheme)) == [scheme]
    assert _langs(g, scheme, SKOS.prefLabel) == ["en", "zh"]
    assert _langs(g, scheme, DCT.title) == ["en", "zh"]  # DCAT-AP: a concept scheme has a title
    concepts = set(g.subjects(RDF.type, SKOS.Concept))
    assert concepts, name
    assert concepts == set(g.subjects(SKOS.inScheme, scheme))
    for c in concepts:
        notations = list(g.objects(c, SKOS.notation))
        assert len(notations) == 1, c
        n = notations[0]
        assert isinstance(n, Literal) and n.language is None and n.datatype in (None, XSD.string), c
        assert str(c) == f"{CODE}{name}/{n}", "concept IRI is <scheme>/<notation>"
        assert _langs(g, c, SKOS.prefLabel) == ["en", "zh"], f"{c}: prefLabel needs exactly one @zh and one @en"
        broader = g.value(c, SKOS.broader)
        if broader is None:
            assert (c, SKOS.topConceptOf, scheme) in g and (scheme, SKOS.hasTopConcept, c) in g, c
        else:
            assert broader in concepts, c
        pref = {str(o) for o in g.objects(c, SKOS.prefLabel)}
        assert not pref & {str(o) for o in g.objects(c, SKOS.altLabel)}, f"{c}: altLabel repeats prefLabel"


def test_code_lists_meet_dcat_ap_category_shapes(ontology_dir: Path, dcat_ap_shapes: Graph) -> None:
    g = Graph()
    for f in (ontology_dir / "codelists").glob("*.ttl"):
        g.parse(f, format="turtle")
    conforms, _report, text = pyshacl.validate(g, shacl_graph=dcat_ap_shapes)
    assert conforms, text


def test_ethnicity_has_56_groups_and_two_others(ontology_dir: Path) -> None:
    eth = load_codelist("ethnicity", ontology_dir)
    assert len(eth) == 58
    assert eth.notations() == tuple(f"{i:02d}" for i in range(1, 57)) + ("97", "98")
    spot = {"01": ("汉族", "Han"), "02": ("蒙古族", "Mongol"), "03": ("回族", "Hui"), "04": ("藏族", "Zang"),
            "05": ("维吾尔族", "Uygur"), "08": ("壮族", "Zhuang"), "10": ("朝鲜族", "Chosen"), "11": ("满族", "Man"),
            "29": ("柯尔克孜族", "Kirgiz"), "43": ("乌孜别克族", "Uzbek"), "46": ("德昂族", "Deang"),
            "53": ("赫哲族", "Hezhen"), "56": ("基诺族", "Jino"), "97": ("其他未识别民族", None),
            "98": ("外国血统中国籍人士", None)}
    for code, (zh, en) in spot.items():
        c = eth.get(code)
        assert c is not None and c.label_zh == zh
        if en:
            assert c.label_en == en
    names = [c.label_zh for c in eth]
    assert len(set(names)) == 58
    assert all(n.endswith("族") for n in names[:56])
    # adapters can recognise short names and GB/T 3304 letter codes
    assert eth.find("汉").notation == "01"
    assert eth.find("ug").notation == "05"
    assert eth.find("Uygur").notation == "05"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sex", {"0": "未知的性别", "1": "男", "2": "女", "9": "未说明的性别"}),
        ("sharing-type", {"1": "无条件共享", "2": "有条件共享", "3": "不予共享"}),
        ("entity-status", {"1": "存续", "2": "吊销", "3": "注销", "4": "迁出", "9": "其他"}),
        ("enrollment-status", {"1": "参保缴费", "2": "暂停缴费", "3": "终止参保"}),
        ("insurance-type", {"110": "企业职工基本养老保险", "120": "机关事业单位养老保险", "170": "城乡居民基本养老保险",
                            "210": "失业保险", "310": "职工基本医疗保险", "390": "城乡居民基本医疗保险",
                            "410": "工伤保险", "510": "生育保险"}),
        ("open-type", {"1": "开放", "2": "有条件开放", "3": "不开放"}),
        ("sharing-method", {"interface": "系统对接", "platform": "共享平台", "email": "邮件", "disk": "拷盘",
                            "media": "介质交换", "other": "其他"}),
        ("update-cycle", {"realtime": "实时", "daily": "每日", "weekly": "每周", "monthly": "每月",
                          "quarterly": "每季度", "yearly": "每年"}),
        ("administrative-level", {"national": "国家级", "provincial": "省级", "city": "市级", "county": "县级"}),
    ],
)
def test_code_values(ontology_dir: Path, name: str, expected: dict[str, str]) -> None:
    cl = load_codelist(name, ontology_dir)
    assert {c.notation: c.label_zh for c in cl} == expected
    assert all(c.label_en for c in cl)


def test_update_cycles_map_to_eu_frequencies(ontology_dir: Path) -> None:
    cl = load_codelist("update-cycle", ontology_dir)
    assert {c.notation: c.exact_match for c in cl} == {
        "realtime": (EU_FREQ + "UPDATE_CONT",), "daily": (EU_FREQ + "DAILY",), "weekly": (EU_FREQ + "WEEKLY",),
        "monthly": (EU_FREQ + "MONTHLY",), "quarterly": (EU_FREQ + "QUARTERLY",), "yearly": (EU_FREQ + "ANNUAL",),
    }
    g = _graph(ontology_dir, "update-cycle")
    assert all((URIRef(c.iri), RDF.type, DCT.Frequency) in g for c in cl)


def test_resource_classes(ontology_dir: Path) -> None:
    rc = load_codelist("resource-class", ontology_dir)
    assert [c.notation for c in rc if c.broader is None] == ["1", "2", "3"]
    base = {c.label_zh for c in rc if c.broader == "1"}
    assert base == {"人口基础信息资源", "法人单位基础信息资源", "自然资源和空间地理基础信息资源",
                    "社会信用基础信息资源", "电子证照基础信息资源"}
    assert all(re.fullmatch(r"1[0-9]{2}", c.notation) for c in rc if c.broader == "1")
    text = (ontology_dir / "codelists" / "resource-class.ttl").read_text(encoding="utf-8")
    assert "UNCONFIRMED" in text


def test_catalog_shapes_only_name_existing_concepts(ontology_dir: Path) -> None:
    concepts: set[str] = set()
    for cl in load_codelists(ontology_dir).values():
        concepts |= {c.iri for c in cl}
    shapes = Graph().parse(ontology_dir / "shapes" / "catalog.ttl", format="turtle")
    named = {str(t) for triple in shapes for t in triple if isinstance(t, URIRef) and str(t).startswith(CODE)}
    assert named and named <= concepts, sorted(named - concepts)


def test_find_and_lookup(ontology_dir: Path) -> None:
    sex = load_codelist("sex", ontology_dir)
    assert sex.find(" 男 ").notation == "1"
    assert sex.find("female").notation == "2"
    assert sex.find("1").label_zh == "男"
    assert sex.find("") is None and sex.find("unknown-label") is None
    assert "9" in sex and "3" not in sex
    uc = load_codelist("update-cycle", ontology_dir)
    assert uc.find(EU_FREQ + "DAILY") is None  # an exactMatch is not a label of ours
    assert uc.find("每天").notation == "daily"
    with pytest.raises(TypeError):
        sex.codes["5"] = sex.codes["1"]  # type: ignore[index]


def test_unknown_code_list_is_not_found(ontology_dir: Path) -> None:
    with pytest.raises(NotFound, match="no code list named 'colour'"):
        load_codelist("colour", ontology_dir)


def test_division_code_list_comes_from_the_division_import(ontology_dir: Path) -> None:
    div = load_codelist("division", ontology_dir)
    assert len(div) == 31
    assert div.get("110000").label_zh == "北京市"
    assert div.iri == CODE + "division"


def test_code_lists_are_cached_until_the_file_changes(standard_copy: Path) -> None:
    first = load_codelist("sex", standard_copy)
    assert load_codelist("sex", standard_copy) is first
    path = standard_copy / "codelists" / "sex.ttl"
    path.write_text(path.read_text(encoding="utf-8").replace('"Not stated"@en', '"Not stated (edited)"@en'), encoding="utf-8")
    assert load_codelist("sex", standard_copy).get("9").label_en == "Not stated (edited)"
