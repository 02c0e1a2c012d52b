"""``shulian datasets list|add|load``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import load_config
from node.evidence import EvidenceLog
from node.pki import load_signing_key
from node.standard._paths import ontology_dir
from node.store import Store

from .conftest import LICENCES_ARGS, POPULATION_ARGS, run

PERSON_EXAMPLES = ontology_dir() / "examples" / "Person"


@pytest.mark.parametrize("args", [["datasets"], *[["datasets", c] for c in ("list", "add", "load")]])
def test_help_has_an_example(args: list[str]) -> None:
    r = run(*args, "--help")
    assert r.exit_code == 0 and "Example" in r.output


def test_add_writes_the_config_and_registers_in_the_store(node_toml: Path) -> None:
    cfg = load_config(node_toml, env={}, check_files=False)
    assert [d.id for d in cfg.datasets] == ["population", "licences"]
    assert cfg.dataset("population").catalog.sharing_conditions == "仅限履行法定职责所必需"
    with Store(cfg.store) as st:
        assert {d.id: d.record_type for d in st.list_datasets()} == {"population": "Person",
                                                                      "licences": "ElectronicLicense"}
    r = run("datasets", "list", "--config", str(node_toml), "--json")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["id"], x["records"], x["configured"], x["registered"]) for x in rows] == [
        ("population", 0, True, True), ("licences", 0, True, True)]
    r = run("datasets", "list", "--config", str(node_toml))
    assert r.exit_code == 0 and "101001001/000001" in r.stdout and "config + store" in r.stdout


def test_add_refuses_duplicates_and_catalog_breaking_metadata(node_toml: Path) -> None:
    before = node_toml.read_bytes()
    r = run("datasets", "add", *POPULATION_ARGS, "--config", str(node_toml))
    assert r.exit_code == 2 and "already configured" in r.stderr
    r = run("datasets", "add", *["extra" if a == "licences" else a for a in LICENCES_ARGS],
            "--sharing-method", "飞鸽传书", "--config", str(node_toml))
    assert r.exit_code == 2 and "sharing_method" in r.stderr and "飞鸽传书" in r.stderr
    args = ["conditional", *POPULATION_ARGS[1:POPULATION_ARGS.index("--sharing-conditions")],
            "--sharing-basis", "《条例》"]
    r = run("datasets", "add", *args, "--config", str(node_toml))
    assert r.exit_code == 1 and "Dataset-conditionalSharingNeedsCondition" in r.stderr
    r = run("datasets", "add", *POPULATION_ARGS[:2], "--config", str(node_toml))  # required options missing
    assert r.exit_code == 2
    assert node_toml.read_bytes() == before


def _write_mixed(path: Path) -> list[Path]:
    """Valid Person examples, then invalid ones, a line that is not JSON and a blank line."""
    files = sorted((PERSON_EXAMPLES / "valid").glob("*.json")) + sorted((PERSON_EXAMPLES / "invalid").glob("*.json"))
    lines = [json.dumps(json.loads(p.read_text("utf-8")), ensure_ascii=False) for p in files]
    path.write_text("\n".join([*lines, "{not json", ""]) + "\n", encoding="utf-8")
    return files


def test_load_mixed_valid_and_invalid_records(node_toml: Path, tmp_path: Path, full_standard: Path) -> None:
    source = tmp_path / "people.jsonl"
    files = _write_mixed(source)
    valid = [p for p in files if p.parent.name == "valid"]
    r = run("datasets", "load", str(source), "--config", str(node_toml), "--dataset", "population",
            "--standard", str(full_standard), "--batch-size", "7", "--operator", "王")
    assert r.exit_code == 1, r.stderr  # some rejected
    for n, p in enumerate(files, start=1):
        if p.parent.name == "invalid":
            field, constraint = p.stem.split("__")
            assert f"people.jsonl:{n} " in r.stdout and "REJECTED" in r.stdout, p.name
            assert f"[{constraint}]" in r.stdout
    assert f"people.jsonl:{len(files) + 1} (no id): REJECTED: unreadable" in r.stdout
    summary = r.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"population: {len(files) + 1} read, {len(valid)} stored")
    assert f"{len(files) + 1 - len(valid)} rejected" in summary

    cfg = load_config(node_toml, env={}, check_files=False)
    with Store(cfg.store) as st:
        assert st.count_records("population") == len(valid)
        log = EvidenceLog(st, load_signing_key(cfg.signing_key))
        entries = list(log.entries())
        assert {e.kind for e in entries} == {"push.accepted", "push.rejected"}
        assert {e.actor for e in entries} == {"operator:王"}
        assert sum(e.details["count"] for e in entries if e.kind == "push.accepted") == len(valid)
        assert log.verify().ok

    r = run("datasets", "load", str(source), "--config", str(node_toml), "--dataset", "population",
            "--standard", str(full_standard), "--json")
    result = json.loads(r.stdout)
    assert r.exit_code == 1 and result["accepted"] == len(valid) and result["changed"] == 0
    assert {x["line"] for x in result["rejected"]} == set(range(len(valid) + 1, len(files) + 2))


def test_load_of_valid_records_exits_0_and_counts_show_in_the_catalog(node_toml: Path, tmp_path: Path) -> None:
    source = tmp_path / "people.json"  # a JSON array works too
    people = [{"id": f"p{i}", "type": "Person", "identityNumber": "11010519491231002X", "name": "王秀英",
               "sex": "2", "ethnicity": "01", "birthDate": "1949-12-31", "householdDivision": "110000"}
              for i in range(3)]
    source.write_text(json.dumps(people, ensure_ascii=False), encoding="utf-8")
    r = run("datasets", "load", str(source), "--config", str(node_toml), "--dataset", "population")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "3 read, 3 stored (3 new or changed), 0 rejected" in r.stdout
    rows = json.loads(run("catalog", "show", "--config", str(node_toml), "--json").stdout)["datasets"]
    assert {x["id"]: x["records"] for x in rows} == {"population": 3, "licences": 0}


def test_load_bad_input_exits_2(node_toml: Path, tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text("{}\n", encoding="utf-8")
    r = run("datasets", "load", str(source), "--config", str(node_toml), "--dataset", "nope")
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "'nope' is not configured" in r.stderr
    r = run("datasets", "load", str(tmp_path / "missing.jsonl"), "--config", str(node_toml), "--dataset", "population")
    assert r.exit_code == 2


@pytest.mark.integration
def test_load_from_a_process_beside_a_writing_one(node_toml: Path, tmp_path: Path) -> None:
    """Two `shulian datasets load` processes on one store at once: both finish, nothing lost."""
    cfg = load_config(node_toml, env={}, check_files=False)
    person = {"type": "Person", "identityNumber": "11010519491231002X", "name": "王秀英", "sex": "2",
              "ethnicity": "01", "birthDate": "1949-12-31", "householdDivision": "110000"}
    procs = []
    for name in ("a", "b"):
        source = tmp_path / f"{name}.jsonl"
        source.write_text("".join(json.dumps({"id": f"{name}{i}", **person}) + "\n" for i in range(400)),
                          encoding="utf-8")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "node.cli", "datasets", "load", str(source), "--config", str(node_toml),
             "--dataset", "population", "--batch-size", "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, out + err
    with Store(cfg.store) as st:
        assert st.count_records("population") == 800
        log = EvidenceLog(st, load_signing_key(cfg.signing_key))
        assert sum(e.details["count"] for e in log.entries()) == 800 and log.verify().ok
