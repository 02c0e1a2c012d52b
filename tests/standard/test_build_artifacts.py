"""schemas/ is derived from the shapes: not stale, and the context means what the validators do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

from node.standard._paths import ontology_dir, schemas_dir
from node.standard.build import render_artifacts, stale_artifacts
from node.standard.model import load_standard
from node.validation._terms import record_triples

EXAMPLES = ontology_dir() / "examples"


def test_committed_schemas_are_up_to_date() -> None:
    assert stale_artifacts(load_standard(), schemas_dir()) == []


def test_stale_schemas_are_detected(tmp_path: Path) -> None:
    std = load_standard()
    for rel, content in render_artifacts(std).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content, encoding="utf-8")
    assert stale_artifacts(std, tmp_path) == []
    p = tmp_path / "jsonschema" / "Person.schema.json"
    p.write_text(p.read_text(encoding="utf-8").replace('"maxLength": 50', '"maxLength": 51'), encoding="utf-8")
    assert stale_artifacts(std, tmp_path) == ["jsonschema/Person.schema.json"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/valid/*.json")), ids=lambda p: f"{p.parent.parent.name}-{p.stem}")
def test_context_gives_the_validators_triples(path: Path) -> None:
    """A JSON-LD processor reading a record with schemas/context.jsonld gets our triples."""
    std = load_standard()
    record = json.loads(path.read_text(encoding="utf-8"))
    rtype = path.parent.parent.name
    rt = std.types[rtype]
    ctx = json.loads((schemas_dir() / "context.jsonld").read_text(encoding="utf-8"))
    doc = {**ctx, **record, "type": rtype}
    g_ld = Graph().parse(data=json.dumps(doc), format="json-ld")
    ours = Graph()
    _s, triples = record_triples(record, rt, std.keys, std.coercions)
    for t in triples:
        ours.add(t)
    # rdflib's JSON-LD parser types plain strings as simple literals; compare as RDF 1.1 does
    assert isomorphic(_plain(g_ld), _plain(ours))


def _plain(g: Graph) -> Graph:
    from rdflib import XSD, Literal

    out = Graph()
    for s, p, o in g:
        if isinstance(o, Literal) and o.datatype == XSD.string:
            o = Literal(str(o))
        out.add((s, p, o))
    return out


def test_json_schema_agrees_on_examples(full_standard: Path) -> None:
    """The generated JSON Schema accepts every valid example (it cannot check check characters)."""
    from jsonschema import Draft202012Validator, FormatChecker

    std = load_standard(full_standard)
    from node.standard.build import json_schema

    for path in sorted(EXAMPLES.glob("*/valid/*.json")):
        rt = std.types[path.parent.parent.name]
        validator = Draft202012Validator(json_schema(rt), format_checker=FormatChecker())
        errors = list(validator.iter_errors(json.loads(path.read_text(encoding="utf-8"))))
        assert errors == [], (path, errors)
