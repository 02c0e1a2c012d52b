"""ODRL JSON-LD export: self-contained, parses with rdflib, same triples as the Turtle form."""

from __future__ import annotations

import json
import socket

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import XSD

from node.policy import ODRL_CONTEXT, load_list, to_graph, to_odrl, to_odrl_json

from .conftest import EXAMPLES, MZJ, RSJ

ODRL = Namespace("http://www.w3.org/ns/odrl/2/")
SL = Namespace("https://w3id.org/shulian/ns#")
DEPT = "https://w3id.org/shulian/dept/"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the export must parse without network access")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _parse(text: str) -> Graph:
    return Graph().parse(data=text, format="json-ld")


def test_export_is_self_contained(policy, no_network):
    doc = to_odrl(policy)
    assert isinstance(doc["@context"], dict)  # inline, not a URL to fetch
    assert "http" not in json.dumps(doc["@context"]).replace('"http://', "").replace('"https://', "")
    _parse(to_odrl_json(policy))


@pytest.mark.parametrize("source", ["fixture", "example"])
def test_export_has_the_same_triples_as_turtle(policy, source, no_network):
    lst = policy if source == "fixture" else load_list(EXAMPLES / "valid" / "list.ttl")
    assert isomorphic(_parse(to_odrl_json(lst)), to_graph(lst))


def test_export_contains_the_expected_permissions(policy, no_network):
    g = _parse(to_odrl_json(policy))
    rows = g.query(
        """
        PREFIX odrl: <http://www.w3.org/ns/odrl/2/>
        PREFIX sl: <https://w3id.org/shulian/ns#>
        SELECT ?assignee ?property ?purpose ?until WHERE {
            ?policy a odrl:Set ; odrl:profile <https://w3id.org/shulian/profile/policy> ; odrl:permission ?p .
            ?p a odrl:Permission ; odrl:action odrl:use ; odrl:assignee ?assignee ; odrl:target ?item .
            ?item sl:itemProperty ?property .
            ?p odrl:constraint ?c1 . ?c1 odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                odrl:rightOperand ?purpose .
            ?p odrl:constraint ?c2 . ?c2 odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lteq ;
                odrl:rightOperand ?until .
        }"""
    )
    got = {
        (str(a)[len(DEPT) :], str(k)[len(str(SL)) :], str(p), u.toPython().isoformat()) for a, k, p, u in rows
    }
    expected = {
        (RSJ, key, purpose, "2026-12-31")
        for key in ("identityNumber", "name", "birthDate")
        for purpose in ("社会保险参保资格审核", "养老金发放")
    } | {(MZJ, key, "最低生活保障资格核查", "2025-12-31") for key in ("name", "householdDivision")}
    assert got == expected


def test_export_carries_masking_and_profile_terms(policy):
    g = _parse(to_odrl_json(policy))
    ds = URIRef("https://w3id.org/shulian/dataset/101%2F000001")
    perm = next(g.subjects(ODRL.assignee, URIRef(DEPT + RSJ)))
    rule = next(g.objects(perm, SL.masking))
    assert g.value(rule, SL.maskMethod) == SL.PartialRedaction
    assert g.value(rule, SL.keepFirst) == Literal("6", datatype=XSD.nonNegativeInteger)
    assert g.value(g.value(rule, SL.maskedItem), SL.itemProperty) == SL.identityNumber
    assert g.value(ds, SL.sharingType) == URIRef("https://w3id.org/shulian/code/sharing-type/2")
    assert g.value(g.value(ds, SL.withheldItem), SL.itemProperty) == SL.ethnicity


def test_export_reads_like_odrl():
    doc = to_odrl(load_list(EXAMPLES / "valid" / "list.ttl"))
    ds = next(n for n in doc["@graph"] if n.get("identifier") == "101/000001")
    policy = ds["hasPolicy"]
    assert policy["type"] == "Set" and policy["profile"] == "https://w3id.org/shulian/profile/policy"
    perm = policy["permission"][0]
    assert perm["action"] == "use" and perm["assignee"].startswith(DEPT)
    assert perm["constraint"][0] == {
        "type": "Constraint",
        "leftOperand": "purpose",
        "operator": "isAnyOf",
        "rightOperand": ["社会保险参保资格审核"],
    }


# the ODRL term definitions the export copies, as https://www.w3.org/ns/odrl.jsonld defines them
OFFICIAL = {
    "uid": "@id",
    "type": "@type",
    "Set": "odrl:Set",
    "Permission": "odrl:Permission",
    "Constraint": "odrl:Constraint",
    "profile": {"@type": "@id", "@id": "odrl:profile"},
    "permission": {"@type": "@id", "@id": "odrl:permission"},
    "hasPolicy": {"@type": "@id", "@id": "odrl:hasPolicy"},
    "target": {"@type": "@id", "@id": "odrl:target"},
    "partOf": {"@type": "@id", "@id": "odrl:partOf"},
    "assignee": {"@type": "@id", "@id": "odrl:assignee"},
    "assigner": {"@type": "@id", "@id": "odrl:assigner"},
    "action": {"@type": "@vocab", "@id": "odrl:action"},
    "use": "odrl:use",
    "constraint": {"@type": "@id", "@id": "odrl:constraint"},
    "leftOperand": {"@type": "@vocab", "@id": "odrl:leftOperand"},
    "operator": {"@type": "@vocab", "@id": "odrl:operator"},
    "rightOperand": "odrl:rightOperand",
    "purpose": "odrl:purpose",
    "dateTime": "odrl:dateTime",
    "isAnyOf": "odrl:isAnyOf",
    "lteq": "odrl:lteq",
}


def test_context_terms_match_the_odrl_context():
    assert {k: ODRL_CONTEXT[k] for k in OFFICIAL} == OFFICIAL
    assert ODRL_CONTEXT["odrl"] == "http://www.w3.org/ns/odrl/2/"
