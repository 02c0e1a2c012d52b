"""``shulian-conform data`` and ``shulian-conform catalog``: one case per record / catalog, reports on disk."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner
from rdflib import RDF, Graph, Literal, URIRef
from rdflib.compare import isomorphic

from conformance._vocab import EARL, SH, SLS
from conformance.cli import cli
from node.standard._paths import ontology_dir

EXAMPLES = ontology_dir() / "examples"
CATALOGS = EXAMPLES / "catalog"


def _example(rel: str) -> dict:  # type: ignore[type-arg]
    return json.loads((EXAMPLES / rel).read_text(encoding="utf-8"))


def _people(path: Path) -> Path:
    good = _example("Person/valid/beijing-chaoyang.json")
    lines = [
        json.dumps(good, ensure_ascii=False),
        json.dumps({**good, "id": "bad-sex", "sex": "男"}, ensure_ascii=False),
        "",
        "{not json",
        json.dumps(_example("Person/valid/sex-parity-warning.json"), ensure_ascii=False),
        json.dumps({**good, "id": "bad-extra", "nickname": "小王"}, ensure_ascii=False),
        "[1, 2]",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


def test_data_one_case_per_record_with_the_shacl_report(tmp_path: Path, full_standard: Path) -> None:
    src = _people(tmp_path / "people.jsonl")
    out = tmp_path / "out"
    code, output = _invoke("data", str(src), "--type", "Person", "--standard", str(full_standard), "--out", str(out))
    assert code == 1, output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    outcomes = {c["id"].rsplit(":", 1)[1]: c["outcome"] for c in summary["cases"]}
    assert outcomes == {"1": "passed", "2": "failed", "4": "failed", "5": "passed", "6": "failed", "7": "failed"}
    assert summary["subjects"][0]["kind"] == "data" and len(summary["subjects"][0]["sha256"]) == 64
    # the SHACL validation report
    g = Graph().parse(out / "shacl-report.ttl", format="turtle")
    (report,) = list(g.subjects(RDF.type, SH.ValidationReport))
    assert g.value(report, SH.conforms) == Literal(False)
    results = list(g.objects(report, SH.result))
    by_focus = {str(g.value(r, SH.focusNode)).rsplit("/", 1)[1]: r for r in results}
    assert set(by_focus) == {"bad-sex", "bad-extra", "person-warn"}
    sex = by_focus["bad-sex"]
    assert g.value(sex, SH.sourceShape) == SLS["Person-sex-code"]
    assert g.value(sex, SH.sourceConstraintComponent) == SH.InConstraintComponent
    assert g.value(sex, SH.resultPath) == URIRef("https://w3id.org/shulian/ns#sex")
    assert {m.language for m in g.objects(sex, SH.resultMessage)} == {"zh", "en"}
    assert g.value(by_focus["person-warn"], SH.resultSeverity) == SH.Warning
    assert g.value(by_focus["bad-extra"], SH.sourceConstraintComponent) == SH.ClosedConstraintComponent
    # the other reports: one case per record
    junit = ET.parse(out / "junit.xml").getroot()
    assert junit.get("tests") == "6" and junit.get("failures") == "4"
    earl = Graph().parse(out / "earl.ttl", format="turtle")
    assert len(list(earl.subjects(RDF.type, EARL.Assertion))) == 6


def test_data_valid_records_exit_0(tmp_path: Path, full_standard: Path) -> None:
    src = tmp_path / "people.json"
    src.write_text(json.dumps([_example("Person/valid/beijing-chaoyang.json"),
                               _example("Person/valid/tianjin-hui.json")], ensure_ascii=False), encoding="utf-8")
    code, output = _invoke("data", str(src), "--type", "Person", "--standard", str(full_standard),
                           "--out", str(tmp_path / "o"))
    assert code == 0, output
    assert "CONFORMS: all 2 mandatory case(s) passed" in output
    g = Graph().parse(tmp_path / "o" / "shacl-report.ttl", format="turtle")
    assert g.value(next(g.subjects(RDF.type, SH.ValidationReport)), SH.conforms) == Literal(True)


def test_both_engines_write_the_same_shacl_report(tmp_path: Path, full_standard: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    lines = [json.dumps(_example(f"{t}/invalid/{p.name}"), ensure_ascii=False)
             for t in ("Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense")
             for p in sorted((EXAMPLES / t / "invalid").glob("*.json"))]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    graphs = []
    for engine in ("shacl", "fast"):
        out = tmp_path / engine
        code, output = _invoke("data", str(src), "--engine", engine, "--standard", str(full_standard),
                               "--out", str(out))
        assert code == 1, output
        graphs.append(Graph().parse(out / "shacl-report.ttl", format="turtle"))
    assert len(graphs[0]) > 100
    assert isomorphic(graphs[0], graphs[1])


def test_data_input_errors_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    good = tmp_path / "one.jsonl"
    good.write_text(json.dumps(_example("Person/valid/beijing-chaoyang.json")) + "\n", encoding="utf-8")
    out = str(tmp_path / "o")
    for args, words in (
        (["data", str(tmp_path / "missing.jsonl"), "--out", out], "no such file"),
        (["data", str(good), "--type", "Nope", "--out", out], "unknown --type"),
        (["data", str(empty), "--out", out], "no records"),
        (["data", str(good), "--statement", str(tmp_path / "s.ttl"), "--out", out], "--key"),
        (["data", str(good), "--key", str(tmp_path / "k.pem"), "--out", out], "--statement"),
        (["data", "--out", out], "FILES"),
    ):
        code, output = _invoke(*args)
        assert code == 2, (args, output)
        assert words in output and "Traceback" not in output, (args, output)


def test_catalog_files(tmp_path: Path) -> None:
    valid = CATALOGS / "valid" / "hangzhou-psb-catalog.ttl"
    invalid = CATALOGS / "invalid" / "missing-chinese-title.ttl"
    code, output = _invoke("catalog", str(valid), "--out", str(tmp_path / "a"))
    assert code == 0, output
    code, output = _invoke("catalog", str(valid), str(invalid), "--out", str(tmp_path / "b"))
    assert code == 1, output
    junit = ET.parse(tmp_path / "b" / "junit.xml").getroot()
    (failure,) = junit.findall("./testsuite/testcase/failure")
    assert "sls:Dataset-titleZh" in (failure.text or "")
    g = Graph().parse(tmp_path / "b" / "shacl-report.ttl", format="turtle")
    assert len(list(g.subjects(RDF.type, SH.ValidationReport))) == 2
    assert (None, SH.sourceShape, SLS["Dataset-titleZh"]) in g
    # JSON-LD is read as well
    jsonld = tmp_path / "catalog.jsonld"
    jsonld.write_text(Graph().parse(valid, format="turtle").serialize(format="json-ld"), encoding="utf-8")
    code, output = _invoke("catalog", str(jsonld), "--out", str(tmp_path / "c"))
    assert code == 0, output
    # unreadable input is a usage error, not a verdict
    broken = tmp_path / "broken.ttl"
    broken.write_text("@prefix : <", encoding="utf-8")
    code, output = _invoke("catalog", str(broken), "--out", str(tmp_path / "d"))
    assert code == 2 and "broken.ttl" in output and "Traceback" not in output


def test_the_console_script_module_runs(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "conformance", "catalog", str(CATALOGS / "valid" / "minimal-catalog.ttl"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CONFORMS" in r.stdout
    r = subprocess.run([sys.executable, "-m", "conformance", "--help"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and "Examples" in r.stdout
