"""Catalog over gRPC: the node's DCAT catalog (Turtle and JSON-LD) and one dataset's description."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc_testkit as kit
import pytest
from rdflib import Graph
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, RDF

from node.catalog.profile import validate_catalog
from node.errors import NotFound

pytestmark = pytest.mark.integration


def _ask(fed: kit.Federation, body: Any) -> Any:
    async def main() -> Any:
        async with kit.InProcessNode(fed.provider.config()) as node:
            async with kit.client_for(fed.nodes["consumer"], node.address) as client:
                return await body(client)

    return asyncio.run(main())


def test_catalog_in_turtle_and_json_ld(fed: kit.Federation, tmp_path: Any) -> None:
    async def body(client: Any) -> tuple[str, str]:
        return await client.get_catalog("turtle"), await client.get_catalog("json-ld")

    turtle, jsonld = _ask(fed, body)
    g1 = Graph().parse(data=turtle, format="turtle")
    g2 = Graph().parse(data=jsonld, format="json-ld")
    assert isomorphic(g1, g2)
    assert len(list(g1.subjects(RDF.type, DCAT.Catalog))) == 1
    assert len(list(g1.subjects(RDF.type, DCAT.Dataset))) == 4
    path = tmp_path / "catalog.ttl"
    path.write_text(turtle, encoding="utf-8")
    assert validate_catalog(path).conforms


def test_describe_dataset(fed: kit.Federation) -> None:
    async def body(client: Any) -> Any:
        described = await client.describe_dataset("population")
        with pytest.raises(NotFound):
            await client.describe_dataset("nope")
        return described

    d = _ask(fed, body)
    assert d["dataset"] == "population" and d["record_type"] == "Person"
    assert d["metadata"]["metadata"]["sharing_type"] == "conditional"
    assert d["json_schema"]["title"] and "identityNumber" in d["json_schema"]["properties"]
    assert "PersonShape" in d["shapes"]
    Graph().parse(data=d["shapes"], format="turtle")
