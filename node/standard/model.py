"""The record standard as a Python model, read once from the SHACL shapes.

Both validation engines, the JSON-LD context and the JSON Schemas are derived
from this model, so the shapes in ``ontology/shapes/`` stay the single source
of truth. Only the SHACL features the standard uses are understood; anything
else makes :func:`load_standard` fail loudly (a fast validator that silently
ignored a constraint would disagree with the reference engine).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

from node.errors import StandardError
from node.standard._paths import ontology_dir

__all__ = [
    "SH",
    "SL",
    "SLS",
    "XSD",
    "RECORD_BASE",
    "UNDECLARED_BASE",
    "RECORD_SHAPE_FILES",
    "Message",
    "Rule",
    "ValueShape",
    "RecordType",
    "Standard",
    "load_standard",
]

log = logging.getLogger(__name__)

SH = Namespace("http://www.w3.org/ns/shacl#")
SL = Namespace("https://w3id.org/shulian/ns#")
SLS = Namespace("https://w3id.org/shulian/shapes#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")

RECORD_BASE = "https://w3id.org/shulian/record/"
UNDECLARED_BASE = "https://w3id.org/shulian/undeclared/"

# the shape files that make up the record standard (catalog and policy shapes are separate profiles)
RECORD_SHAPE_FILES = ("shapes/records.ttl", "shapes/divisions.ttl")

# value-level constraint components the compilers understand
_VALUE_KINDS = ("Datatype", "NodeKind", "MinLength", "MaxLength", "Pattern", "In")


@dataclass(frozen=True)
class Message:
    zh: str
    en: str


@dataclass(frozen=True)
class ValueShape:
    """A node shape applied to one value node (sh:node / sh:or members)."""

    iri: str
    rules: tuple[tuple[str, Any], ...]  # (kind, parameter), kinds from _VALUE_KINDS


@dataclass(frozen=True)
class Rule:
    """One constraint component instance of one shape.

    ``path`` is the JSON key the rule constrains, or ``None`` for a rule on
    the record node itself (reported with path ``"id"``). ``kind`` is the
    constraint name used in reports: the SHACL Core component name without
    ``ConstraintComponent`` (``MinCount``, ``Pattern`` ...) or, for a
    SHACL-SPARQL constraint, the local name of the constraint (``GB11643Check``).
    """

    shape: str
    path: str | None
    kind: str
    param: Any
    severity: str
    message: Message
    sparql: bool = False

    @property
    def report_path(self) -> str:
        return self.path if self.path is not None else "id"


@dataclass(frozen=True)
class RecordType:
    name: str
    class_iri: str
    label: Message
    keys: dict[str, str]  # JSON key -> property IRI
    datatypes: dict[str, str]  # JSON key -> datatype IRI (from sh:datatype)
    rules: tuple[Rule, ...]
    closed: bool
    required: tuple[str, ...]

    def rules_for(self, key: str | None) -> list[Rule]:
        return [r for r in self.rules if r.path == key]


@dataclass(frozen=True)
class Standard:
    directory: Path
    version: str
    types: dict[str, RecordType]
    shapes_graph: Graph = field(repr=False, compare=False)
    #: SHA-256 (hex) over the record shape files (RECORD_SHAPE_FILES): what records are validated against
    digest: str = ""

    def record_type(self, name: str) -> RecordType:
        try:
            return self.types[name]
        except KeyError:
            known = ", ".join(sorted(self.types))
            raise StandardError(f"unknown record type {name!r}; the standard defines: {known}") from None

    @property
    def keys(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for rt in self.types.values():
            out.update(rt.keys)
        return out

    @property
    def coercions(self) -> dict[str, str]:
        """The context's type coercions: every non-string datatype (``xsd:date``, ``xsd:decimal``).

        Strings are not coerced, so a JSON number where a code is expected stays a
        number and breaks ``sh:datatype xsd:string``.
        """
        return {k: dt for k, dt in self.datatypes.items() if dt != str(XSD.string)}

    @property
    def datatypes(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for rt in self.types.values():
            for k, dt in rt.datatypes.items():
                if out.get(k, dt) != dt:
                    raise StandardError(f"property {k!r} has conflicting datatypes {out[k]} and {dt}")
                out[k] = dt
        return out


def _local(iri: str) -> str:
    for sep in ("#", "/"):
        if sep in iri:
            iri = iri.rsplit(sep, 1)[1]
    return iri


def _messages(g: Graph, node: Any) -> Message | None:
    zh = en = None
    for m in g.objects(node, SH.message):
        if isinstance(m, Literal):
            if m.language == "zh":
                zh = str(m)
            elif m.language == "en":
                en = str(m)
    if zh is None and en is None:
        return None
    return Message(zh or en or "", en or zh or "")


def _severity(g: Graph, shape: Any) -> str:
    sev = g.value(shape, SH.severity)
    return _local(str(sev)) if sev is not None else "Violation"


def _one(g: Graph, node: Any, pred: URIRef) -> Any:
    vals = list(g.objects(node, pred))
    if len(vals) > 1:
        raise StandardError(f"shape {node} has {len(vals)} values for {pred}; the standard allows one")
    return vals[0] if vals else None


def _value_rules(g: Graph, shape: Any, where: str) -> list[tuple[str, Any]]:
    rules: list[tuple[str, Any]] = []
    dt = _one(g, shape, SH.datatype)
    if dt is not None:
        rules.append(("Datatype", str(dt)))
    nk = _one(g, shape, SH.nodeKind)
    if nk is not None:
        rules.append(("NodeKind", _local(str(nk))))
    for pred, kind in ((SH.minLength, "MinLength"), (SH.maxLength, "MaxLength")):
        v = _one(g, shape, pred)
        if v is not None:
            rules.append((kind, int(v)))
    pat = _one(g, shape, SH.pattern)
    if pat is not None:
        if _one(g, shape, SH.flags) is not None:
            raise StandardError(f"{where}: sh:flags is not used by the standard")
        rules.append(("Pattern", str(pat)))
    lst = _one(g, shape, SH["in"])
    if lst is not None:
        rules.append(("In", tuple(Collection(g, lst))))
    return rules


_KNOWN_PREDICATES = {
    RDF.type, RDFS.label, RDFS.comment, SH.message, SH.severity, SH.path, SH.datatype, SH.nodeKind,
    SH.minLength, SH.maxLength, SH.pattern, SH["in"], SH.minCount, SH.maxCount, SH.node, SH["or"],
    SH.lessThan, SH.minInclusive, SH.sparql, SH.targetClass, SH.closed, SH.ignoredProperties, SH.property,
    SH.name, SH.description, SH.order, SH.group, SH.deactivated,
}


def _check_known(g: Graph, shape: Any) -> None:
    for p in set(g.predicates(shape, None)):
        if p not in _KNOWN_PREDICATES:
            raise StandardError(
                f"shape {shape} uses {p}, which the fast validator does not implement; "
                "add it to node/standard/model.py and node/validation before using it"
            )


def _value_shape(g: Graph, node: Any) -> ValueShape:
    _check_known(g, node)
    rules = _value_rules(g, node, str(node))
    for p in (SH.property, SH.node, SH["or"], SH.sparql, SH.minCount, SH.maxCount):
        if (node, p, None) in g:
            raise StandardError(f"value shape {node} may only use {', '.join(_VALUE_KINDS)}")
    return ValueShape(str(node), tuple(rules))


def _sparql_rule(g: Graph, shape: Any, path: str | None, severity: str, fallback: Message | None) -> Rule:
    constraint = None
    for c in g.objects(shape, SH.sparql):
        if constraint is not None:
            raise StandardError(f"shape {shape} has more than one sh:sparql; give each its own shape")
        constraint = c
    if not isinstance(constraint, URIRef):
        raise StandardError(f"the SPARQL constraint of {shape} must be a named node (its name is the report's constraint)")
    query = g.value(constraint, SH.select)
    if query is None:
        raise StandardError(f"SPARQL constraint {constraint} has no sh:select")
    msg = _messages(g, constraint) or fallback
    if msg is None:
        raise StandardError(f"SPARQL constraint {constraint} has no sh:message")
    return Rule(str(shape), path, _local(str(constraint)), str(query), severity, msg, sparql=True)


def _shape_rules(g: Graph, shape: Any, path: str | None, keys: dict[str, str]) -> list[Rule]:
    """All rules of one (node or property) shape."""
    _check_known(g, shape)
    severity = _severity(g, shape)
    msg = _messages(g, shape)
    rules: list[Rule] = []

    def add(kind: str, param: Any) -> None:
        if msg is None:
            raise StandardError(f"shape {shape} has no sh:message in zh and en")
        rules.append(Rule(str(shape), path, kind, param, severity, msg))

    for kind, param in _value_rules(g, shape, str(shape)):
        add(kind, param)
    for pred, kind in ((SH.minCount, "MinCount"), (SH.maxCount, "MaxCount")):
        v = _one(g, shape, pred)
        if v is not None:
            add(kind, int(v))
    node = _one(g, shape, SH.node)
    if node is not None:
        add("Node", _value_shape(g, node))
    ors = _one(g, shape, SH["or"])
    if ors is not None:
        add("Or", tuple(_value_shape(g, m) for m in Collection(g, ors)))
    lt = _one(g, shape, SH.lessThan)
    if lt is not None:
        other = _key_for(str(lt), keys, shape)
        add("LessThan", other)
    mi = _one(g, shape, SH.minInclusive)
    if mi is not None:
        add("MinInclusive", mi)
    if (shape, SH.sparql, None) in g:
        rules.append(_sparql_rule(g, shape, path, severity, msg))
    return rules


def _key_for(prop: str, keys: dict[str, str], shape: Any) -> str:
    if not prop.startswith(str(SL)):
        raise StandardError(f"shape {shape}: property {prop} is not in the sl: namespace")
    key = prop[len(str(SL)):]
    keys[key] = prop
    return key


def _label(g: Graph, node: Any) -> Message:
    zh = en = ""
    for lab in g.objects(node, RDFS.label):
        if isinstance(lab, Literal) and lab.language == "zh":
            zh = str(lab)
        elif isinstance(lab, Literal) and lab.language == "en":
            en = str(lab)
    return Message(zh, en)


def _build_type(g: Graph, node_shape: Any, cls: URIRef, extra_node_shapes: list[Any]) -> RecordType:
    keys: dict[str, str] = {}
    rules: list[Rule] = []
    for ns in [*extra_node_shapes, node_shape]:
        rules.extend(_shape_rules(g, ns, None, keys) if ns != node_shape else [])
    # property shapes of the type's own node shape
    for ps in sorted(g.objects(node_shape, SH.property), key=str):
        path = _one(g, ps, SH.path)
        if not isinstance(path, URIRef):
            raise StandardError(f"property shape {ps} needs a simple sh:path (an IRI)")
        key = _key_for(str(path), keys, ps)
        rules.extend(_shape_rules(g, ps, key, keys))
    _check_known(g, node_shape)
    closed = bool(_one(g, node_shape, SH.closed))
    msg = _messages(g, node_shape)
    if closed:
        if msg is None:
            raise StandardError(f"closed shape {node_shape} needs a sh:message")
        ignored = _one(g, node_shape, SH.ignoredProperties)
        ignored_list = [str(x) for x in Collection(g, ignored)] if ignored is not None else []
        if ignored_list != [str(RDF.type)]:
            raise StandardError(f"{node_shape}: sh:ignoredProperties must be exactly (rdf:type)")
        rules.append(Rule(str(node_shape), None, "Closed", frozenset(keys), _severity(g, node_shape), msg))
    for kind, _param in _value_rules(g, node_shape, str(node_shape)):
        raise StandardError(f"{node_shape}: put {kind} on a separate targeted shape (like sls:RecordIdShape)")
    datatypes: dict[str, str] = {}
    required: list[str] = []
    for r in rules:
        if r.path is not None and r.kind == "Datatype":
            datatypes[r.path] = r.param
        if r.path is not None and r.kind == "MinCount" and r.param >= 1:
            required.append(r.path)
    name = _local(str(cls))
    return RecordType(
        name=name,
        class_iri=str(cls),
        label=_label(g, node_shape),
        keys=dict(sorted(keys.items())),
        datatypes=datatypes,
        rules=tuple(rules),
        closed=closed,
        required=tuple(dict.fromkeys(required)),
    )


def _parse(directory: Path) -> tuple[Graph, str]:
    g = Graph()
    digest = hashlib.sha256()
    for rel in RECORD_SHAPE_FILES:
        path = directory / rel
        if not path.is_file():
            raise StandardError(f"{path}: missing; the record standard needs {', '.join(RECORD_SHAPE_FILES)}")
        data = path.read_bytes()
        digest.update(b"%s\x00%d\x00" % (rel.encode(), len(data)))
        digest.update(data)
        try:
            g.parse(data=data, format="turtle", publicID=path.as_uri())
        except Exception as exc:  # rdflib raises many kinds of parser errors
            raise StandardError(f"{path}: not valid Turtle: {exc}") from exc
    return g, digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _load(directory: Path) -> Standard:
    g, digest = _parse(directory)
    types: dict[str, RecordType] = {}
    # node shapes with one target class each are record types; shapes targeting several
    # classes (the record identifier) apply to each of them.
    shared: dict[URIRef, list[Any]] = {}
    own: dict[URIRef, Any] = {}
    for shape in g.subjects(RDF.type, SH.NodeShape):
        targets = [t for t in g.objects(shape, SH.targetClass) if isinstance(t, URIRef)]
        if len(targets) == 1 and (shape, SH.property, None) in g:
            own[targets[0]] = shape
        else:
            for t in targets:
                shared.setdefault(t, []).append(shape)
    for cls, shape in own.items():
        rt = _build_type(g, shape, cls, sorted(shared.get(cls, []), key=str))
        types[rt.name] = rt
    if not types:
        raise StandardError(f"{directory}: no record types found in the shapes")
    version = str(g.value(URIRef(str(SLS)), URIRef("http://www.w3.org/2002/07/owl#versionInfo")) or "0")
    return Standard(directory=directory, version=version, types=dict(sorted(types.items())), shapes_graph=g,
                    digest=digest)


def load_standard(directory: str | Path | None = None) -> Standard:
    """Load (once, cached) the record standard from ``directory`` (default: the shipped ontology)."""
    d = Path(directory).resolve() if directory is not None else ontology_dir().resolve()
    return _load(d)
