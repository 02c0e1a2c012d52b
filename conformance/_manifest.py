"""Reading test manifests (W3C test-manifest vocabulary) into :class:`Case` values.

A manifest is Turtle::

    <> a mf:Manifest ;
        rdfs:label "记录示例"@zh, "Record examples"@en ;
        mf:include ( <catalogs.ttl> ) ;          # other manifests (optional)
        mf:entries ( t:DAT-01 t:DAT-02 ) .

    t:DAT-01 a slt:RecordExampleTest ;
        dct:identifier "DAT-01" ;
        mf:name "..."@zh, "..."@en ;
        dct:source sls:PersonShape ;              # the clause checked (one or more)
        slt:level slt:Mandatory ;                 # or slt:Optional
        mf:action <../../ontology/examples/Person/valid/beijing-chaoyang.json> ;
        mf:result [ slt:conforms true ] .

Relative IRIs resolve against the manifest file, so a manifest and the files it
names travel together (copy both and the copy runs the same).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

from rdflib import RDF, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

from conformance._model import Case, Expectation
from conformance._vocab import DCT, MF, RDFS, SLT
from node.errors import InputError, StandardError

__all__ = ["load_manifests", "manifests_dir", "default_manifest", "file_of"]

log = logging.getLogger(__name__)


def manifests_dir() -> Path:
    """The folder of the manifests shipped with the kit."""
    # beside this module: a wheel and an editable install both keep the package as a real folder
    root = Path(__file__).resolve().parent / "manifests"
    if not root.is_dir():
        raise StandardError(f"{root}: the kit's manifests are missing; reinstall shulian")
    return root


def default_manifest() -> Path:
    """The top manifest (it includes every other one)."""
    return manifests_dir() / "manifest.ttl"


def file_of(iri: str) -> Path | None:
    """The local path of a ``file:`` IRI, else None."""
    parsed = urlparse(iri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def _parse(path: Path) -> Graph:
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    g = Graph()
    try:
        g.parse(path, format="turtle")
    except Exception as exc:  # rdflib raises many parser exception types
        raise InputError(f"{path}: not a readable Turtle manifest ({exc})") from exc
    return g


def _list(g: Graph, node: Node | None) -> list[Node]:
    if node is None:
        return []
    return list(Collection(g, node))


def _text(g: Graph, node: Node, pred: URIRef, lang: str) -> str | None:
    for o in g.objects(node, pred):
        if isinstance(o, Literal) and (o.language or "").lower().startswith(lang):
            return str(o)
    return None


class _Reader:
    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.seen_files: set[Path] = set()
        self.ids: dict[str, Path] = {}

    def read(self, path: Path) -> None:
        path = path.resolve()
        if path in self.seen_files:
            return
        self.seen_files.add(path)
        g = _parse(path)
        manifests = sorted(g.subjects(RDF.type, MF.Manifest), key=str)
        if not manifests:
            raise InputError(f"{path}: no mf:Manifest in the file")
        for m in manifests:
            suite = _text(g, m, RDFS.label, "en") or path.stem
            for entry in _list(g, g.value(m, MF.entries)):
                self._entry(g, path, suite, entry)
            for inc in _list(g, g.value(m, MF.include)):
                target = file_of(str(inc))
                if target is None:
                    raise InputError(f"{path}: mf:include {inc} is not a local file")
                self.read(target)

    def _entry(self, g: Graph, path: Path, suite: str, entry: Node) -> None:
        where = f"{path.name}: entry {entry}"
        ids = [str(o) for o in g.objects(entry, DCT.identifier)]
        if len(ids) != 1:
            raise InputError(f"{where}: needs exactly one dct:identifier (the case id), found {len(ids)}")
        cid = ids[0]
        where = f"{path.name}: case {cid}"
        if cid in self.ids:
            raise InputError(f"{where}: the id is also used in {self.ids[cid].name}")
        self.ids[cid] = path
        types = sorted(str(t) for t in g.objects(entry, RDF.type))
        if len(types) != 1:
            raise InputError(f"{where}: needs exactly one rdf:type (the test type), found {len(types)}")
        name_zh = _text(g, entry, MF.name, "zh")
        name_en = _text(g, entry, MF.name, "en")
        if not name_zh or not name_en:
            raise InputError(f"{where}: needs an mf:name in Chinese (@zh) and in English (@en)")
        level = g.value(entry, SLT.level)
        if level not in (SLT.Mandatory, SLT.Optional):
            raise InputError(f"{where}: slt:level must be slt:Mandatory or slt:Optional, found {level}")
        clauses = tuple(sorted(str(s) for s in g.objects(entry, DCT.source)))
        if not clauses:
            raise InputError(f"{where}: needs a dct:source naming the clause it checks")
        action = g.value(entry, MF.action)
        divisions = tuple(sorted(str(d) for d in g.objects(entry, SLT.requiresDivision)))
        self.cases.append(
            Case(
                id=cid,
                iri=str(entry) if isinstance(entry, URIRef) else f"{path.as_uri()}#{cid}",
                name_zh=name_zh,
                name_en=name_en,
                test_type=types[0],
                mandatory=level == SLT.Mandatory,
                clauses=clauses,
                suite=suite,
                action=str(action) if isinstance(action, URIRef) else None,
                expected=self._expected(g, where, g.value(entry, MF.result)),
                record_type=str(g.value(entry, SLT.recordType) or "") or None,
                requires=tuple(sorted(str(r) for r in g.objects(entry, MF.requires))),
                divisions=divisions,
                comment=_text(g, entry, RDFS.comment, "en"),
            )
        )

    @staticmethod
    def _expected(g: Graph, where: str, node: Node | None) -> Expectation | None:
        if node is None:
            return None
        if not isinstance(node, BNode | URIRef):
            raise InputError(f"{where}: mf:result must be a node with slt:conforms")
        conforms = g.value(node, SLT.conforms)
        if not isinstance(conforms, Literal) or not isinstance(conforms.toPython(), bool):
            raise InputError(f"{where}: mf:result needs slt:conforms true or false")
        pairs: set[tuple[str, str]] = set()
        for v in g.objects(node, SLT.violation):
            path, constraint = g.value(v, SLT.path), g.value(v, SLT.constraint)
            shape, component = g.value(v, SLT.shape), g.value(v, SLT.component)
            if path is not None and constraint is not None:
                pairs.add((str(path), str(constraint)))
            elif shape is not None and component is not None:
                pairs.add((str(shape), str(component)))
            else:
                raise InputError(
                    f"{where}: an expected slt:violation needs slt:path + slt:constraint (records) "
                    "or slt:shape + slt:component (catalogs)"
                )
        exhaustive = g.value(node, SLT.exhaustive)
        return Expectation(
            conforms=bool(conforms.toPython()),
            violations=frozenset(pairs),
            exhaustive=bool(exhaustive.toPython()) if isinstance(exhaustive, Literal) else False,
        )


def load_manifests(paths: list[Path] | None = None) -> list[Case]:
    """Every case of the manifests at ``paths`` (default: the kit's top manifest), includes followed.

    Raises :class:`InputError` naming the file and the case for a manifest that
    cannot be read or lacks what a case needs (id, names in zh and en, level, clause),
    and for an id used twice.
    """
    reader = _Reader()
    for p in paths or [default_manifest()]:
        reader.read(Path(p))
    log.debug("loaded %d cases from %d manifests", len(reader.cases), len(reader.seen_files))
    return reader.cases
