"""Importing administrative division lists (node.standard.divisions)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyshacl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import RDF, Graph, Literal, Namespace, URIRef

from node.errors import InputError
from node.standard.divisions import (
    DIVISION_BASE,
    DivisionEntry,
    _entries_from_graph,
    import_divisions,
    load_divisions,
    read_division_csv,
)

SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
SH = Namespace("http://www.w3.org/ns/shacl#")


def _accepted(standard: Path, codes: list[str]) -> set[str]:
    """The codes that the generated ``sls:DivisionCode`` accepts, as the record shapes use it."""
    shapes = Graph().parse(standard / "shapes" / "divisions.ttl", format="turtle")
    shapes.parse(
        data="""
        @prefix sh: <http://www.w3.org/ns/shacl#> . @prefix sls: <https://w3id.org/shulian/shapes#> .
        <urn:test:S> a sh:NodeShape ; sh:targetSubjectsOf <urn:test:code> ;
            sh:property [ sh:path <urn:test:code> ; sh:node sls:DivisionCode ] .
        """,
        format="turtle",
    )
    data = Graph()
    for c in codes:
        data.add((URIRef(f"urn:test:{c}"), URIRef("urn:test:code"), Literal(c)))
    _conforms, report, _ = pyshacl.validate(data, shacl_graph=shapes)
    top = [r for v in report.subjects(RDF.type, SH.ValidationReport) for r in report.objects(v, SH.result)]
    refused = {str(report.value(r, SH.focusNode))[len("urn:test:") :] for r in top}
    return set(codes) - refused


UNLISTED = ["110104", "110199", "999999", "000000", "11010", "1101050", "11000", "110000 "]


def _write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---------------------------------------------------------------------------
# the shipped standard: provinces only
# ---------------------------------------------------------------------------


def test_shipped_list_is_the_31_provinces(ontology_dir: Path, shared_data: Path) -> None:
    entries = load_divisions(ontology_dir)
    assert len(entries) == 31
    assert all(code.endswith("0000") and e.parent is None for code, e in entries.items())
    assert entries["110000"] == DivisionEntry("110000", "北京市", "北京市", None)
    assert entries["650000"].name == "新疆维吾尔自治区"
    assert _accepted(ontology_dir, [*entries, "110100", *UNLISTED]) == set(entries)


def test_shipped_files_are_what_the_import_generates(ontology_dir: Path, standard_copy: Path, shared_data: Path) -> None:
    import_divisions([shared_data / "divisions" / "provinces.csv"], standard_copy)
    for rel in ("codelists/divisions.ttl", "shapes/divisions.ttl"):
        assert (standard_copy / rel).read_bytes() == (ontology_dir / rel).read_bytes(), rel


# ---------------------------------------------------------------------------
# the full national list
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_standard(tmp_path_factory: pytest.TempPathFactory, division_csvs: list[Path]) -> Path:
    root = tmp_path_factory.mktemp("full") / "ontology"
    (root / "codelists").mkdir(parents=True)
    (root / "shapes").mkdir()
    assert import_divisions(division_csvs, root) == len(load_divisions(root))
    return root


def test_full_import_counts(full_standard: Path) -> None:
    entries = load_divisions(full_standard)
    # 31 + 342 + 2978 minus three county-level cities listed at both levels (东莞 中山 儋州)
    assert len(entries) == 3348
    assert 3200 < len(entries) < 3400
    assert sum(1 for e in entries.values() if e.parent is None) == 31
    sample = [*list(entries)[::7], "110105", "441900", "659001"]
    assert _accepted(full_standard, [*sample, *UNLISTED]) == set(sample)


@pytest.mark.parametrize(
    ("code", "name", "full_name", "parent"),
    [
        ("110105", "朝阳区", "北京市朝阳区", "110100"),
        ("110100", "市辖区", "北京市市辖区", "110000"),
        ("110000", "北京市", "北京市", None),
        ("130102", "长安区", "河北省石家庄市长安区", "130100"),
        ("500229", "城口县", "重庆市城口县", "500200"),
        ("419001", "济源市", "河南省济源市", "419000"),
        ("659001", "石河子市", "新疆维吾尔自治区石河子市", "659000"),
        ("441900", "东莞市", "广东省东莞市", "440000"),
        ("330106", "西湖区", "浙江省杭州市西湖区", "330100"),
    ],
)
def test_names_and_broader_links(full_standard: Path, code: str, name: str, full_name: str, parent: str | None) -> None:
    assert load_divisions(full_standard)[code] == DivisionEntry(code, name, full_name, parent)


def test_chains_end_at_a_province(full_standard: Path) -> None:
    entries = load_divisions(full_standard)
    for code, e in entries.items():
        chain = [code]
        while entries[chain[-1]].parent is not None:
            chain.append(entries[chain[-1]].parent)  # type: ignore[arg-type]
        assert len(chain) <= 3 and chain[-1].endswith("0000"), code
        assert all(code.startswith(c.rstrip("0")[: len(c.rstrip("0")) + len(c.rstrip("0")) % 2]) for c in chain[1:])
        assert e.full_name.endswith(e.name)


def test_generated_code_list_reads_the_same_with_rdflib(full_standard: Path) -> None:
    g = Graph().parse(full_standard / "codelists" / "divisions.ttl", format="turtle")
    assert _entries_from_graph(g) == load_divisions(full_standard)
    c = URIRef(DIVISION_BASE + "110105")
    assert (c, RDF.type, SKOS.Concept) in g
    assert g.value(c, SKOS.notation) == Literal("110105")
    assert g.value(c, SKOS.prefLabel) == Literal("朝阳区", lang="zh")
    assert g.value(c, SKOS.altLabel) == Literal("北京市朝阳区", lang="zh")
    assert g.value(c, SKOS.broader) == URIRef(DIVISION_BASE + "110100")
    assert g.value(URIRef(DIVISION_BASE + "110100"), SKOS.broader) == URIRef(DIVISION_BASE + "110000")
    assert (URIRef(DIVISION_BASE + "110000"), SKOS.topConceptOf, URIRef(DIVISION_BASE[:-1])) in g


def test_record_shapes_see_the_imported_list(full_standard: Path) -> None:
    # the county 110105 is unknown to the shipped (provinces-only) list but known after the full import
    assert _accepted(full_standard, ["110105", "110104"]) == {"110105"}


def test_output_is_deterministic(tmp_path: Path, division_csvs: list[Path]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    import_divisions(division_csvs, a)
    import_divisions(list(reversed(division_csvs)), b)
    for rel in ("codelists/divisions.ttl", "shapes/divisions.ttl"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    before = (a / "codelists" / "divisions.ttl").read_bytes()
    import_divisions(division_csvs, a)
    assert (a / "codelists" / "divisions.ttl").read_bytes() == before


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------


def test_reimport_replaces_the_list_and_refreshes_the_cache(standard_copy: Path, tmp_path: Path) -> None:
    assert len(load_divisions(standard_copy)) == 31
    f = _write_csv(tmp_path / "zj.csv", ["code", "name"], [["33", "浙江省"], ["3301", "杭州市"], ["330106", "西湖区"]])
    assert import_divisions([f], standard_copy) == 3
    assert load_divisions(standard_copy)["330106"].full_name == "浙江省杭州市西湖区"
    assert "110000" not in load_divisions(standard_copy)


def test_gb18030_csv_with_extra_columns(tmp_path: Path) -> None:
    f = _write_csv(tmp_path / "gb.csv", ["Code", "Name", "level"], [["44", "广东省", "1"], ["440300", "深圳市", "2"]],
                   encoding="gb18030")
    entries = read_division_csv([f])
    assert entries["440300"] == DivisionEntry("440300", "深圳市", "广东省深圳市", "440000")


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["code", "name"], [["1101x", "某区"]], r"bad\.csv:2: division code '1101x' is not 2, 4 or 6 digits"),
        (["code", "name"], [["11", ""]], r"bad\.csv:2: division 11 has no name"),
        (["id", "label"], [["11", "北京市"]], r"must name the columns 'code' and 'name'"),
        (["code", "name"], [["11", "北京市"], ["110000", "北平"]], r"bad\.csv:3: division 110000 is named '北平'"),
        (["code", "name"], [], r"no divisions found"),
    ],
)
def test_bad_lists_are_refused_with_file_and_line(tmp_path: Path, header: list[str], rows: list[list[str]],
                                                  message: str) -> None:
    f = _write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(InputError, match=message):
        import_divisions([f], tmp_path)


def test_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="division list not found"):
        import_divisions([tmp_path / "nope.csv"], tmp_path)
    with pytest.raises(InputError, match="no division list given"):
        import_divisions([], tmp_path)
    f = _write_csv(tmp_path / "p.csv", ["code", "name"], [["11", "北京市"]])
    with pytest.raises(InputError, match="standard folder not found"):
        import_divisions([f], tmp_path / "missing")
    assert load_divisions(tmp_path) == {}


def test_a_failed_import_leaves_the_standard_unchanged(standard_copy: Path, tmp_path: Path) -> None:
    before = (standard_copy / "codelists" / "divisions.ttl").read_bytes()
    good = _write_csv(tmp_path / "good.csv", ["code", "name"], [["33", "浙江省"]])
    bad = _write_csv(tmp_path / "bad.csv", ["code", "name"], [["3", "x"]])
    with pytest.raises(InputError):
        import_divisions([good, bad], standard_copy)
    assert (standard_copy / "codelists" / "divisions.ttl").read_bytes() == before


def test_hand_written_code_list_is_read_with_rdflib(tmp_path: Path) -> None:
    (tmp_path / "codelists").mkdir()
    (tmp_path / "codelists" / "divisions.ttl").write_text(
        """
        @prefix skos: <http://www.w3.org/2004/02/skos/core#> .
        <https://w3id.org/shulian/code/division/330000> skos:inScheme <https://w3id.org/shulian/code/division> ;
            skos:notation "330000" ; skos:prefLabel "浙江省"@zh .
        <https://w3id.org/shulian/code/division/330100> skos:inScheme <https://w3id.org/shulian/code/division> ;
            skos:notation "330100" ; skos:prefLabel "杭州市"@zh ; skos:altLabel "浙江省杭州市"@zh ;
            skos:broader <https://w3id.org/shulian/code/division/330000> .
        """,
        encoding="utf-8",
    )
    assert load_divisions(tmp_path) == {
        "330000": DivisionEntry("330000", "浙江省", "浙江省", None),
        "330100": DivisionEntry("330100", "杭州市", "浙江省杭州市", "330000"),
    }


_REAL: list[tuple[str, str]] = []


def _real_rows(division_csvs: list[Path]) -> list[tuple[str, str]]:
    if not _REAL:
        for f in division_csvs:
            with f.open(encoding="utf-8") as fh:
                _REAL.extend((r["code"], r["name"]) for r in csv.DictReader(fh))
    return _REAL


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_subset_of_the_real_list_imports_consistently(tmp_path: Path, division_csvs: list[Path],
                                                          data: st.DataObject) -> None:
    rows = _real_rows(division_csvs)
    picked = data.draw(st.lists(st.sampled_from(rows), min_size=1, max_size=40, unique=True))
    f = _write_csv(tmp_path / "subset.csv", ["code", "name"], [list(r) for r in picked])
    out = tmp_path / "std"
    out.mkdir(exist_ok=True)
    n = import_divisions([f], out)
    entries = load_divisions(out)
    assert n == len(entries) == len({c + "0" * (6 - len(c)) for c, _ in picked})
    for code, e in entries.items():
        if e.parent is not None:
            assert e.parent in entries and e.parent != code
            assert code.startswith(e.parent[:2])
        assert e.full_name.endswith(e.name)
    assert _accepted(out, [*entries, "999999"]) == set(entries)
