"""Signed conformance statements: keygen, sign, verify, and any change to one triple is caught."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import RDF, BNode, Graph, Literal, URIRef

from conformance import canonical_bytes, verify_statement
from conformance._vocab import DCT, OWL, SLS, SLT
from conformance.cli import cli
from node.errors import IntegrityError
from node.pki import load_signing_public_key
from node.standard._paths import ontology_dir

CATALOG = ontology_dir() / "examples" / "catalog" / "valid" / "minimal-catalog.ttl"
RECORD = ontology_dir() / "examples" / "SocialInsuranceEnrollment" / "valid" / "pension.json"


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "operator.pem", tmp_path / "operator.pub.pem"
    code, output = _invoke("keygen", str(key))
    assert code == 0, output
    return key, pub


@pytest.fixture()
def record_file(tmp_path: Path) -> Path:
    path = tmp_path / "pension.jsonl"
    path.write_text(json.dumps(json.loads(RECORD.read_text(encoding="utf-8")), ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture()
def signed(tmp_path: Path, keys: tuple[Path, Path], record_file: Path) -> Path:
    out, statement = tmp_path / "reports", tmp_path / "statement.ttl"
    code, output = _invoke("data", str(record_file), "--type", "SocialInsuranceEnrollment", "--out", str(out),
                           "--statement", str(statement), "--key", str(keys[0]), "--operator", "某市人社局")
    assert code == 0, output
    return statement


def test_keygen_writes_a_private_key_for_its_owner_only(keys: tuple[Path, Path]) -> None:
    key, pub = keys
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert pub.read_text(encoding="ascii").startswith("-----BEGIN PUBLIC KEY-----")
    code, output = _invoke("keygen", str(key))
    assert code == 2 and "--force" in output


def test_the_statement_says_who_what_when_and_verifies(signed: Path, keys: tuple[Path, Path],
                                                       record_file: Path) -> None:
    code, output = _invoke("verify-statement", str(signed), "--public-key", str(keys[1]))
    assert code == 0, output
    assert "signature OK" in output and "CONFORMS" in output
    g = Graph().parse(signed, format="turtle")
    (sid,) = list(g.subjects(RDF.type, SLT.ConformanceStatement))
    assert g.value(sid, SLT.standardVersion) == Literal("0.1.0")
    assert g.value(URIRef(str(SLS)), OWL.versionInfo) == Literal("0.1.0")
    assert g.value(sid, SLT.mode) == Literal("data") and g.value(sid, SLT.engine) == Literal("shacl")
    assert g.value(sid, SLT.conforms) == Literal(True)
    assert int(g.value(sid, SLT.passed)) == 1 and int(g.value(sid, SLT.mandatoryCases)) == 1  # type: ignore[arg-type]
    assert g.value(sid, DCT.date) is not None
    subject = g.value(sid, SLT.subject)
    assert subject == URIRef(record_file.resolve().as_uri())
    assert g.value(subject, SLT.sha256) == Literal(hashlib.sha256(record_file.read_bytes()).hexdigest())
    reports = {str(g.value(r, DCT.title)): str(g.value(r, SLT.sha256)) for r in g.objects(sid, SLT.report)}
    out = signed.parent / "reports"
    assert set(reports) == {"earl.ttl", "junit.xml", "summary.json", "shacl-report.ttl"}
    for name, digest in reports.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    operator = g.value(sid, SLT.operator)
    assert str(g.value(operator, URIRef("http://xmlns.com/foaf/0.1/name"))) == "某市人社局"


def _rewrite(src: Path, dst: Path, change: object) -> Path:
    g = Graph().parse(src, format="turtle")
    change(g)  # type: ignore[operator]
    dst.write_text(g.serialize(format="turtle"), encoding="utf-8")
    return dst


def test_changing_adding_or_removing_one_triple_fails_loudly(signed: Path, keys: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    pub = load_signing_public_key(keys[1])
    # re-serialising without a change still verifies (the signature is over the graph, not the bytes)
    same = _rewrite(signed, tmp_path / "same.ttl", lambda g: None)
    assert verify_statement(same, pub).conforms

    def sid(g: Graph) -> URIRef:
        return next(iter(g.subjects(RDF.type, SLT.ConformanceStatement)))  # type: ignore[return-value]

    changes = {
        "count": lambda g: g.set((sid(g), SLT.failed, Literal(1))),
        "verdict": lambda g: g.set((sid(g), SLT.conforms, Literal(False))),
        "added": lambda g: g.add((sid(g), DCT.description, Literal("all good"))),
        "removed": lambda g: g.remove((sid(g), SLT.engine, None)),
        "blank node": lambda g: g.add((sid(g), SLT.note, BNode())),
    }
    for name, change in changes.items():
        path = _rewrite(signed, tmp_path / f"{name}.ttl", change)
        with pytest.raises(IntegrityError, match="does NOT verify"):
            verify_statement(path, pub)
        code, output = _invoke("verify-statement", str(path), "--public-key", str(keys[1]))
        assert code == 1 and "does NOT verify" in output, name


def test_a_textual_edit_fails(signed: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    text = signed.read_text(encoding="utf-8")
    edited = tmp_path / "edited.ttl"
    edited.write_text(text.replace('slt:standardVersion "0.1.0"', 'slt:standardVersion "0.2.0"'), encoding="utf-8")
    assert edited.read_text(encoding="utf-8") != text
    code, output = _invoke("verify-statement", str(edited), "--public-key", str(keys[1]))
    assert code == 1 and "changed after signing" in output


def test_another_key_or_no_signature_fails(signed: Path, tmp_path: Path) -> None:
    code, _ = _invoke("keygen", str(tmp_path / "other.pem"))
    assert code == 0
    code, output = _invoke("verify-statement", str(signed), "--public-key", str(tmp_path / "other.pub.pem"))
    assert code == 1 and "signed by key" in output
    unsigned = _rewrite(signed, tmp_path / "unsigned.ttl",
                        lambda g: [g.remove((s, None, None)) for s in list(g.subjects(RDF.type, SLT.Signature))])
    code, output = _invoke("verify-statement", str(unsigned), "--public-key", str(tmp_path / "other.pub.pem"))
    assert code == 1 and "not signed" in output
    code, output = _invoke("verify-statement", str(tmp_path / "nope.ttl"), "--public-key",
                           str(tmp_path / "other.pub.pem"))
    assert code == 2 and "not found" in output


def test_canonical_bytes_ignore_blank_node_labels_and_syntax() -> None:
    g = Graph().parse(CATALOG, format="turtle")
    assert any(isinstance(t, BNode) for triple in g for t in triple)
    again = Graph().parse(data=g.serialize(format="nt"), format="nt")
    assert canonical_bytes(g) == canonical_bytes(again)
    again.add((URIRef("urn:x"), URIRef("urn:p"), Literal("中文 \"quoted\"\nline", lang="zh")))
    assert canonical_bytes(g) != canonical_bytes(again)


def test_a_catalog_run_statement_names_the_catalog_shapes(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    statement = tmp_path / "s.ttl"
    code, output = _invoke("catalog", str(CATALOG), "--out", str(tmp_path / "o"), "--statement", str(statement),
                           "--key", str(keys[0]))
    assert code == 0, output
    info = verify_statement(statement, load_signing_public_key(keys[1]))
    assert info.mode == "catalog" and info.conforms and info.counts["passed"] == 1
    g = Graph().parse(statement, format="turtle")
    assert (None, SLT.shapes, URIRef("https://w3id.org/shulian/shapes/catalog")) in g
