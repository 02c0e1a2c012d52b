"""node.catalog.build_catalog: DCAT 3 + 政务信息资源目录 from the configuration and the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyshacl
import pytest
from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, FOAF, XSD

from node.catalog import CatalogProfileError, build_catalog, serialize_catalog
from node.catalog.profile import validate_catalog
from node.config import NodeConfig
from node.errors import EXIT_FINDINGS, ConfigError, InputError
from node.standard.codelists import load_vocabulary
from node.standard.model import load_standard
from node.store import Store

from .conftest import LICENCES, POPULATION, SECRET

SL = Namespace("https://w3id.org/shulian/ns#")
VOID = Namespace("http://rdfs.org/ns/void#")
CODE = "https://w3id.org/shulian/code/"
BASE = "https://w3id.org/shulian/node/91110000600037341L/"
PERSON = {"id": "p1", "type": "Person", "identityNumber": "11010519491231002X", "name": "王秀英", "sex": "2",
          "ethnicity": "01", "birthDate": "1949-12-31", "householdDivision": "110000"}


def _ds(name: str) -> URIRef:
    return URIRef(f"{BASE}dataset/{name}")


@pytest.fixture(scope="module")
def dcat_ap_shapes(shared_data: Path) -> Graph:
    return Graph().parse(shared_data / "dcat-ap-3.0.1" / "shapes.ttl", format="turtle")


def test_catalog_of_a_configured_node_passes_the_profile_and_dcat_ap(
        node_cfg: NodeConfig, store: Store, dcat_ap_shapes: Graph) -> None:
    store.ensure_dataset("population", "Person")
    store.upsert("population", "p1", PERSON)
    g = build_catalog(node_cfg, store)
    report = validate_catalog(g)
    assert report.conforms and report.results == (), [r.message_en for r in report.results]
    conforms, _, text = pyshacl.validate(g, shacl_graph=dcat_ap_shapes)
    assert conforms, text
    assert set(g.objects(URIRef(BASE + "catalog"), DCAT.dataset)) == {
        _ds("population"), _ds("licences"), _ds("secret-units")}
    assert not any(isinstance(t, BNode) for triple in g for t in triple)  # canonical, linkable


def test_publisher_is_the_department_with_its_credit_code(node_cfg: NodeConfig) -> None:
    g = build_catalog(node_cfg, None)
    dept = URIRef("https://w3id.org/shulian/dept/91110000600037341L")
    assert g.value(URIRef(BASE + "catalog"), DCTERMS.publisher) == dept
    assert all(g.value(_ds(d), DCTERMS.publisher) == dept for d in ("population", "licences", "secret-units"))
    assert (dept, RDF.type, FOAF.Agent) in g
    assert g.value(dept, SL.creditCode) == Literal("91110000600037341L")
    assert g.value(dept, FOAF.name) == Literal("北京市公安局", lang="zh")
    assert g.value(dept, SL.administrativeLevel) == URIRef(CODE + "administrative-level/provincial")


def test_counts_and_modified_reflect_the_store(node_cfg: NodeConfig, store: Store) -> None:
    pop = _ds("population")
    g = build_catalog(node_cfg, store)
    assert g.value(pop, VOID.entities) == Literal(0, datatype=XSD.integer)
    assert g.value(pop, DCTERMS.modified) is None

    store.ensure_dataset("population", "Person")
    store.upsert_many("population", [(f"p{i}", {**PERSON, "id": f"p{i}"}) for i in range(3)])
    latest = max(r.modified for r in store.iter_records("population"))
    g = build_catalog(node_cfg, store)
    assert g.value(pop, VOID.entities).toPython() == 3
    assert g.value(pop, DCTERMS.modified).toPython() == latest
    assert g.value(URIRef(BASE + "catalog"), DCTERMS.modified).toPython() == latest

    store.delete("population", "p0")  # a deletion is a change: count down, modified up
    tombstone = store.get_record("population", "p0")
    assert tombstone is not None and tombstone.deleted
    g = build_catalog(node_cfg, store)
    assert g.value(pop, VOID.entities).toPython() == 2
    assert g.value(pop, DCTERMS.modified).toPython() == tombstone.modified > latest
    assert g.value(_ds("licences"), VOID.entities).toPython() == 0


def test_issued_is_when_the_store_registered_the_dataset(node_cfg: NodeConfig, store: Store) -> None:
    info = store.ensure_dataset("population", "Person")
    g = build_catalog(node_cfg, store)
    china = dt.timezone(dt.timedelta(hours=8))
    assert g.value(_ds("population"), DCTERMS.issued) == Literal(info.created.astimezone(china).date(),
                                                                 datatype=XSD.date)
    config_day = dt.datetime.fromtimestamp(node_cfg.path.stat().st_mtime, china).date()
    assert g.value(_ds("licences"), DCTERMS.issued).toPython() == config_day  # not in the store yet


def test_resource_catalog_metadata(node_cfg: NodeConfig) -> None:
    g = build_catalog(node_cfg, None)
    pop, lic, sec = _ds("population"), _ds("licences"), _ds("secret-units")
    service = URIRef(BASE + "service")
    assert g.value(pop, DCTERMS.identifier) == Literal("101001001/000001")
    assert set(g.objects(pop, DCTERMS.title)) == {Literal("户籍人口基本信息", lang="zh"),
                                                   Literal("Registered population", lang="en")}
    assert set(g.objects(pop, DCAT.theme)) == {URIRef(CODE + "resource-class/1"),
                                                URIRef(CODE + "resource-class/101")}
    assert g.value(pop, SL.sharingType) == URIRef(CODE + "sharing-type/2")
    assert g.value(pop, SL.sharingCondition) == Literal("仅限履行法定职责所必需")
    assert g.value(pop, SL.legalBasis) == Literal("《中华人民共和国个人信息保护法》第三十四条")
    assert g.value(pop, SL.sharingMethod) == URIRef(CODE + "sharing-method/interface")  # the default 系统对接
    assert g.value(pop, DCTERMS.accrualPeriodicity) == URIRef(CODE + "update-cycle/daily")
    assert g.value(pop, SL.openType) == URIRef(CODE + "open-type/3")
    assert g.value(pop, SL.recordType) == SL.Person
    assert {str(k) for k in g.objects(pop, DCAT.keyword)} == {"人口", "population"}
    # unconditional, via the sharing platform, irregular updates (an EU frequency), open to the public
    assert g.value(lic, SL.sharingType) == URIRef(CODE + "sharing-type/1")
    assert g.value(lic, SL.sharingMethod) == URIRef(CODE + "sharing-method/platform")
    assert g.value(lic, DCTERMS.accrualPeriodicity) == URIRef(
        "http://publications.europa.eu/resource/authority/frequency/IRREG")
    assert g.value(lic, SL.openType) == URIRef(CODE + "open-type/1")
    assert set(g.objects(lic, DCAT.theme)) == {URIRef(CODE + "resource-class/1"),
                                                URIRef(CODE + "resource-class/105")}
    # not shared: basis, no method, no distribution, not served
    assert g.value(sec, SL.sharingType) == URIRef(CODE + "sharing-type/3")
    assert g.value(sec, SL.sharingMethod) is None and g.value(sec, DCAT.distribution) is None
    assert set(g.objects(service, DCAT.servesDataset)) == {pop, lic}
    dist = g.value(pop, DCAT.distribution)
    assert g.value(dist, DCAT.accessService) == service
    assert g.value(dist, DCAT.accessURL) == g.value(service, DCAT.endpointURL) == URIRef("https://127.0.0.1:50051/")


def test_information_items_are_the_record_type_properties(node_cfg: NodeConfig) -> None:
    g = build_catalog(node_cfg, None)
    vocabulary = load_vocabulary()
    for ds, record_type in (("population", "Person"), ("licences", "ElectronicLicense"),
                            ("secret-units", "LegalEntity")):
        items = list(g.objects(_ds(ds), SL.informationItem))
        keys = load_standard().record_type(record_type).keys
        assert {str(g.value(i, SL.itemProperty)) for i in items} == set(keys.values())
        for item in items:
            key = str(g.value(item, SL.itemProperty)).rsplit("#", 1)[1]
            assert Literal(vocabulary[key].label_zh, lang="zh") in set(g.objects(item, DCTERMS.title))
            assert str(g.value(item, SL.itemDataType)) == vocabulary[key].range
    identity = URIRef(f"{_ds('population')}/item/identityNumber")
    assert g.value(identity, SL.itemLength).toPython() == 18  # an18
    assert g.value(URIRef(f"{_ds('population')}/item/birthDate"), SL.itemLength) is None


def test_export_round_trips_through_rdflib_in_both_formats(node_cfg: NodeConfig, store: Store) -> None:
    store.ensure_dataset("population", "Person")
    store.upsert("population", "p1", PERSON)
    g = build_catalog(node_cfg, store)
    for fmt, parse_as in (("turtle", "turtle"), ("json-ld", "json-ld"), ("ttl", "turtle"), ("jsonld", "json-ld")):
        text = serialize_catalog(g, fmt)
        back = Graph().parse(data=text, format=parse_as)
        assert isomorphic(back, g), fmt
        assert len(back) == len(g)
    assert '"@context"' in serialize_catalog(g, "json-ld")
    with pytest.raises(InputError, match="turtle or json-ld"):
        serialize_catalog(g, "rdfxml")


def test_base_url_places_iris_and_the_endpoint(node_cfg: NodeConfig) -> None:
    g = build_catalog(node_cfg, None, base_url="https://node.psb.example:7443")
    catalog = URIRef("https://node.psb.example:7443/catalog")
    assert (catalog, RDF.type, DCAT.Catalog) in g
    assert g.value(URIRef("https://node.psb.example:7443/service"), DCAT.endpointURL) == URIRef(
        "https://node.psb.example:7443/")
    assert URIRef("https://node.psb.example:7443/dataset/population") in set(g.objects(catalog, DCAT.dataset))
    with pytest.raises(InputError, match="absolute http"):
        build_catalog(node_cfg, None, base_url="node.example/")


def test_a_catalog_that_breaks_the_profile_is_not_served(make_node: Callable[..., NodeConfig]) -> None:
    no_conditions = {**POPULATION, "catalog": {k: v for k, v in POPULATION["catalog"].items()
                                               if k != "sharing_conditions"}}
    cfg = make_node([no_conditions, LICENCES])
    with pytest.raises(CatalogProfileError) as caught:
        build_catalog(cfg, None)
    err = caught.value
    assert "dataset 'population'" in err.message
    assert "sls:Dataset-conditionalSharingNeedsCondition" in err.message
    assert "\n" not in err.message
    assert str(cfg.path) in err.message
    assert err.exit_code == EXIT_FINDINGS and err.grpc_status == "FAILED_PRECONDITION"
    assert [v.shape for v in err.report.violations] == ["sls:Dataset-conditionalSharingNeedsCondition"]


def test_metadata_no_code_list_knows_is_a_config_error_naming_the_key(
        make_node: Callable[..., NodeConfig]) -> None:
    pigeon = {**LICENCES, "catalog": {**LICENCES["catalog"], "sharing_method": "飞鸽传书"}}
    cfg = make_node([SECRET, pigeon])
    with pytest.raises(ConfigError, match=r"\[datasets\[1\]\.catalog\.sharing_method\].*飞鸽传书"):
        build_catalog(cfg, None)
    no_class = {**SECRET, "catalog": {**SECRET["catalog"], "resource_code": "4010001/1"}}
    with pytest.raises(ConfigError, match=r"\[datasets\[0\]\.catalog\.resource_code\]"):
        build_catalog(make_node([no_class], name="other"), None)


def test_a_node_without_datasets_has_a_conforming_catalog(make_node: Callable[..., NodeConfig]) -> None:
    g = build_catalog(make_node([]), None)
    assert validate_catalog(g).conforms
    assert list(g.subjects(RDF.type, DCAT.Dataset)) == []
