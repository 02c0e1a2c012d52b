"""Conformance statements: who was tested, against which version of the standard, when, with what result,
signed with the kit operator's Ed25519 key.

Signing: the statement graph (everything but the signature's own triples) is
canonicalised — blank nodes relabelled by :func:`rdflib.compare.to_canonical_graph`,
each triple written as one N-Triples line, lines sorted, joined with ``\\n``, UTF-8 —
and the bytes are signed. The signature sits in the same file::

    <urn:uuid:…#signature> a slt:Signature ;
        slt:signs <urn:uuid:…> ; slt:algorithm "Ed25519" ;
        slt:canonicalization slt:SortedCanonicalNTriples ;
        slt:keyId "…" ; slt:publicKey "…" ; slt:signatureValue "…" .

Verification recomputes the bytes from the file and checks them against the
public key given by the verifier (the embedded key is informative only): any
triple added, removed or changed makes it fail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from rdflib import RDF, BNode, Graph, Literal, URIRef
from rdflib.compare import to_canonical_graph
from rdflib.term import Node

from conformance._model import Outcome, Run
from conformance._vocab import DCT, DOAP, FOAF, KIT_IRI, OWL, SLT, XSD, bind_prefixes
from node.errors import InputError, IntegrityError
from node.pki import key_id, public_key_b64

__all__ = ["statement_graph", "sign_statement", "verify_statement", "canonical_bytes", "VerifiedStatement"]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def _nt(term: Node) -> str:
    if isinstance(term, URIRef):
        return f"<{term}>"
    if isinstance(term, BNode):
        return f"_:{term}"
    if isinstance(term, Literal):
        out = f'"{_escape(str(term))}"'
        if term.language:
            return f"{out}@{term.language}"
        if term.datatype is not None and term.datatype != XSD.string:
            return f"{out}^^<{term.datatype}>"
        return out
    raise IntegrityError(f"the statement holds a term N-Triples cannot write: {term!r}")


def canonical_bytes(g: Graph) -> bytes:
    """The graph's canonical form: canonical blank-node labels, sorted N-Triples lines, UTF-8."""
    canon = to_canonical_graph(g)
    lines = sorted(f"{_nt(s)} {_nt(p)} {_nt(o)} ." for s, p, o in canon)
    return ("\n".join(lines) + "\n").encode("utf-8")


def statement_graph(run: Run, *, operator: str | None, signer: ed25519.Ed25519PublicKey,
                    reports: Sequence[tuple[str, bytes]] = ()) -> tuple[Graph, URIRef]:
    """The unsigned statement of ``run`` (and its IRI). ``reports`` are (file name, content) pinned by SHA-256."""
    g = Graph()
    bind_prefixes(g.namespace_manager)
    sid = URIRef(f"urn:uuid:{uuid.uuid4()}")
    add = g.add
    add((sid, RDF.type, SLT.ConformanceStatement))
    add((sid, DCT.title, Literal("数链标准符合性声明", lang="zh")))
    add((sid, DCT.title, Literal("Shulian conformance statement", lang="en")))
    add((sid, DCT.date, Literal(run.finished.isoformat(), datatype=XSD.dateTime)))
    add((sid, SLT.started, Literal(run.started.isoformat(), datatype=XSD.dateTime)))
    add((sid, SLT.mode, Literal(run.mode)))
    add((sid, SLT.conforms, Literal(run.conforms)))
    add((sid, SLT.standardVersion, Literal(run.standard.version)))
    add((sid, SLT.standardDirectory, Literal(run.standard.directory)))
    for shapes, version in sorted(run.standard.versions.items()):
        add((sid, SLT.shapes, URIRef(shapes)))
        add((URIRef(shapes), OWL.versionInfo, Literal(version)))
    if run.engine:
        add((sid, SLT.engine, Literal(run.engine)))
    kit = URIRef(KIT_IRI)
    add((sid, SLT.tool, kit))
    add((kit, DOAP.name, Literal("shulian-conform")))
    add((kit, DOAP.revision, Literal(run.tool_version)))
    for s in run.subjects:
        node = URIRef(s.iri)
        add((sid, SLT.subject, node))
        add((node, DCT.title, Literal(s.title)))
        add((node, SLT.subjectKind, Literal(s.kind)))
        if s.version:
            add((node, DOAP.revision, Literal(s.version)))
        if s.sha256:
            add((node, SLT.sha256, Literal(s.sha256)))
    counts = run.counts()
    add((sid, SLT.cases, Literal(len(run.results), datatype=XSD.integer)))
    for o in Outcome:
        add((sid, SLT[o.value], Literal(counts[o.value], datatype=XSD.integer)))
    add((sid, SLT.mandatoryCases, Literal(len(run.mandatory), datatype=XSD.integer)))
    add((sid, SLT.mandatoryPassed, Literal(run.mandatory_passed, datatype=XSD.integer)))
    op = URIRef(f"{sid}#operator")
    add((sid, SLT.operator, op))
    add((op, RDF.type, FOAF.Agent))
    if operator:
        add((op, FOAF.name, Literal(operator)))
    add((op, SLT.keyId, Literal(key_id(signer))))
    add((op, SLT.publicKey, Literal(public_key_b64(signer))))
    for i, (name, content) in enumerate(reports, start=1):
        rep = URIRef(f"{sid}#report-{i}")
        add((sid, SLT.report, rep))
        add((rep, DCT.title, Literal(name)))
        add((rep, SLT.sha256, Literal(hashlib.sha256(content).hexdigest())))
    return g, sid


def sign_statement(run: Run, key: ed25519.Ed25519PrivateKey, *, operator: str | None = None,
                   reports: Sequence[tuple[str, bytes]] = ()) -> str:
    """The signed statement as Turtle text."""
    g, sid = statement_graph(run, operator=operator, signer=key.public_key(), reports=reports)
    # sign what a reader will parse back, not the in-memory graph (lexical forms are normalised on parsing)
    parsed = Graph().parse(data=g.serialize(format="turtle"), format="turtle")
    signature = key.sign(canonical_bytes(parsed))
    sig = URIRef(f"{sid}#signature")
    bind_prefixes(parsed.namespace_manager)
    parsed.add((sig, RDF.type, SLT.Signature))
    parsed.add((sig, SLT.signs, sid))
    parsed.add((sig, SLT.algorithm, Literal("Ed25519")))
    parsed.add((sig, SLT.canonicalization, SLT.SortedCanonicalNTriples))
    parsed.add((sig, SLT.keyId, Literal(key_id(key))))
    parsed.add((sig, SLT.publicKey, Literal(public_key_b64(key))))
    parsed.add((sig, SLT.signatureValue, Literal(base64.b64encode(signature).decode("ascii"))))
    text: str = parsed.serialize(format="turtle")
    return text


@dataclass(frozen=True)
class VerifiedStatement:
    statement: str
    date: str
    conforms: bool
    mode: str
    standard_version: str
    subjects: tuple[str, ...]
    counts: dict[str, int]
    key_id: str
    operator: str | None


def _int(g: Graph, s: Node, p: URIRef) -> int:
    v = g.value(s, p)
    return int(v.toPython()) if isinstance(v, Literal) else 0


def verify_statement(path: Path, public_key: ed25519.Ed25519PublicKey) -> VerifiedStatement:
    """Check the statement's signature with ``public_key``; raise :class:`IntegrityError` if it does not verify."""
    g = Graph()
    try:
        g.parse(path, format="turtle")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: statement file not found") from exc
    except Exception as exc:  # rdflib raises many parser exception types
        raise IntegrityError(f"{path}: not a readable Turtle statement ({exc})") from exc
    sigs = list(g.subjects(RDF.type, SLT.Signature))
    if not sigs:
        raise IntegrityError(f"{path}: the statement is not signed (no slt:Signature)")
    if len(sigs) > 1:
        raise IntegrityError(f"{path}: the statement holds {len(sigs)} signatures; a statement has one")
    sig = sigs[0]
    sid = g.value(sig, SLT.signs)
    if sid is None or (sid, RDF.type, SLT.ConformanceStatement) not in g:
        raise IntegrityError(f"{path}: the signature does not point at a conformance statement in the file")
    value = g.value(sig, SLT.signatureValue)
    try:
        signature = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IntegrityError(f"{path}: the signature value is not base64") from exc
    content = Graph()
    for t in g:
        if t[0] != sig:
            content.add(t)
    given = key_id(public_key)
    try:
        public_key.verify(signature, canonical_bytes(content))
    except InvalidSignature as exc:
        signed_by = str(g.value(sig, SLT.keyId) or "unknown")
        why = ("it was changed after signing" if signed_by == given
               else f"it says it was signed by key {signed_by}, and the key given is {given}")
        raise IntegrityError(f"{path}: the signature does NOT verify: {why}") from exc
    op = g.value(sid, SLT.operator)
    name = g.value(op, FOAF.name) if op is not None else None
    conforms = g.value(sid, SLT.conforms)
    return VerifiedStatement(
        statement=str(sid),
        date=str(g.value(sid, DCT.date) or ""),
        conforms=bool(conforms.toPython()) if isinstance(conforms, Literal) else False,
        mode=str(g.value(sid, SLT.mode) or ""),
        standard_version=str(g.value(sid, SLT.standardVersion) or ""),
        subjects=tuple(sorted(str(s) for s in g.objects(sid, SLT.subject))),
        counts={o.value: _int(g, sid, SLT[o.value]) for o in Outcome},
        key_id=given,
        operator=str(name) if name is not None else None,
    )
