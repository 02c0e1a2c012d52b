"""The manifests: generated ones are current, every example is a case, ids are stable, node cases are listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import Graph, Literal, URIRef

from conformance import build_manifests, load_manifests, manifests_dir, stale_manifests, write_manifests
from conformance._manifest import file_of
from conformance._vocab import CLAUSE, RDFS, SLT
from conformance.cli import cli
from node.errors import InputError, StandardError
from node.standard._paths import ontology_dir

EXAMPLES = ontology_dir() / "examples"
RECORD_TYPES = ("Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense")
NODE_CASES = {
    "CAT-01", "CAT-02", "QRY-01", "ACC-01", "ACC-02", "ACC-03", "ACC-04", "ACC-05", "PSH-01", "PSH-02", "PSH-03",
    "SUB-01", "OPS-01", "OPS-02", "TLS-01", "TLS-02", "INP-01", "KFK-01", "KFK-02",
}


def test_generated_manifests_are_current() -> None:
    texts = build_manifests()
    assert set(texts) == {"records.ttl", "catalogs.ttl"}
    assert stale_manifests(texts) == [], "run `shulian-conform manifest build` and commit the result"


def test_manifest_build_check_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["manifest", "build", "--check"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["manifest", "build", "--check", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "out of date" in r.output
    r = runner.invoke(cli, ["manifest", "build", "--out", str(tmp_path)])
    assert r.exit_code == 0 and (tmp_path / "records.ttl").is_file()


def test_every_example_is_exactly_one_case() -> None:
    cases = load_manifests()
    actions = [file_of(c.action).resolve() for c in cases if c.action]  # type: ignore[union-attr]
    examples = sorted(p.resolve() for t in (*RECORD_TYPES, "catalog") for p in (EXAMPLES / t).glob("*/*.*"))
    assert sorted(actions) == examples
    dat = [c for c in cases if c.id.startswith("DAT-")]
    ctl = [c for c in cases if c.id.startswith("CTL-")]
    assert len(dat) == sum(len(list((EXAMPLES / t).glob("*/*.json"))) for t in RECORD_TYPES)
    assert len(ctl) == len(list((EXAMPLES / "catalog").glob("*/*.ttl")))
    for c in dat + ctl:
        assert c.mandatory and c.expected is not None and c.clauses
        assert c.expected.conforms == ("/valid/" in c.action)  # type: ignore[operator]
    for c in dat:
        if not c.expected.conforms:  # type: ignore[union-attr]
            stem = Path(c.action).stem  # type: ignore[arg-type]
            assert c.expected.violations == {tuple(stem.split("__"))}  # type: ignore[union-attr]
    assert all(c.expected.exhaustive for c in ctl if not c.expected.conforms)  # type: ignore[union-attr]


def test_every_case_has_an_id_titles_in_two_languages_a_clause_and_a_level() -> None:
    cases = load_manifests()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    for c in cases:
        assert c.name_zh and c.name_en and c.name_zh != c.name_en, c.id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in c.name_zh), c.id
        assert c.clauses, c.id
        assert c.iri == f"https://w3id.org/shulian/conformance/test#{c.id}"


def test_shape_clauses_name_shapes_of_the_standard() -> None:
    shapes = Graph()
    for f in ("records.ttl", "catalog.ttl"):
        shapes.parse(ontology_dir() / "shapes" / f, format="turtle")
    for c in load_manifests([manifests_dir() / "records.ttl", manifests_dir() / "catalogs.ttl"]):
        for clause in c.clauses:
            assert (URIRef(clause), None, None) in shapes, (c.id, clause)


def test_node_cases_are_listed_with_level_and_described_clauses() -> None:
    cases = {c.id: c for c in load_manifests([manifests_dir() / "node.ttl"])}
    assert set(cases) == NODE_CASES
    assert {i for i, c in cases.items() if not c.mandatory} == {"KFK-01", "KFK-02"}
    assert all(str(SLT.Kafka) in cases[i].requires for i in ("KFK-01", "KFK-02"))
    assert all(c.test_type == str(SLT.NodeTest) for c in cases.values())
    g = Graph().parse(manifests_dir() / "node.ttl", format="turtle")
    for c in cases.values():
        for clause in (cl for cl in c.clauses if cl.startswith(str(CLAUSE))):
            langs = {lab.language for lab in g.objects(URIRef(clause), RDFS.label) if isinstance(lab, Literal)}
            assert langs == {"zh", "en"}, clause


def test_the_top_manifest_includes_every_manifest() -> None:
    assert {c.id for c in load_manifests()} == {
        c.id for m in ("records.ttl", "catalogs.ttl", "node.ttl") for c in load_manifests([manifests_dir() / m])
    }


def _key(action: str | None) -> str:
    path = file_of(action or "")
    assert path is not None
    return "/".join(path.parts[-3:])


def test_ids_survive_a_rebuild_and_new_examples_get_new_numbers(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    out = tmp_path / "manifests"
    write_manifests(build_manifests(examples, out), out)
    before = {_key(c.action): c.id for c in load_manifests([out / "records.ttl"])}
    # a new example that sorts first, and one removed
    shutil.copy(examples / "Person" / "valid" / "tianjin-hui.json", examples / "Person" / "valid" / "aaa-new.json")
    (examples / "Person" / "invalid" / "sex__In.json").unlink()
    write_manifests(build_manifests(examples, out), out)
    after = {_key(c.action): c.id for c in load_manifests([out / "records.ttl"])}
    assert len(before) == 49
    assert after.pop("Person/valid/aaa-new.json") == f"DAT-{len(before) + 1:02d}"
    before.pop("Person/invalid/sex__In.json")
    assert after == before


def test_an_example_named_after_no_rule_stops_the_build(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    shutil.copy(examples / "Person" / "invalid" / "sex__In.json", examples / "Person" / "invalid" / "sex__Bogus.json")
    with pytest.raises(StandardError, match="sex__Bogus"):
        build_manifests(examples, tmp_path / "m")


def _write(path: Path, body: str) -> Path:
    path.write_text(
        "@prefix mf: <http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#> .\n"
        "@prefix dct: <http://purl.org/dc/terms/> .\n@prefix slt: <https://w3id.org/shulian/conformance#> .\n"
        "@prefix t: <https://w3id.org/shulian/conformance/test#> .\n" + body, encoding="utf-8")
    return path


def test_a_case_without_chinese_title_is_refused(tmp_path: Path) -> None:
    m = _write(tmp_path / "m.ttl", """<> a mf:Manifest ; mf:entries ( t:X-01 ) .
t:X-01 a slt:NodeTest ; dct:identifier "X-01" ; mf:name "only English"@en ; dct:source t:c ;
    slt:level slt:Mandatory .""")
    with pytest.raises(InputError, match="X-01.*@zh"):
        load_manifests([m])


def test_an_id_used_twice_is_refused(tmp_path: Path) -> None:
    entry = """t:{n} a slt:NodeTest ; dct:identifier "CAT-01" ; mf:name "甲"@zh, "a"@en ; dct:source t:c ;
    slt:level slt:Optional ."""
    _write(tmp_path / "b.ttl", "<> a mf:Manifest ; mf:entries ( t:B ) .\n" + entry.format(n="B"))
    a = _write(tmp_path / "a.ttl", "<> a mf:Manifest ; mf:include ( <b.ttl> ) ; mf:entries ( t:A ) .\n"
               + entry.format(n="A"))
    with pytest.raises(InputError, match=r"CAT-01: the id is also used in a\.ttl"):
        load_manifests([a])


def test_unreadable_manifest_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text("this is not turtle", encoding="utf-8")
    r = CliRunner().invoke(cli, ["run", "--manifest", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "bad.ttl" in r.output and "Traceback" not in r.output


def test_manifest_list_json_marks_unimplemented_node_cases() -> None:
    import json

    r = CliRunner().invoke(cli, ["manifest", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    node = {row["id"]: row for row in rows if row["type"] == "NodeTest"}
    assert set(node) == NODE_CASES
    from conformance import discover

    registered = set(discover().ids())
    assert all(row["implemented"] == (i in registered) for i, row in node.items())
