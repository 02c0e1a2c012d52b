"""``shulian catalog show|export`` on a node made with ``shulian init`` and ``shulian datasets add``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from node.catalog.profile import validate_catalog
from node.config import load_config
from node.store import Store

from .conftest import run

VOID = Namespace("http://rdfs.org/ns/void#")
DATASET = URIRef("https://w3id.org/shulian/node/91110000600037341L/dataset/population")


@pytest.mark.parametrize("args", [["catalog"], ["catalog", "show"], ["catalog", "export"]])
def test_help_has_an_example(args: list[str]) -> None:
    r = run(*args, "--help")
    assert r.exit_code == 0 and "Example" in r.output


def _store_two_people(config: Path) -> None:
    cfg = load_config(config, env={}, check_files=False)
    with Store(cfg.store) as st:
        st.upsert_many("population", [(f"p{i}", {"id": f"p{i}"}) for i in range(2)])


def test_show_lists_datasets_with_counts(node_toml: Path) -> None:
    _store_two_people(node_toml)
    r = run("catalog", "show", "--config", str(node_toml))
    assert r.exit_code == 0, r.stderr
    for text in ("population", "户籍人口基本信息", "Person", "有条件共享", "licences", "无条件共享",
                 "passes the catalog profile"):
        assert text in r.stdout
    r = run("catalog", "show", "--config", str(node_toml), "--json")
    shown = json.loads(r.stdout)
    assert shown["conforms"] is True and shown["violations"] == []
    rows = {d["id"]: d for d in shown["datasets"]}
    assert rows["population"]["records"] == 2 and rows["population"]["modified"] is not None
    assert rows["licences"]["records"] == 0 and rows["licences"]["modified"] is None
    assert rows["population"]["sharing_type_zh"] == "有条件共享"


def test_export_turtle_and_json_ld_round_trip(node_toml: Path, tmp_path: Path) -> None:
    _store_two_people(node_toml)
    out = tmp_path / "catalog.ttl"
    r = run("catalog", "export", "--config", str(node_toml), "--format", "turtle", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert "wrote the catalog" in r.stderr
    turtle = Graph().parse(out, format="turtle")
    r = run("catalog", "export", "--config", str(node_toml), "--format", "json-ld")
    assert r.exit_code == 0, r.stderr
    jsonld = Graph().parse(data=r.stdout, format="json-ld")
    assert isomorphic(turtle, jsonld)
    assert turtle.value(DATASET, VOID.entities) == Literal(2)
    assert validate_catalog(out).conforms


def test_export_with_a_base_url(node_toml: Path) -> None:
    r = run("catalog", "export", "--config", str(node_toml), "--base-url", "https://psb.example:7443/")
    assert r.exit_code == 0, r.stderr
    g = Graph().parse(data=r.stdout, format="turtle")
    assert (URIRef("https://psb.example:7443/catalog"), None, None) in g
    r = run("catalog", "export", "--config", str(node_toml), "--base-url", "psb.example")
    assert r.exit_code == 2 and "absolute http(s) URL" in r.stderr


def test_a_catalog_breaking_the_profile_exits_1_naming_dataset_and_rule(node_toml: Path) -> None:
    text = node_toml.read_text("utf-8")
    node_toml.write_text(text.replace('sharing_conditions = "仅限履行法定职责所必需"\n', ""), encoding="utf-8")
    for command in ("show", "export"):
        r = run("catalog", command, "--config", str(node_toml))
        assert r.exit_code == 1, command
        line = r.stderr.strip()
        assert line.startswith("error: ") and "\n" not in line
        assert "dataset 'population'" in line and "sls:Dataset-conditionalSharingNeedsCondition" in line
    r = run("catalog", "export", "--config", str(node_toml))
    assert r.stdout == ""  # nothing served


def test_bad_input_is_one_line_exit_2_without_traceback(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    for args in (["catalog", "show", "--config", str(tmp_path / "missing.toml")], ["catalog", "export"]):
        r = subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, cwd=repo,
                           env={"PATH": "/usr/bin:/bin"}, timeout=120)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
