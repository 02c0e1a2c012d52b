"""Mapping files: TOML and YAML, every mistake named by file and key; SKOS crosswalks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rdflib import Graph

from adapters.crosswalk import crosswalk_to_skos, load_skos_crosswalk, standard_code
from adapters.mapping import compile_mapping, load_mapping
from node.errors import ConfigError

BASE = """
[source]
reader = "csv"
[target]
type = "Person"
[id]
hash = ["identityNumber"]
prefix = "p-"
[fields.identityNumber]
column = "sfzh"
normalise = ["identity_number"]
[fields.sex]
column = "xb"
crosswalk = "sex"
[crosswalks.sex]
map = { "男" = "1", "女" = "2" }
"""

YAML = """
source: {reader: csv}
target: {type: Person}
id: {hash: [identityNumber], prefix: p-}
fields:
  identityNumber: {column: sfzh, normalise: [identity_number]}
  sex: {column: xb, crosswalk: sex}
crosswalks:
  sex:
    map: {"男": "1", "女": "2"}
"""


def test_toml_and_yaml_say_the_same(write_mapping: Callable[..., Path]) -> None:
    toml = load_mapping(write_mapping(BASE))
    yaml = load_mapping(write_mapping(YAML, "mapping.yaml"))
    assert toml.type == yaml.type == "Person"
    assert toml.fields == tuple(f for f in yaml.fields)
    assert toml.id == yaml.id
    assert dict(toml.crosswalks["sex"].table) == dict(yaml.crosswalks["sex"].table) == {"男": "1", "女": "2"}


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (("[fields.sex]\n", "[fields.sex]\ncolunm = \"x\"\n"), "fields.sex.colunm", "did you mean 'column'"),
        (('crosswalk = "sex"', 'crosswalk = "sexx"'), "fields.sex.crosswalk", "unknown crosswalk 'sexx'"),
        (('normalise = ["identity_number"]', 'normalise = ["identity_numbr"]'), "fields.identityNumber.normalise[0]",
         "did you mean 'identity_number'"),
        (('normalise = ["identity_number"]', 'normalise = [{ name = "amount", unitt = "元" }]'),
         "fields.identityNumber.normalise[0].unitt", "no option 'unitt'"),
        (('type = "Person"', 'type = "Citizen"'), "target.type", "unknown record type"),
        (('"女" = "2"', '"女" = 2'), "crosswalks.sex.map.女", "codes are strings"),
        (('hash = ["identityNumber"]', 'hash = ["creditCode"]'), "id.hash", "not a mapped property"),
        (('hash = ["identityNumber"]', 'template = "p-{nope}"'), "id.template", "{nope} is not a mapped property"),
        (('prefix = "p-"', 'prefix = "人-"'), "id.prefix", "id prefix"),
        (('reader = "csv"', 'reader = "parquet"'), "source.reader", "must be one of"),
        (('[fields.sex]\n', '[fields.sex]\nvalue = "1"\n'), "fields.sex", "exactly one of"),
        (('[fields.sex]', '[fields.Sex-code]'), "fields.Sex-code", "lowerCamelCase"),
        (('[fields.sex]\n', '[fields.sex]\nsplit = ","\nindex = 1\n'), None, None),
        (('reader = "csv"', 'reader = "csv"\nheader = "yes"'), "source.header", "true or false"),
    ],
)
def test_mistakes_are_named_by_file_and_key(
    write_mapping: Callable[..., Path], edit: tuple[str, str], key: str | None, message: str | None
) -> None:
    path = write_mapping(BASE.replace(*edit))
    if key is None:
        assert load_mapping(path).fields[1].split == ","
        return
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    text = str(caught.value)
    assert str(path) in text
    assert f"[{key}]" in text
    assert message in text


def test_missing_sections_and_broken_files(write_mapping: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[id\] missing"):
        load_mapping(write_mapping(BASE.replace('[id]\nhash = ["identityNumber"]\nprefix = "p-"\n', "")))
    with pytest.raises(ConfigError, match=r"\[target\] missing"):
        load_mapping(write_mapping(BASE.replace('[target]\ntype = "Person"\n', "")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_mapping(write_mapping("[source\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_mapping(write_mapping("a: [", "m.yml"))
    with pytest.raises(ConfigError, match="cannot read mapping file"):
        load_mapping(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="version 1"):
        load_mapping(write_mapping("version = 2\n" + BASE))


def test_columns_are_checked_against_the_input_header(write_mapping: Callable[..., Path]) -> None:
    mapping = load_mapping(write_mapping(BASE))
    compile_mapping(mapping, ["sfzh", "xb"])
    with pytest.raises(ConfigError) as caught:
        compile_mapping(mapping, ["sfzhm", "xb"])
    assert "[fields.identityNumber.column]" in str(caught.value)
    assert "did you mean 'sfzhm'" in str(caught.value)
    with pytest.raises(ConfigError, match="more than once"):
        compile_mapping(mapping, ["sfzh", "xb", "xb"])
    compile_mapping(mapping, None)  # keyed rows (JSON Lines): checked per row instead


def test_constant_values_are_normalised_once(write_mapping: Callable[..., Path]) -> None:
    text = BASE + '[fields.birthDate]\nvalue = "2020年1月2日"\nnormalise = ["date"]\n'
    mapping = load_mapping(write_mapping(text))
    compiled = compile_mapping(mapping, ["sfzh", "xb"])
    fn = dict(compiled.fields)["birthDate"]
    assert fn(["x", "y"]) == "2020-01-02"
    bad = load_mapping(write_mapping(text.replace("2020年1月2日", "someday")))
    with pytest.raises(ConfigError, match=r"\[fields\.birthDate\.value\]"):
        compile_mapping(bad, ["sfzh", "xb"])


SKOS = """
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix sex: <https://w3id.org/shulian/code/sex/> .
@prefix l: <https://example.org/county/xb/> .
l:scheme a skos:ConceptScheme .
l:m a skos:Concept ; skos:inScheme l:scheme ; skos:notation "1" ; skos:prefLabel "男"@zh ; skos:altLabel "M" ;
    skos:exactMatch sex:1 .
l:f a skos:Concept ; skos:inScheme l:scheme ; skos:notation "2" ; skos:prefLabel "女"@zh ;
    skos:closeMatch sex:9 ; skos:exactMatch sex:2 .
l:u a skos:Concept ; skos:inScheme l:scheme ; skos:notation "0" ; skos:prefLabel "不详"@zh ; skos:closeMatch sex:9 .
l:other a skos:Concept ; skos:notation "9" ; skos:exactMatch <https://w3id.org/shulian/code/ethnicity/01> .
"""


def test_skos_crosswalk_exact_preferred_to_close(tmp_path: Path) -> None:
    path = tmp_path / "xb.ttl"
    path.write_text(SKOS, encoding="utf-8")
    table = load_skos_crosswalk(path, target="sex")
    assert table == {"1": "1", "男": "1", "M": "1", "2": "2", "女": "2", "0": "9", "不详": "9"}
    exact_only = load_skos_crosswalk(path, target="sex", match=["exactMatch"])
    assert "不详" not in exact_only and exact_only["女"] == "2"
    in_scheme = load_skos_crosswalk(path, scheme="https://example.org/county/xb/scheme")
    assert "9" not in in_scheme  # l:other is not in the scheme
    everything = load_skos_crosswalk(path)
    assert everything["9"] == "01"


def test_skos_crosswalk_conflicts_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.ttl"
    path.write_text(SKOS + 'l:x a skos:Concept ; skos:notation "1" ; skos:exactMatch sex:2 .\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'1' maps to"):
        load_skos_crosswalk(path, target="sex")
    path.write_text(SKOS.replace("skos:closeMatch sex:9 ; skos:exactMatch sex:2", "skos:exactMatch sex:9, sex:2"),
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError, match="several codes"):
        load_skos_crosswalk(path, target="sex")
    path.write_text("this is not turtle", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_skos_crosswalk(path)
    with pytest.raises(ConfigError, match="not found"):
        load_skos_crosswalk(tmp_path / "missing.ttl")
    path.write_text(SKOS, encoding="utf-8")
    with pytest.raises(ConfigError, match="no concept links"):
        load_skos_crosswalk(path, target="entity-status")


def test_crosswalk_published_as_skos_reads_back(tmp_path: Path) -> None:
    table = {"男": "1", "M": "1", "女": "2", "未知": "0"}
    graph = crosswalk_to_skos(table, scheme_iri="https://example.org/county/code/xb", target="sex", title="性别")
    path = tmp_path / "xb.ttl"
    path.write_text(graph.serialize(format="turtle"), encoding="utf-8")
    assert load_skos_crosswalk(path, target="sex", scheme="https://example.org/county/code/xb") == table
    assert len(Graph().parse(path, format="turtle")) > 0
    assert standard_code("https://w3id.org/shulian/code/sex/1") == ("sex", "1")
    assert standard_code("https://example.org/x/1") is None


def test_mapping_with_skos_crosswalk_path_relative_to_the_mapping(write_mapping: Callable[..., Path],
                                                                  tmp_path: Path) -> None:  # fmt: skip
    (tmp_path / "xb.ttl").write_text(SKOS, encoding="utf-8")
    text = BASE.replace('map = { "男" = "1", "女" = "2" }', 'skos = "xb.ttl"\ntarget = "sex"\nignore_case = true')
    mapping = load_mapping(write_mapping(text))
    lookup = mapping.crosswalks["sex"].compile()
    assert lookup("男") == "1" and lookup("m") == "1" and lookup("不详") == "9"
