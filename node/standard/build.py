"""Derived artifacts: the JSON-LD context and one JSON Schema per record type.

Generated from the shapes (``shulian standard build``) and committed under
``schemas/``; ``shulian standard build --check`` fails when they are stale.
The JSON Schemas carry what JSON Schema can say (types, required keys, lengths,
patterns, code lists, closed objects); check characters and cross-field rules
live only in the SHACL-SPARQL constraints and the validators.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rdflib import Literal

from node.standard.model import RECORD_BASE, SL, UNDECLARED_BASE, XSD, RecordType, Rule, Standard, ValueShape

__all__ = ["build_artifacts", "render_artifacts", "stale_artifacts", "SCHEMA_BASE"]

SCHEMA_BASE = "https://w3id.org/shulian/schemas/"
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def context(std: Standard) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "@version": 1.1,
        "@base": RECORD_BASE,
        "@vocab": UNDECLARED_BASE,
        "sl": str(SL),
        "xsd": str(XSD),
        "id": "@id",
        "type": "@type",
    }
    for name, rt in std.types.items():
        ctx[name] = {"@id": f"sl:{rt.class_iri[len(str(SL)):]}"}
    coercions = std.coercions
    for key in sorted(std.keys):
        iri = std.keys[key]
        term = f"sl:{iri[len(str(SL)):]}"
        dt = coercions.get(key)
        if dt is not None:
            ctx[key] = {"@id": term, "@type": f"xsd:{dt[len(str(XSD)):]}"}
        else:
            ctx[key] = {"@id": term}
    return {"@context": ctx}


def _lexicals(items: tuple[Any, ...]) -> list[str]:
    return [str(x) for x in items if isinstance(x, Literal)]


def _value_schema(rules: list[tuple[str, Any]], datatype: str | None) -> dict[str, Any]:
    s: dict[str, Any] = {}
    if datatype == str(XSD.string):
        s["type"] = "string"
    elif datatype == str(XSD.date):
        s["type"] = "string"
        s["format"] = "date"
    elif datatype == str(XSD.decimal):
        s["type"] = ["string", "integer"]
    for kind, param in rules:
        if kind == "MinLength":
            s["minLength"] = param
        elif kind == "MaxLength":
            s["maxLength"] = param
        elif kind == "Pattern":
            s["pattern"] = param
        elif kind == "In":
            s["enum"] = _lexicals(param)
        elif kind == "Datatype" and "type" not in s:
            s.update(_value_schema([], param))
    return s


def _shape_schema(vs: ValueShape) -> dict[str, Any]:
    dt = next((p for k, p in vs.rules if k == "Datatype"), None)
    return _value_schema([(k, p) for k, p in vs.rules if k != "Datatype"], dt)


def _property_schema(rt: RecordType, key: str, rules: list[Rule]) -> dict[str, Any]:
    dt = rt.datatypes.get(key)
    schema = _value_schema([(r.kind, r.param) for r in rules if not r.sparql], dt)
    all_of: list[dict[str, Any]] = []
    for r in rules:
        if r.kind == "Node":
            all_of.append(_shape_schema(r.param))
        elif r.kind == "Or":
            all_of.append({"anyOf": [_shape_schema(s) for s in r.param]})
        elif r.kind == "MinInclusive":
            schema["minimum"] = r.param.toPython() if isinstance(r.param, Literal) else r.param
    if all_of:
        schema["allOf"] = all_of
    msgs = [r.message for r in rules if r.kind not in ("MinCount", "MaxCount")]
    if msgs:
        schema["description"] = f"{msgs[0].zh} / {msgs[0].en}"
    sparql = sorted({r.kind for r in rules if r.sparql})
    if sparql:
        schema["x-shulian-constraints"] = sparql
    return schema


def json_schema(rt: RecordType) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": {"type": "string", "pattern": ID_PATTERN, "description": "记录标识 / record identifier"},
        "type": {"const": rt.name},
    }
    for key in rt.keys:
        props[key] = _property_schema(rt, key, [r for r in rt.rules if r.path == key])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}{rt.name}.schema.json",
        "title": f"{rt.label.zh} / {rt.label.en}",
        "description": f"Generated from the SHACL shape of sl:{rt.name} by `shulian standard build`; do not edit.",
        "type": "object",
        "properties": props,
        "required": ["id", *rt.required],
        "additionalProperties": False,
    }


def render_artifacts(std: Standard) -> dict[str, str]:
    """Relative path under schemas/ -> file content."""
    out = {"context.jsonld": _dump(context(std))}
    for name, rt in std.types.items():
        out[f"jsonschema/{name}.schema.json"] = _dump(json_schema(rt))
    return out


def build_artifacts(std: Standard, schemas_dir: Path) -> list[Path]:
    written = []
    for rel, content in render_artifacts(std).items():
        path = schemas_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            written.append(path)
    return written


def stale_artifacts(std: Standard, schemas_dir: Path) -> list[str]:
    stale = []
    for rel, content in render_artifacts(std).items():
        path = schemas_dir / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(rel)
    return stale
