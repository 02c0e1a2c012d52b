"""The node's catalog (DCAT 3 + 政务信息资源目录) and its datasets.

    from node.catalog import build_catalog, describe_dataset, serialize_catalog
    graph = build_catalog(cfg, store)                 # checked against the catalog profile
    text = serialize_catalog(graph, "json-ld")        # or "turtle"
    info = describe_dataset(cfg, store, "population") # metadata, JSON Schema, SHACL shapes

- :mod:`node.catalog.builder`: the catalog graph from the configuration and the store;
- :mod:`node.catalog.profile`: the catalog profile check (``validate_catalog``);
- :mod:`node.catalog.registry`: adding datasets (node.toml and store) and loading records.
"""

from __future__ import annotations

from node.catalog._describe import describe_dataset, record_json_schema, record_shapes_turtle
from node.catalog._items import InformationItem, information_items
from node.catalog._stats import DatasetStats, dataset_stats
from node.catalog.builder import (
    CHINA_TZ,
    JSONLD_CONTEXT,
    CatalogProfileError,
    build_catalog,
    catalog_base,
    dataset_iri,
    find_dataset,
    serialize_catalog,
    sharing_label,
)

__all__ = [
    "build_catalog",
    "serialize_catalog",
    "describe_dataset",
    "CatalogProfileError",
    "JSONLD_CONTEXT",
    "CHINA_TZ",
    "catalog_base",
    "dataset_iri",
    "find_dataset",
    "sharing_label",
    "DatasetStats",
    "dataset_stats",
    "InformationItem",
    "information_items",
    "record_json_schema",
    "record_shapes_turtle",
]
