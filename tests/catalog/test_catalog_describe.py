"""node.catalog.describe_dataset: metadata, the record type's JSON Schema and its SHACL shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rdflib import RDF, Graph, Namespace, URIRef

from node.catalog import describe_dataset, information_items
from node.config import NodeConfig
from node.errors import NotFound
from node.standard import schemas_dir
from node.standard.model import load_standard
from node.store import Store

SH = Namespace("http://www.w3.org/ns/shacl#")
SLS = Namespace("https://w3id.org/shulian/shapes#")
SL = Namespace("https://w3id.org/shulian/ns#")


def test_describe_by_id_and_by_resource_code(node_cfg: NodeConfig, store: Store) -> None:
    store.ensure_dataset("population", "Person")
    store.upsert("population", "p1", {"id": "p1", "name": "王秀英"})
    by_id = describe_dataset(node_cfg, store, "population")
    assert describe_dataset(node_cfg, store, "101001001/000001") == by_id
    assert by_id["id"] == "population" and by_id["record_type"] == "Person"
    assert by_id["iri"] == "https://w3id.org/shulian/node/91110000600037341L/dataset/population"
    meta = by_id["metadata"]
    assert meta["resource_code"] == "101001001/000001"
    assert meta["title"] == {"zh": "户籍人口基本信息", "en": "Registered population"}
    assert meta["publisher"] == {"name": "北京市公安局", "code": "91110000600037341L", "level": "provincial",
                                 "division": "110000"}
    assert (meta["sharing_type"], meta["sharing_type_zh"]) == ("conditional", "有条件共享")
    assert meta["records"] == 1 and meta["modified"] is not None
    assert [i["key"] for i in by_id["items"]] == [i.key for i in information_items("Person")]
    json.dumps(by_id, ensure_ascii=False)  # JSON-ready, as the gRPC layer sends it


def test_json_schema_is_the_committed_schema(node_cfg: NodeConfig) -> None:
    described = describe_dataset(node_cfg, None, "licences")
    expected = json.loads((schemas_dir() / "jsonschema" / "ElectronicLicense.schema.json").read_text("utf-8"))
    assert described["json_schema"] == expected
    assert described["metadata"]["records"] == 0 and described["metadata"]["sharing_method"] == "共享平台"


def test_shapes_turtle_holds_every_rule_of_the_type_and_nothing_of_the_others(node_cfg: NodeConfig) -> None:
    described = describe_dataset(node_cfg, None, "population")
    g = Graph().parse(data=described["shapes_turtle"], format="turtle")
    person = load_standard().record_type("Person")
    rule_shapes = {URIRef(r.shape) for r in person.rules}
    assert rule_shapes <= set(g.subjects())  # every property shape, the record-id shape, the closed node shape
    assert (SLS.PersonShape, SH.targetClass, SL.Person) in g
    assert (SLS.GB11643Check, RDF.type, SH.SPARQLConstraint) in g  # what sh:sparql points at
    assert (SLS.DivisionCode, RDF.type, SH.NodeShape) in g  # what sh:node points at
    assert set(g.objects(URIRef(str(SLS)), SH.declare))  # the prefixes the SPARQL constraints need
    assert SLS.LegalEntityShape not in set(g.subjects())
    assert SLS.ElectronicLicenseShape not in set(g.subjects())


def _division_pattern(shapes_turtle: str) -> re.Pattern[str]:
    g = Graph().parse(data=shapes_turtle, format="turtle")
    return re.compile(str(g.value(SLS.DivisionCode, SH.pattern)))


def test_a_custom_standard_gives_its_own_shapes_and_schema(node_cfg: NodeConfig, full_standard: Path) -> None:
    full = describe_dataset(node_cfg, None, "population", standard_dir=full_standard)
    shipped = describe_dataset(node_cfg, None, "population")
    # the shipped standard knows the 31 provinces; the imported list knows 110105 (北京市朝阳区) too
    assert _division_pattern(full["shapes_turtle"]).match("110105")
    assert not _division_pattern(shipped["shapes_turtle"]).match("110105")
    assert full["json_schema"]["title"] == shipped["json_schema"]["title"]
    assert set(full["json_schema"]["properties"]) == set(shipped["json_schema"]["properties"])


def test_unknown_dataset_is_not_found(node_cfg: NodeConfig) -> None:
    with pytest.raises(NotFound, match=r"'nope' is not configured .*population, licences, secret-units"):
        describe_dataset(node_cfg, None, "nope")
