"""node.catalog.registry: adding datasets (node.toml + store) and loading records with evidence."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from node.catalog import CatalogProfileError
from node.catalog.registry import (
    SourceLine,
    add_dataset,
    dataset_rows,
    dataset_table,
    load_records,
    register_dataset,
)
from node.config import NodeConfig, load_config
from node.errors import AlreadyExists, ConfigError, InputError
from node.evidence import PUSH_ACCEPTED, PUSH_REJECTED, EvidenceLog
from node.pki import load_signing_key
from node.standard._paths import ontology_dir
from node.store import Store
from node.validation import get_validator

from .conftest import LICENCES

PERSON_EXAMPLES = ontology_dir() / "examples" / "Person"
VALID = sorted((PERSON_EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((PERSON_EXAMPLES / "invalid").glob("*.json"))
NEW = dataset_table(
    id="enterprises", record_type="LegalEntity", title_zh="法人单位基础信息", title_en="Legal entities",
    description="本市登记的法人单位基础信息。", resource_code="102001/000003", update_cycle="每月",
    sharing_type="无条件共享", keywords=["法人"])


def _lines() -> list[SourceLine]:
    """The standard's Person examples: the valid ones first, then every invalid one, then junk."""
    out = [SourceLine(n, json.loads(p.read_text("utf-8"))) for n, p in enumerate(VALID + INVALID, start=1)]
    out.append(SourceLine(len(out) + 1, error="Expecting value: line 1 column 1 (char 0)"))
    return out


# ---------------------------------------------------------------------------------------------
# add_dataset / register_dataset
# ---------------------------------------------------------------------------------------------


def test_add_appends_the_table_and_keeps_the_file_as_it_was(node_cfg: NodeConfig) -> None:
    path = node_cfg.path
    before = path.read_text("utf-8") + "# an operator's note\n"
    path.write_text(before, encoding="utf-8")
    os.chmod(path, 0o640)
    cfg = add_dataset(path, NEW)
    after = path.read_text("utf-8")
    assert after.startswith(before)  # comments and layout untouched: the table is appended
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [d.id for d in cfg.datasets] == ["population", "licences", "secret-units", "enterprises"]
    loaded = load_config(path, env={}, check_files=False)
    assert loaded.dataset("enterprises").catalog.keywords == ("法人",)
    assert loaded.dataset("enterprises").catalog.sharing_type == "unconditional"
    assert not path.with_name(path.name + ".tmp").exists()


def test_add_refuses_what_would_not_load_or_not_pass_the_profile(node_cfg: NodeConfig) -> None:
    path = node_cfg.path
    before = path.read_bytes()
    with pytest.raises(AlreadyExists, match="'licences' is already configured"):
        add_dataset(path, LICENCES)
    bad_code = {**NEW, "catalog": {**NEW["catalog"], "resource_code": "102-001"}}
    with pytest.raises(ConfigError, match=r"\[datasets\[3\]\.catalog\.resource_code\]"):
        add_dataset(path, bad_code)
    no_conditions = {**NEW, "catalog": {**NEW["catalog"], "sharing_type": "有条件共享", "sharing_basis": "《条例》"}}
    with pytest.raises(CatalogProfileError, match="dataset 'enterprises'.*Dataset-conditionalSharingNeedsCondition"):
        add_dataset(path, no_conditions)
    assert path.read_bytes() == before  # nothing written


def test_register_puts_type_publish_flag_and_metadata_in_the_store(node_cfg: NodeConfig, store: Store) -> None:
    cfg = add_dataset(node_cfg.path, {**NEW, "kafka_publish": True})
    register_dataset(store, cfg.dataset("enterprises"))
    info = store.get_dataset("enterprises")
    assert info.record_type == "LegalEntity" and info.publish
    assert info.metadata["resource_code"] == "102001/000003" and info.metadata["title_zh"] == "法人单位基础信息"
    rows = {r["id"]: r for r in dataset_rows(cfg, store)}
    assert rows["enterprises"]["registered"] and not rows["population"]["registered"]
    store.ensure_dataset("legacy", "Person")  # in the store, not configured
    rows = {r["id"]: r for r in dataset_rows(cfg, store)}
    assert rows["legacy"]["configured"] is False and rows["legacy"]["sharing_type"] is None


# ---------------------------------------------------------------------------------------------
# load_records
# ---------------------------------------------------------------------------------------------


def test_load_stores_valid_records_rejects_the_rest_and_leaves_evidence_per_batch(
        node_cfg: NodeConfig, store: Store, full_standard: Path) -> None:
    key = load_signing_key(node_cfg.signing_key)
    evidence = EvidenceLog(store, key)
    lines = _lines()
    result = load_records(store, evidence, node_cfg.dataset("population"), lines,
                          validator=get_validator("fast", standard_dir=full_standard), actor="operator:test",
                          source="people.jsonl", batch_size=4)
    assert result.read == len(lines) and result.batches == -(-len(lines) // 4)
    assert result.accepted == result.changed == len(VALID)
    # every invalid example is rejected for the rule its file name gives, with its line
    by_line = {r.line: r for r in result.rejected}
    assert sorted(by_line) == list(range(len(VALID) + 1, len(lines) + 1))
    for n, path in enumerate(INVALID, start=len(VALID) + 1):
        field, constraint = path.stem.split("__")
        assert (field, constraint) in {(v.path, v.constraint) for v in by_line[n].violations}, path.name
    assert by_line[len(lines)].reason.startswith("unreadable: ") and by_line[len(lines)].id is None

    assert store.count_records("population") == len({json.loads(p.read_text("utf-8"))["id"] for p in VALID})
    stored = store.get_record("population", "person-110105-0001")
    assert stored is not None and stored.data == json.loads((PERSON_EXAMPLES / "valid" / "beijing-chaoyang.json")
                                                            .read_text("utf-8"))
    entries = list(evidence.entries())
    accepted = [e for e in entries if e.kind == PUSH_ACCEPTED]
    rejected = [e for e in entries if e.kind == PUSH_REJECTED]
    assert sum(e.details["count"] for e in accepted) == result.accepted
    assert sum(e.details["count"] for e in rejected) == len(result.rejected)
    assert {e.actor for e in entries} == {"operator:test"}
    assert all(e.details["dataset"] == "population" and e.details["source"] == "people.jsonl" for e in entries)
    assert sorted(r["line"] for e in rejected for r in e.details["rejects"]) == sorted(by_line)
    assert evidence.verify().ok


def test_load_registers_the_dataset_and_reloading_changes_nothing(node_cfg: NodeConfig, store: Store,
                                                                   full_standard: Path) -> None:
    evidence = EvidenceLog(store, load_signing_key(node_cfg.signing_key))
    lines = [SourceLine(1, json.loads(VALID[0].read_text("utf-8")))]
    validator = get_validator("fast", standard_dir=full_standard)
    seen: list[int] = []
    first = load_records(store, evidence, node_cfg.dataset("population"), lines, validator=validator,
                         actor="operator:t", source="a.jsonl", progress=seen.append)
    assert store.get_dataset("population").record_type == "Person"
    again = load_records(store, evidence, node_cfg.dataset("population"), lines, validator=validator,
                         actor="operator:t", source="a.jsonl")
    assert (first.accepted, first.changed, again.accepted, again.changed) == (1, 1, 1, 0)
    assert seen == [1]
    with pytest.raises(InputError, match="batch size"):
        load_records(store, evidence, node_cfg.dataset("population"), lines, validator=validator,
                     actor="operator:t", source="a.jsonl", batch_size=0)


_WRITER = """
import sys
import time
from pathlib import Path
from node.evidence import EvidenceLog
from node.pki import load_signing_key
from node.store import Store
store_path, key_path, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
n = 0
with Store(store_path) as store:
    log = EvidenceLog(store, load_signing_key(Path(key_path)))
    store.ensure_dataset("daemon-side", "Person")
    while not stop.exists() or n < 20:
        with store.transaction():
            store.upsert("daemon-side", f"d{n}", {"id": f"d{n}"})
            log.append("records.received", "node", {"dataset": "daemon-side", "count": 1})
        n += 1
        if n == 1:
            print("writing", flush=True)
        time.sleep(0.002)  # a busy daemon, not a saturating one
print(n, flush=True)
"""


@pytest.mark.integration
def test_load_runs_safely_beside_another_writer_process(node_cfg: NodeConfig, full_standard: Path,
                                                         tmp_path: Path) -> None:
    """A second process keeps writing records and evidence (as the daemon does) the whole time records load."""
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(node_cfg.store), str(node_cfg.signing_key),
                               str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing", writer.stderr.read() if writer.stderr else ""
        with Store(node_cfg.store) as store:
            evidence = EvidenceLog(store, load_signing_key(node_cfg.signing_key))
            valid = json.loads(VALID[0].read_text("utf-8"))
            lines = [SourceLine(i + 1, {**valid, "id": f"p{i}"}) for i in range(300)]
            result = load_records(store, evidence, node_cfg.dataset("population"), lines,
                                  validator=get_validator("fast", standard_dir=full_standard),
                                  actor="operator:t", source="big.jsonl", batch_size=20)
            stop.touch()
            out, err = writer.communicate(timeout=240)
            assert writer.returncode == 0, err
            writes = int(out.strip())
            assert result.accepted == 300 and not result.rejected
            assert store.count_records("population") == 300
            assert store.count_records("daemon-side") == writes
            kinds = [e.kind for e in evidence.entries()]
            assert kinds.count("records.received") == writes and kinds.count(PUSH_ACCEPTED) == 15
            assert evidence.verify().ok  # one chain, both writers' entries in it
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()


def test_configured_dataset_ids_are_store_ids(make_node: Callable[..., NodeConfig]) -> None:
    cfg = make_node([{**NEW, "id": "a.b-c_1"}])
    raw = tomllib.loads(cfg.path.read_text("utf-8"))
    assert raw["datasets"][0]["id"] == "a.b-c_1"
    with Store(cfg.store) as st:
        register_dataset(st, cfg.dataset("a.b-c_1"))
        assert st.get_dataset("a.b-c_1").metadata["resource_code"] == "102001/000003"
