"""Export the responsibility list as ODRL 2.2 JSON-LD.

The document is self-contained: its ``@context`` is written out inline (the terms
of https://www.w3.org/ns/odrl.jsonld that the export uses, copied with the same
definitions, plus the standard's profile terms), so reading it needs no network.
It carries exactly the triples of the Turtle form (:func:`node.policy.to_graph`),
with each dataset's ``odrl:Set`` nested under ``hasPolicy`` and constraints and
masking rules nested under their permission, the way ODRL's own examples read.
"""

from __future__ import annotations

import json
from typing import Any

from ._ids import (
    ODRL,
    PROFILE_IRI,
    SL,
    dataset_iri,
    dept_iri,
    grant_iri,
    item_iri,
    list_iri,
    policy_iri,
    sharing_type_iri,
)
from ._standard import method_iri
from .masking import MaskMethod, MaskRule
from .model import DatasetPolicy, Grant, ResponsibilityList

__all__ = ["ODRL_CONTEXT", "to_odrl", "to_odrl_json"]

_ID = "@id"
_T = "@type"

#: The inline JSON-LD context (ODRL core terms as defined by odrl.jsonld + the Shulian profile terms).
ODRL_CONTEXT: dict[str, Any] = {
    "odrl": ODRL,
    "sl": SL,
    "dct": "http://purl.org/dc/terms/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    # ODRL 2.2 (definitions as in https://www.w3.org/ns/odrl.jsonld)
    "uid": "@id",
    "type": "@type",
    "Set": "odrl:Set",
    "Permission": "odrl:Permission",
    "Constraint": "odrl:Constraint",
    "profile": {_T: _ID, _ID: "odrl:profile"},
    "permission": {_T: _ID, _ID: "odrl:permission"},
    "hasPolicy": {_T: _ID, _ID: "odrl:hasPolicy"},
    "target": {_T: _ID, _ID: "odrl:target"},
    "partOf": {_T: _ID, _ID: "odrl:partOf"},
    "assignee": {_T: _ID, _ID: "odrl:assignee"},
    "assigner": {_T: _ID, _ID: "odrl:assigner"},
    "action": {_T: "@vocab", _ID: "odrl:action"},
    "use": "odrl:use",
    "constraint": {_T: _ID, _ID: "odrl:constraint"},
    "leftOperand": {_T: "@vocab", _ID: "odrl:leftOperand"},
    "operator": {_T: "@vocab", _ID: "odrl:operator"},
    "rightOperand": "odrl:rightOperand",
    "purpose": "odrl:purpose",
    "dateTime": "odrl:dateTime",
    "isAnyOf": "odrl:isAnyOf",
    "lteq": "odrl:lteq",
    # DCAT / Dublin Core / SKOS
    "Dataset": "dcat:Dataset",
    "identifier": "dct:identifier",
    "title": {_ID: "dct:title", "@language": "zh"},
    "publisher": {_T: _ID, _ID: "dct:publisher"},
    # the standard's profile (https://w3id.org/shulian/profile/policy)
    "ResponsibilityList": "sl:ResponsibilityList",
    "InformationItem": "sl:InformationItem",
    "MaskingRule": "sl:MaskingRule",
    "FullRedaction": "sl:FullRedaction",
    "PartialRedaction": "sl:PartialRedaction",
    "KeyedHash": "sl:KeyedHash",
    "listedDataset": {_T: _ID, _ID: "sl:listedDataset"},
    "sharingType": {_T: _ID, _ID: "sl:sharingType"},
    "sharingCondition": "sl:sharingCondition",
    "sharingMethod": {_T: _ID, _ID: "sl:sharingMethod"},
    "legalBasis": "sl:legalBasis",
    "itemProperty": {_T: _ID, _ID: "sl:itemProperty"},
    "withheldItem": {_T: _ID, _ID: "sl:withheldItem"},
    "masking": {_T: _ID, _ID: "sl:masking"},
    "maskedItem": {_T: _ID, _ID: "sl:maskedItem"},
    "maskMethod": {_T: "@vocab", _ID: "sl:maskMethod"},
    "recordIdMasking": {_T: "@vocab", _ID: "sl:recordIdMasking"},
    "keepFirst": {_T: "xsd:nonNegativeInteger", _ID: "sl:keepFirst"},
    "keepLast": {_T: "xsd:nonNegativeInteger", _ID: "sl:keepLast"},
    "accessRequestId": "sl:accessRequestId",
}

_METHOD_TERM = {
    MaskMethod.REDACT: "FullRedaction",
    MaskMethod.KEEP: "PartialRedaction",
    MaskMethod.HASH: "KeyedHash",
}


def _masking(
    ds: DatasetPolicy, table: tuple[tuple[str, MaskRule], ...], used: set[str], owner: dict[str, Any]
) -> None:
    rules = []
    for key, rule in table:
        if key == "id":
            owner["recordIdMasking"] = _METHOD_TERM[rule.method]
            continue
        used.add(key)
        entry: dict[str, Any] = {
            "type": "MaskingRule",
            "maskedItem": item_iri(ds.dataset_id, key),
            "maskMethod": _METHOD_TERM[rule.method],
        }
        if rule.method is MaskMethod.KEEP:
            entry["keepFirst"] = str(rule.keep_first)
            entry["keepLast"] = str(rule.keep_last)
        rules.append(entry)
    if rules:
        owner["masking"] = rules


def _permission(ds: DatasetPolicy, grant: Grant, provider: str | None, used: set[str]) -> dict[str, Any]:
    constraints: list[dict[str, Any]] = [
        {
            "type": "Constraint",
            "leftOperand": "purpose",
            "operator": "isAnyOf",
            "rightOperand": list(grant.purposes),
        }
    ]
    if grant.until is not None:
        constraints.append(
            {
                "type": "Constraint",
                "leftOperand": "dateTime",
                "operator": "lteq",
                "rightOperand": {"@value": grant.until.isoformat(), _T: "xsd:date"},
            }
        )
    used.update(grant.items)
    perm: dict[str, Any] = {
        "uid": grant_iri(ds.dataset_id, grant.grant_id),
        "type": "Permission",
        "identifier": grant.grant_id,
        "assignee": dept_iri(grant.consumer_code),
    }
    if provider:
        perm["assigner"] = dept_iri(provider)
    perm["action"] = "use"
    perm["target"] = [item_iri(ds.dataset_id, k) for k in grant.items]
    perm["constraint"] = constraints
    _masking(ds, grant.masking, used, perm)
    if grant.basis:
        perm["legalBasis"] = grant.basis
    if grant.request_id:
        perm["accessRequestId"] = grant.request_id
    return perm


def _dataset(ds: DatasetPolicy, provider: str | None) -> tuple[dict[str, Any], set[str]]:
    used: set[str] = set(ds.items) | set(ds.withheld)
    node: dict[str, Any] = {"uid": dataset_iri(ds.dataset_id), "type": "Dataset", "identifier": ds.dataset_id}
    if ds.title:
        node["title"] = ds.title
    node["sharingType"] = sharing_type_iri(ds.sharing_type.value)
    for term, values in (("sharingCondition", ds.conditions), ("legalBasis", ds.basis)):
        if values:
            node[term] = list(values)
    if ds.methods:
        node["sharingMethod"] = [method_iri(m) for m in ds.methods]
    if ds.withheld:
        node["withheldItem"] = [item_iri(ds.dataset_id, k) for k in ds.withheld]
    _masking(ds, ds.masking, used, node)
    if ds.grants:
        node["hasPolicy"] = {
            "uid": policy_iri(ds.dataset_id),
            "type": "Set",
            "profile": PROFILE_IRI,
            "permission": [_permission(ds, g, provider, used) for g in ds.grants],
        }
    return node, used


def _item_node(ds: DatasetPolicy, key: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "uid": item_iri(ds.dataset_id, key),
        "type": "InformationItem",
        "itemProperty": f"sl:{key}",
        "partOf": dataset_iri(ds.dataset_id),
    }
    label = dict(ds.item_labels).get(key)
    if label:
        node["title"] = label
    return node


def to_odrl(lst: ResponsibilityList) -> dict[str, Any]:
    """The list as one JSON-LD document (a dict ready for ``json.dumps``)."""
    root: dict[str, Any] = {"uid": list_iri(lst.provider_code), "type": "ResponsibilityList"}
    if lst.title:
        root["title"] = lst.title
    if lst.provider_code:
        root["publisher"] = dept_iri(lst.provider_code)
    root["listedDataset"] = [dataset_iri(d.dataset_id) for d in lst.datasets]
    graph: list[dict[str, Any]] = [root]
    for ds in lst.datasets:
        node, used = _dataset(ds, lst.provider_code)
        graph.append(node)
        graph.extend(_item_node(ds, k) for k in sorted(used))
    return {"@context": ODRL_CONTEXT, "@graph": graph}


def to_odrl_json(lst: ResponsibilityList, indent: int | None = 2) -> str:
    return json.dumps(to_odrl(lst), ensure_ascii=False, indent=indent) + "\n"
