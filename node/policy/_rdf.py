"""The responsibility list as RDF: the standard's terms plus ODRL 2.2 for grants.

Shape of the graph (see ontology/vocab/policy.ttl and ontology/shapes/policy.ttl)::

    <list>  a sl:ResponsibilityList ; dct:publisher <dept> ; sl:listedDataset <ds> .
    <ds>    a dcat:Dataset ; dct:identifier "101/000001" ; dct:title "..."@zh ;
            sl:sharingType <https://w3id.org/shulian/code/sharing-type/2> ;
            sl:sharingCondition "..." ; sl:sharingMethod <.../code/sharing-method/interface> ;
            sl:legalBasis "..." ; sl:withheldItem <item> ; sl:masking [...] ; odrl:hasPolicy <ds/policy> .
    <item>  a sl:InformationItem ; sl:itemProperty sl:identityNumber ; odrl:partOf <ds> ; dct:title "身份证号"@zh .
    <ds/policy> a odrl:Set ; odrl:profile <https://w3id.org/shulian/profile/policy> ; odrl:permission <grant> .
    <grant> a odrl:Permission ; dct:identifier "..." ; odrl:assignee <dept> ; odrl:target <item> ;
            odrl:action odrl:use ;
            odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ; odrl:rightOperand "..." ] ,
                            [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lteq ; odrl:rightOperand "2026-12-31"^^xsd:date ] ;
            sl:masking [ a sl:MaskingRule ; sl:maskedItem <item> ; sl:maskMethod sl:PartialRedaction ;
                         sl:keepFirst 6 ; sl:keepLast 4 ] ;
            sl:recordIdMasking sl:KeyedHash ;   # only when the grant hashes the record id
            sl:legalBasis "..." ; sl:accessRequestId "..." .

Items, sharing types and methods, condition and basis are the core vocabulary's terms
(ontology/vocab/core.ttl); ODRL carries the grants; ontology/vocab/policy.ttl adds the rest.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, XSD
from rdflib.term import Node

from node.errors import InputError

from ._ids import (
    ODRL,
    PROFILE_IRI,
    SL,
    dataset_id_from_iri,
    dataset_iri,
    dept_iri,
    grant_iri,
    item_iri,
    list_iri,
    policy_iri,
    sharing_type_iri,
)
from ._standard import method_from_iri, method_iri
from .masking import MaskMethod, MaskRule
from .model import DatasetPolicy, Grant, ResponsibilityList, SharingType

__all__ = [
    "to_graph",
    "from_graph",
    "to_turtle",
    "from_turtle",
    "parse_turtle",
    "read_graph",
    "load_list",
    "dump_list",
    "bind_prefixes",
]

log = logging.getLogger(__name__)

SLNS = Namespace(SL)
ODRLNS = Namespace(ODRL)
_METHOD_IRI = {
    MaskMethod.REDACT: SLNS.FullRedaction,
    MaskMethod.KEEP: SLNS.PartialRedaction,
    MaskMethod.HASH: SLNS.KeyedHash,
}
_IRI_METHOD = {v: k for k, v in _METHOD_IRI.items()}
_DEPT_PREFIX = dept_iri("")
_TYPE_PREFIX = sharing_type_iri("")


def bind_prefixes(g: Graph) -> Graph:
    g.bind("sl", SLNS)
    g.bind("odrl", ODRLNS)
    g.bind("dct", DCTERMS)
    g.bind("dcat", DCAT)
    g.bind("method", Namespace(method_iri("")))
    g.bind("xsd", XSD)
    g.bind("sharing", Namespace(_TYPE_PREFIX))
    g.bind("dept", Namespace(_DEPT_PREFIX))
    return g


# ---------------------------------------------------------------- model -> graph


def to_graph(lst: ResponsibilityList) -> Graph:
    g = bind_prefixes(Graph())
    root = URIRef(list_iri(lst.provider_code))
    g.add((root, RDF.type, SLNS.ResponsibilityList))
    if lst.title:
        g.add((root, DCTERMS.title, Literal(lst.title, lang="zh")))
    provider = URIRef(dept_iri(lst.provider_code)) if lst.provider_code else None
    if provider is not None:
        g.add((root, DCTERMS.publisher, provider))
    for ds in lst.datasets:
        g.add((root, SLNS.listedDataset, URIRef(dataset_iri(ds.dataset_id))))
        _add_dataset(g, ds, provider)
    return g


def _item(g: Graph, ds: DatasetPolicy, key: str) -> URIRef:
    node = URIRef(item_iri(ds.dataset_id, key))
    if (node, RDF.type, SLNS.InformationItem) not in g:
        g.add((node, RDF.type, SLNS.InformationItem))
        g.add((node, SLNS.itemProperty, SLNS[key]))
        g.add((node, ODRLNS.partOf, URIRef(dataset_iri(ds.dataset_id))))
        label = dict(ds.item_labels).get(key)
        if label:
            g.add((node, DCTERMS.title, Literal(label, lang="zh")))
    return node


def _add_masking(g: Graph, owner: Node, ds: DatasetPolicy, table: tuple[tuple[str, MaskRule], ...]) -> None:
    for key, rule in table:
        if key == "id":  # the record id is not an information item: a flag on the owner
            g.add((owner, SLNS.recordIdMasking, _METHOD_IRI[rule.method]))
            continue
        m = BNode()
        g.add((owner, SLNS.masking, m))
        g.add((m, RDF.type, SLNS.MaskingRule))
        g.add((m, SLNS.maskedItem, _item(g, ds, key)))
        g.add((m, SLNS.maskMethod, _METHOD_IRI[rule.method]))
        if rule.method is MaskMethod.KEEP:
            g.add((m, SLNS.keepFirst, Literal(rule.keep_first, datatype=XSD.nonNegativeInteger)))
            g.add((m, SLNS.keepLast, Literal(rule.keep_last, datatype=XSD.nonNegativeInteger)))


def _add_dataset(g: Graph, ds: DatasetPolicy, provider: URIRef | None) -> None:
    node = URIRef(dataset_iri(ds.dataset_id))
    g.add((node, RDF.type, DCAT.Dataset))
    g.add((node, DCTERMS.identifier, Literal(ds.dataset_id)))
    if ds.title:
        g.add((node, DCTERMS.title, Literal(ds.title, lang="zh")))
    g.add((node, SLNS.sharingType, URIRef(sharing_type_iri(ds.sharing_type.value))))
    for text in ds.conditions:
        g.add((node, SLNS.sharingCondition, Literal(text)))
    for notation in ds.methods:
        g.add((node, SLNS.sharingMethod, URIRef(method_iri(notation))))
    for text in ds.basis:
        g.add((node, SLNS.legalBasis, Literal(text)))
    for key in ds.items:
        _item(g, ds, key)
    for key in ds.withheld:
        g.add((node, SLNS.withheldItem, _item(g, ds, key)))
    _add_masking(g, node, ds, ds.masking)
    if not ds.grants:
        return
    policy = URIRef(policy_iri(ds.dataset_id))
    g.add((node, ODRLNS.hasPolicy, policy))
    g.add((policy, RDF.type, ODRLNS.Set))
    g.add((policy, ODRLNS.profile, URIRef(PROFILE_IRI)))
    for grant in ds.grants:
        _add_grant(g, ds, policy, grant, provider)


def _add_grant(g: Graph, ds: DatasetPolicy, policy: URIRef, grant: Grant, provider: URIRef | None) -> None:
    perm = URIRef(grant_iri(ds.dataset_id, grant.grant_id))
    g.add((policy, ODRLNS.permission, perm))
    g.add((perm, RDF.type, ODRLNS.Permission))
    g.add((perm, DCTERMS.identifier, Literal(grant.grant_id)))
    g.add((perm, ODRLNS.assignee, URIRef(dept_iri(grant.consumer_code))))
    if provider is not None:
        g.add((perm, ODRLNS.assigner, provider))
    g.add((perm, ODRLNS.action, ODRLNS.use))
    for key in grant.items:
        g.add((perm, ODRLNS.target, _item(g, ds, key)))
    purpose = BNode()
    g.add((perm, ODRLNS.constraint, purpose))
    g.add((purpose, RDF.type, ODRLNS.Constraint))
    g.add((purpose, ODRLNS.leftOperand, ODRLNS.purpose))
    g.add((purpose, ODRLNS.operator, ODRLNS.isAnyOf))
    for text in grant.purposes:
        g.add((purpose, ODRLNS.rightOperand, Literal(text)))
    if grant.until is not None:
        until = BNode()
        g.add((perm, ODRLNS.constraint, until))
        g.add((until, RDF.type, ODRLNS.Constraint))
        g.add((until, ODRLNS.leftOperand, ODRLNS.dateTime))
        g.add((until, ODRLNS.operator, ODRLNS.lteq))
        g.add((until, ODRLNS.rightOperand, Literal(grant.until.isoformat(), datatype=XSD.date)))
    _add_masking(g, perm, ds, grant.masking)
    if grant.basis:
        g.add((perm, SLNS.legalBasis, Literal(grant.basis)))
    if grant.request_id:
        g.add((perm, SLNS.accessRequestId, Literal(grant.request_id)))


_RANK: dict[Node, int] = {
    SLNS.ResponsibilityList: 0,
    DCAT.Dataset: 1,
    ODRLNS.Set: 2,
    ODRLNS.Permission: 3,
    SLNS.InformationItem: 4,
}


def _subject_key(g: Graph, subject: URIRef) -> tuple[str, int, str]:
    text = str(subject)
    rank = min((_RANK.get(t, 9) for t in g.objects(subject, RDF.type)), default=9)
    if rank == 0:
        return ("", 0, text)
    head, sep, _rest = text.partition("/dataset/")
    group = head + sep + _rest.split("/", 1)[0] if sep else text
    return (group, rank, text)


def _term(g: Graph, node: Node, indent: str) -> str:
    """One object; a blank node is written nested, its predicates one level deeper than ``indent``."""
    if isinstance(node, BNode):
        lines = _predicate_lines(g, node, indent + "    ")
        return "[\n" + " ;\n".join(lines) + "\n" + indent + "]"
    return node.n3(g.namespace_manager)


def _predicate_lines(g: Graph, subject: Node, indent: str) -> list[str]:
    def pred_key(p: Node) -> tuple[int, str]:
        return (0, "") if p == RDF.type else (1, p.n3(g.namespace_manager))

    lines = []
    inner = indent + "    "
    for pred in sorted(set(g.predicates(subject, None)), key=pred_key):
        name = "a" if pred == RDF.type else pred.n3(g.namespace_manager)
        objects = sorted(_term(g, o, inner) for o in g.objects(subject, pred))
        if len(objects) > 1 or objects[0].startswith("["):
            lines.append(f"{indent}{name}\n{inner}" + (" ,\n" + inner).join(objects))
        else:
            lines.append(f"{indent}{name} {objects[0]}")
    return lines


def graph_to_turtle(g: Graph) -> str:
    """Deterministic Turtle: prefixes, then the list, then per dataset its node, policy, grants
    and items; predicates and objects sorted; blank nodes nested. Same graph, same text."""
    for bnode in set(o for o in g.objects() if isinstance(o, BNode)):
        if len(list(g.subject_predicates(bnode))) != 1:  # not a tree: let rdflib write it
            return g.serialize(format="turtle")
    out = [f"@prefix {p}: <{ns}> ." for p, ns in sorted(g.namespace_manager.namespaces()) if p in _PREFIXES]
    subjects = sorted({s for s in g.subjects() if isinstance(s, URIRef)}, key=lambda s: _subject_key(g, s))
    for subject in subjects:
        lines = _predicate_lines(g, subject, "    ")
        out.append("\n" + subject.n3(g.namespace_manager) + "\n" + " ;\n".join(lines) + " .")
    return "\n".join(out) + "\n"


_PREFIXES = {"sl", "odrl", "dct", "dcat", "xsd", "sharing", "method", "dept"}


def to_turtle(lst: ResponsibilityList) -> str:
    header = (
        "# 共享责任清单 (responsibility list), written by shulian; edit with `shulian list grant/revoke`.\n"
    )
    return header + graph_to_turtle(to_graph(lst))


def dump_list(lst: ResponsibilityList, path: Path) -> None:
    """Write the list as Turtle (atomically: a temporary file renamed over the target)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(to_turtle(lst), encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------- graph -> model


def _texts(g: Graph, node: Node, prop: URIRef) -> list[str]:
    return [str(o) for o in g.objects(node, prop) if isinstance(o, Literal)]


def _one_text(g: Graph, node: Node, prop: URIRef) -> str | None:
    values = _texts(g, node, prop)
    return values[0] if values else None


def _key_of(g: Graph, item: Node, where: str) -> str:
    prop = g.value(item, SLNS.itemProperty)
    if not isinstance(prop, URIRef) or not str(prop).startswith(SL):
        raise InputError(f"{where}: item {item} has no sl:itemProperty (the sl: record property it is)")
    return str(prop)[len(SL) :]


def _count(node: Node | None) -> int:
    if node is None:
        return 0
    if not isinstance(node, Literal):
        raise ValueError(f"{node} is not a number")
    return int(str(node))


def _masking(g: Graph, owner: Node, where: str) -> dict[str, MaskRule]:
    out: dict[str, MaskRule] = {}
    for m in g.objects(owner, SLNS.masking):
        item = g.value(m, SLNS.maskedItem)
        method_iri_ = g.value(m, SLNS.maskMethod)
        method = _IRI_METHOD.get(method_iri_) if isinstance(method_iri_, URIRef) else None
        if item is None or method is None:
            raise InputError(f"{where}: a masking rule lacks sl:maskedItem or a known sl:maskMethod")
        key = _key_of(g, item, where)
        try:
            if method is MaskMethod.KEEP:
                first = _count(g.value(m, SLNS.keepFirst))
                last = _count(g.value(m, SLNS.keepLast))
                out[key] = MaskRule.keep(first, last)
            else:
                out[key] = MaskRule(method)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: masking of {key!r}: {exc}") from exc
    for value in g.objects(owner, SLNS.recordIdMasking):
        if value != SLNS.KeyedHash:
            raise InputError(f"{where}: sl:recordIdMasking can only be sl:KeyedHash")
        out["id"] = MaskRule.hash()
    return out


def _grant(g: Graph, perm: Node, dataset_id: str) -> Grant:
    where = f"dataset {dataset_id!r}, grant {perm}"
    assignee = g.value(perm, ODRLNS.assignee)
    if not isinstance(assignee, URIRef) or not str(assignee).startswith(_DEPT_PREFIX):
        raise InputError(f"{where}: odrl:assignee must be a department IRI {_DEPT_PREFIX}<credit code>")
    purposes: list[str] = []
    until: date | None = None
    for c in g.objects(perm, ODRLNS.constraint):
        left = g.value(c, ODRLNS.leftOperand)
        if left == ODRLNS.purpose:
            purposes.extend(_texts(g, c, ODRLNS.rightOperand))
        elif left == ODRLNS.dateTime:
            value = g.value(c, ODRLNS.rightOperand)
            parsed = value.toPython() if isinstance(value, Literal) else None
            if isinstance(parsed, datetime):
                parsed = parsed.date()
            if not isinstance(parsed, date):
                raise InputError(f"{where}: the odrl:dateTime constraint needs an xsd:date right operand")
            until = parsed
        else:
            raise InputError(f"{where}: unsupported constraint on {left}")
    grant_id = _one_text(g, perm, DCTERMS.identifier) or str(perm).rsplit("/", 1)[-1]
    return Grant.create(
        grant_id=grant_id,
        dataset_id=dataset_id,
        consumer_code=str(assignee)[len(_DEPT_PREFIX) :],
        items=[_key_of(g, t, where) for t in g.objects(perm, ODRLNS.target)],
        purposes=purposes,
        until=until,
        masking=_masking(g, perm, where),
        basis=_one_text(g, perm, SLNS.legalBasis),
        request_id=_one_text(g, perm, SLNS.accessRequestId),
    )


def _dataset(g: Graph, node: Node) -> DatasetPolicy:
    ident = _one_text(g, node, DCTERMS.identifier) or dataset_id_from_iri(str(node))
    if not ident:
        raise InputError(f"dataset {node} has no dct:identifier")
    where = f"dataset {ident!r}"
    kind_iri = g.value(node, SLNS.sharingType)
    notation = str(kind_iri)[len(_TYPE_PREFIX) :] if str(kind_iri).startswith(_TYPE_PREFIX) else ""
    try:
        kind = SharingType(notation)
    except ValueError as exc:
        raise InputError(f"{where}: sl:sharingType must be one of {_TYPE_PREFIX}1, 2 or 3") from exc
    items: list[str] = []
    labels: list[tuple[str, str]] = []
    for item in g.subjects(ODRLNS.partOf, node):
        key = _key_of(g, item, where)
        items.append(key)
        label = _one_text(g, item, DCTERMS.title)
        if label:
            labels.append((key, label))
    methods: list[str] = []
    for value in g.objects(node, SLNS.sharingMethod):
        method = method_from_iri(str(value))
        if method is None:
            raise InputError(
                f"{where}: sl:sharingMethod {value} is not a concept of the sharing-method code list"
            )
        methods.append(method)
    grants = [
        _grant(g, perm, ident)
        for policy in g.objects(node, ODRLNS.hasPolicy)
        for perm in g.objects(policy, ODRLNS.permission)
    ]
    return DatasetPolicy(
        dataset_id=ident,
        sharing_type=kind,
        title=_one_text(g, node, DCTERMS.title),
        items=tuple(items),
        item_labels=tuple(labels),
        withheld=tuple(_key_of(g, i, where) for i in g.objects(node, SLNS.withheldItem)),
        masking=tuple(_masking(g, node, where).items()),
        conditions=tuple(_texts(g, node, SLNS.sharingCondition)),
        methods=tuple(methods),
        basis=tuple(_texts(g, node, SLNS.legalBasis)),
        grants=tuple(grants),
    )


def from_graph(g: Graph) -> ResponsibilityList:
    """Read a list from RDF. Datasets are the ``sl:listedDataset`` of the list node, or, without
    one, every subject with an ``sl:sharingType``."""
    roots = list(g.subjects(RDF.type, SLNS.ResponsibilityList))
    if len(roots) > 1:
        raise InputError(f"the graph holds {len(roots)} responsibility lists; expected one")
    provider: str | None = None
    title: str | None = None
    if roots:
        nodes = list(g.objects(roots[0], SLNS.listedDataset))
        pub = g.value(roots[0], DCTERMS.publisher)
        if pub is not None:
            if not str(pub).startswith(_DEPT_PREFIX):
                raise InputError(f"dct:publisher must be a department IRI {_DEPT_PREFIX}<credit code>")
            provider = str(pub)[len(_DEPT_PREFIX) :]
        title = _one_text(g, roots[0], DCTERMS.title)
    else:
        nodes = list(set(g.subjects(SLNS.sharingType, None)))
    return ResponsibilityList(
        datasets=tuple(_dataset(g, n) for n in nodes), provider_code=provider, title=title
    )


def from_turtle(text: str, source: str = "<text>") -> ResponsibilityList:
    return from_graph(parse_turtle(text, source))


def parse_turtle(text: str, source: str = "<text>") -> Graph:
    try:
        return Graph().parse(data=text, format="turtle")
    except Exception as exc:  # rdflib raises several unrelated types for bad syntax
        raise InputError(f"{source}: not valid Turtle: {exc}") from exc


def read_graph(path: Path) -> Graph:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as UTF-8 Turtle: {exc}") from exc
    return parse_turtle(text, str(path))


def load_list(path: Path) -> ResponsibilityList:
    """Read a Turtle list (no SHACL; see :func:`node.policy.load_validated`)."""
    return from_graph(read_graph(path))
