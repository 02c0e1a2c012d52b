"""One dataset described for a consumer: its catalog metadata, the JSON Schema of its record
type, and the SHACL shapes that type must satisfy (DescribeDataset)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdflib import BNode, Graph, URIRef

from node.catalog._items import information_items
from node.catalog._stats import dataset_stats
from node.catalog.builder import CHINA_TZ, dataset_iri, find_dataset, sharing_label
from node.errors import StandardError

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.store import Store

__all__ = ["describe_dataset", "record_json_schema", "record_shapes_turtle"]

_SH = "http://www.w3.org/ns/shacl#"
_SLS = "https://w3id.org/shulian/shapes#"


def record_json_schema(record_type: str, standard_dir: str | Path | None = None) -> dict[str, Any]:
    """The record type's JSON Schema: the committed ``schemas/jsonschema/<Type>.schema.json`` for the
    shipped standard, else the one derived from ``standard_dir`` the same way."""
    from node.standard.model import load_standard

    rt = load_standard(standard_dir).record_type(record_type)  # StandardError for an unknown type
    if standard_dir is not None:
        from node.standard.build import json_schema

        return json_schema(rt)
    from node.standard import schemas_dir

    path = schemas_dir() / "jsonschema" / f"{record_type}.schema.json"
    try:
        value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StandardError(f"{path}: cannot read the JSON Schema of {record_type} ({exc}); "
                            "run 'shulian standard build'") from exc
    return value


def record_shapes_turtle(record_type: str, standard_dir: str | Path | None = None) -> str:
    """The SHACL shapes of one record type as Turtle: every shape targeting its class, and
    everything they reach (property shapes, value shapes, SPARQL constraints, lists, prefixes)."""
    from node.standard.model import load_standard

    std = load_standard(standard_dir)
    cls = URIRef(std.record_type(record_type).class_iri)
    source = std.shapes_graph
    out = Graph()
    for prefix, ns in source.namespaces():
        out.bind(prefix, ns, override=True)
    stack: list[Any] = list(source.subjects(URIRef(_SH + "targetClass"), cls))
    seen: set[Any] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for p, o in source.predicate_objects(node):
            out.add((node, p, o))
            if isinstance(o, BNode) or (isinstance(o, URIRef) and str(o).startswith(_SLS)):
                stack.append(o)
    return out.serialize(format="turtle")


def _day(value: dt.datetime | None) -> str | None:
    return value.astimezone(CHINA_TZ).date().isoformat() if value else None


def describe_dataset(cfg: NodeConfig, store: Store | None, dataset_id: str, *, base_url: str | None = None,
                     standard_dir: str | Path | None = None) -> dict[str, Any]:
    """Everything a consumer needs to use one dataset, as JSON-ready values.

    ``dataset_id`` is the configured id or the resource code. Keys: ``id``, ``iri``,
    ``record_type``, ``metadata`` (catalog metadata, publisher, record count, dates),
    ``items`` (信息项), ``json_schema`` and ``shapes_turtle``. Raises :class:`NotFound` for a
    dataset that is not configured.
    """
    from node.standard.codelists import load_vocabulary

    if standard_dir is None:
        standard_dir = cfg.standard
    ds = find_dataset(cfg, dataset_id)
    meta = ds.catalog
    stats = dataset_stats(store, ds.id)
    term = load_vocabulary(standard_dir).get(ds.record_type)
    dept = cfg.department
    return {
        "id": ds.id,
        "iri": dataset_iri(cfg, ds.id, base_url),
        "record_type": ds.record_type,
        "record_type_label": {"zh": term.label_zh if term else "", "en": term.label_en if term else ""},
        "metadata": {
            "resource_code": meta.resource_code,
            "title": {"zh": meta.title_zh, "en": meta.title_en},
            "description": {"zh": meta.description, "en": meta.description_en},
            "publisher": {"name": dept.name, "code": dept.code, "level": dept.level, "division": dept.division},
            "sharing_type": meta.sharing_type,
            "sharing_type_zh": sharing_label(meta.sharing_type),
            "sharing_conditions": meta.sharing_conditions,
            "sharing_basis": meta.sharing_basis,
            "sharing_method": meta.sharing_method if meta.sharing_type != "not_shared" else None,
            "open_to_public": meta.open_to_public,
            "update_cycle": meta.update_cycle,
            "keywords": list(meta.keywords),
            "kafka_publish": ds.kafka_publish,
            "records": stats.records,
            "modified": stats.modified.isoformat() if stats.modified else None,
            "registered": _day(stats.registered),
        },
        "items": [item.to_dict() for item in information_items(ds.record_type, standard_dir)],
        "json_schema": record_json_schema(ds.record_type, standard_dir),
        "shapes_turtle": record_shapes_turtle(ds.record_type, standard_dir),
    }
