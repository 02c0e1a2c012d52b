"""Catalog cases: the catalog is served and conforms to the profile (CAT-01); datasets are described
consistently with it (CAT-02)."""

from __future__ import annotations

import json
import logging
from typing import Any

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from conformance._node import NodeContext
from conformance._registry import case
from conformance.node_cases._support import CallResult, ensure_ready, require_ok, unary

__all__ = ["catalog_served", "dataset_described"]

log = logging.getLogger(__name__)

SL = Namespace("https://w3id.org/shulian/ns#")
SH = Namespace("http://www.w3.org/ns/shacl#")
_SHARING = {"1": "unconditional", "2": "conditional", "3": "not_shared"}
_ROLES = ("unconditional_dataset", "conditional_dataset", "not_shared_dataset", "push_dataset")


def _fetch(ctx: NodeContext, fmt: str) -> CallResult:
    from node._generated.shulian.v1 import catalog_pb2

    code = catalog_pb2.JSON_LD if fmt == "json-ld" else catalog_pb2.TURTLE
    return ctx.shared(f"catalog:{fmt}", lambda: unary(ctx, "/shulian.v1.Catalog/GetCatalog",
                                                      catalog_pb2.GetCatalogRequest(format=code),
                                                      catalog_pb2.GetCatalogResponse))


def _graph(ctx: NodeContext, fmt: str) -> Graph:
    response = require_ok(ctx, _fetch(ctx, fmt))[0]
    try:
        text = bytes(response.content).decode("utf-8")
    except UnicodeDecodeError as exc:
        ctx.fail(f"the {fmt} catalog is not UTF-8 ({exc})")
    try:
        return Graph().parse(data=text, format=fmt)
    except Exception as exc:  # rdflib raises many kinds of parse errors
        ctx.fail(f"the {fmt} catalog does not parse: {type(exc).__name__}: {exc}")


def _datasets(g: Graph) -> set[URIRef]:
    return {s for s in g.subjects(RDF.type, DCAT.Dataset) if isinstance(s, URIRef)}


def catalog_entry(g: Graph, dataset_id: str, iri: str | None = None) -> URIRef | None:
    """The catalog's dcat:Dataset for a dataset id: its IRI as described, its dct:identifier, or an IRI
    ending in ``/<id>``."""
    found = _datasets(g)
    if iri and URIRef(iri) in found:
        return URIRef(iri)
    for ds in sorted(found):
        if Literal(dataset_id) in set(g.objects(ds, DCTERMS.identifier)):
            return ds
    for ds in sorted(found):
        if str(ds).rstrip("/").endswith("/" + dataset_id):
            return ds
    return None


def _fixture_ids(ctx: NodeContext) -> list[str]:
    return [ctx.target.params[k] for k in _ROLES if ctx.target.params.get(k)]


@case("CAT-01")
def catalog_served(ctx: NodeContext) -> None:
    """GetCatalog (Turtle and JSON-LD) answers a catalog that conforms to the catalog profile."""
    from node.catalog.profile import validate_catalog

    ensure_ready(ctx)
    response = require_ok(ctx, _fetch(ctx, "turtle"))[0]
    ctx.check(response.content_type.split(";")[0].strip() == "text/turtle",
              f"GetCatalog(TURTLE) says content_type {response.content_type!r}, expected text/turtle")
    g = _graph(ctx, "turtle")
    datasets = _datasets(g)
    ctx.check(datasets, "the catalog lists no dcat:Dataset")
    ctx.check(any(True for _ in g.subjects(RDF.type, DCAT.Catalog)), "the catalog has no dcat:Catalog")
    report = validate_catalog(g, standard_dir=ctx.standard_dir)
    if not report.conforms:
        shown = "; ".join(f"{v.shape or v.component} at {v.focus}{' ' + v.path if v.path else ''}: {v.message_en}"
                          for v in report.violations[:5])
        ctx.fail(f"the served catalog does not conform to the catalog profile: {len(report.violations)} "
                 f"violation(s): {shown}")
    ctx.note(f"Turtle catalog: {len(datasets)} dataset(s), {len(g)} triples, conforms to the profile")
    jsonld = require_ok(ctx, _fetch(ctx, "json-ld"))[0]
    ctx.check(jsonld.content_type.split(";")[0].strip() == "application/ld+json",
              f"GetCatalog(JSON_LD) says content_type {jsonld.content_type!r}, expected application/ld+json")
    other = _datasets(_graph(ctx, "json-ld"))
    ctx.check(other == datasets, f"the JSON-LD catalog lists other datasets than the Turtle one: "
                                 f"{sorted(str(d) for d in other ^ datasets)[:5]}")
    missing = [i for i in _fixture_ids(ctx) if catalog_entry(g, i) is None]
    ctx.check(not missing, f"the catalog does not list the fixture's dataset(s) {', '.join(missing)}")


def _json_object(ctx: NodeContext, raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(bytes(raw).decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        ctx.fail(f"{what} is not UTF-8 JSON ({exc})")
    ctx.check(isinstance(value, dict), f"{what} is not a JSON object")
    return value  # type: ignore[return-value]


def _compare_metadata(ctx: NodeContext, g: Graph, entry: URIRef, dataset_id: str, meta: dict[str, Any]) -> int:
    """Compare what the description says with the catalog where both say it; returns the facts compared."""
    compared = 0
    nested = meta.get("metadata")
    inner: dict[str, Any] = nested if isinstance(nested, dict) else meta
    sharing = inner.get("sharing_type")
    st = g.value(entry, SL.sharingType)
    if isinstance(sharing, str) and st is not None:
        in_catalog = _SHARING.get(str(st).rsplit("/", 1)[-1])
        ctx.check(in_catalog == sharing, f"dataset {dataset_id}: described as {sharing}, the catalog says "
                                         f"{in_catalog or st}")
        compared += 1
    code = inner.get("resource_code")
    identifiers = {str(o) for o in g.objects(entry, DCTERMS.identifier)}
    if isinstance(code, str) and identifiers:
        ctx.check(code in identifiers, f"dataset {dataset_id}: resource code {code} is not the catalog's "
                                       f"identifier ({', '.join(sorted(identifiers))})")
        compared += 1
    title = inner.get("title")
    zh = title.get("zh") if isinstance(title, dict) else None
    titles = {str(o) for o in g.objects(entry, DCTERMS.title) if isinstance(o, Literal) and o.language == "zh"}
    if isinstance(zh, str) and titles:
        ctx.check(zh in titles, f"dataset {dataset_id}: title {zh!r} differs from the catalog's {sorted(titles)}")
        compared += 1
    return compared


@case("CAT-02")
def dataset_described(ctx: NodeContext) -> None:
    """DescribeDataset answers for the catalog's datasets, consistently with the catalog."""
    from node._generated.shulian.v1 import catalog_pb2

    ensure_ready(ctx)
    g = _graph(ctx, "turtle")
    ids = _fixture_ids(ctx) or [ctx.param("unconditional_dataset")]
    seen: list[str] = []
    for dataset_id in ids:
        r = unary(ctx, "/shulian.v1.Catalog/DescribeDataset", catalog_pb2.DescribeDatasetRequest(dataset=dataset_id),
                  catalog_pb2.DescribeDatasetResponse)
        d = require_ok(ctx, r)[0]
        meta = _json_object(ctx, d.metadata_json, f"dataset {dataset_id}: metadata_json")
        entry = catalog_entry(g, dataset_id, meta.get("iri") if isinstance(meta.get("iri"), str) else None)
        ctx.check(entry is not None, f"dataset {dataset_id} is described but the catalog does not list it")
        assert entry is not None
        rtype = g.value(entry, SL.recordType)
        ctx.check(rtype is not None, f"the catalog gives dataset {dataset_id} no sl:recordType")
        in_catalog = str(rtype).rsplit("#", 1)[-1]
        ctx.check(d.record_type == in_catalog, f"dataset {dataset_id}: described with record type "
                                               f"{d.record_type!r}, the catalog says {in_catalog!r}")
        schema = _json_object(ctx, d.json_schema, f"dataset {dataset_id}: json_schema")
        ctx.check("properties" in schema or "$schema" in schema,
                  f"dataset {dataset_id}: json_schema is not a JSON Schema (no $schema, no properties)")
        try:
            shapes = Graph().parse(data=d.shapes_turtle, format="turtle")
        except Exception as exc:  # rdflib parse errors
            ctx.fail(f"dataset {dataset_id}: shapes_turtle does not parse: {type(exc).__name__}: {exc}")
        ctx.check((None, SH.targetClass, SL[d.record_type]) in shapes,
                  f"dataset {dataset_id}: shapes_turtle has no shape with sh:targetClass sl:{d.record_type}")
        compared = _compare_metadata(ctx, g, entry, dataset_id, meta)
        seen.append(f"{dataset_id}: {d.record_type}, catalog entry {entry}, {compared} metadata fact(s) agree")
    ctx.note(f"{len(ids)} dataset(s) described consistently with the catalog")
    for line in seen:
        ctx.note(line)
