"""`shulian audit verify|tail|export` against a node made with `shulian init`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from node.config import load_config
from node.evidence import EvidenceLog
from node.pki import load_signing_key
from node.store import Store

CODE = "91110000600037341L"
PEER = "91110108551385082Q"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture()
def node(tmp_path: Path) -> Path:
    r = run("init", str(tmp_path / "n"), "--department", "甲", "--code", CODE, "--level", "city",
            "--division", "110100")
    assert r.exit_code == 0, r.output
    cfg_path = tmp_path / "n" / "node.toml"
    cfg = load_config(cfg_path, env={}, check_files=False)
    with Store(cfg.store) as store:
        log = EvidenceLog(store, load_signing_key(cfg.signing_key))
        log.append_many([("access.granted", PEER, {"dataset": "population", "i": i}) for i in range(12)])
    return cfg_path


def tamper(cfg_path: Path, sql: str) -> None:
    cfg = load_config(cfg_path, env={}, check_files=False)
    with Store(cfg.store) as store, store.transaction() as conn:
        for statement in sql.split(";"):
            conn.execute(statement)


def test_verify_ok(node: Path) -> None:
    r = run("audit", "verify", "--config", str(node))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ok: 12 entries verified; head seq 12")


@pytest.mark.parametrize(("sql", "expected"), [
    ("UPDATE evidence SET details = '{\"i\":77}' WHERE seq = 7", "seq 7: altered"),
    ("DELETE FROM evidence WHERE seq = 4", "seq 4: removed"),
    ("UPDATE evidence SET seq = -9 WHERE seq = 9; UPDATE evidence SET seq = 9 WHERE seq = 10;"
     "UPDATE evidence SET seq = 10 WHERE seq = -9", "seq 9: reordered"),
])
def test_verify_names_the_bad_seq(node: Path, sql: str, expected: str) -> None:
    tamper(node, sql)
    r = run("audit", "verify", "--config", str(node))
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0].startswith(expected), r.stdout
    assert "FAILED" in r.stdout
    r = run("audit", "verify", "--config", str(node), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["ok"] is False


def test_tail_table_json_and_anchor(node: Path) -> None:
    r = run("audit", "tail", "--config", str(node), "-n", "3", "--json")
    assert r.exit_code == 0, r.output
    entries = json.loads(r.stdout)
    assert [e["seq"] for e in entries] == [10, 11, 12] and entries[0]["kind"] == "access.granted"
    r = run("audit", "tail", "--config", str(node), "-n", "2")
    assert r.exit_code == 0 and "access.granted" in r.stdout
    anchor = r.stdout.strip().splitlines()[-1].removeprefix("anchor: ")
    assert anchor == f"12:{entries[-1]['hash']}"
    assert run("audit", "verify", "--config", str(node), "--anchor", anchor).exit_code == 0
    tamper(node, "DELETE FROM evidence WHERE seq = 12")
    r = run("audit", "verify", "--config", str(node), "--anchor", anchor)
    assert r.exit_code == 1 and "seq 12: anchor" in r.stdout


def test_export_and_verify_file_with_public_key(node: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.jsonl"
    r = run("audit", "export", "--config", str(node), "--out", str(out))
    assert r.exit_code == 0 and "exported 12" in r.stdout
    key = node.parent / "keys" / "signing.pem"
    assert run("audit", "verify", "--file", str(out), "--public-key", str(key)).exit_code == 0
    store = node.parent / "data" / "store.db"
    assert run("audit", "verify", "--store", str(store), "--public-key", str(key)).exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["audit", "verify"], "give --config"),
    (["audit", "verify", "--store", "{tmp}/none.db", "--public-key", "{tmp}/k"], "not found"),
    (["audit", "verify", "--file", "{tmp}/e.jsonl"], "needs --public-key"),
    (["audit", "tail", "--store", "{tmp}/none.db"], "no store there"),
    (["audit", "verify", "--config", "{tmp}/none.toml"], "configuration file not found"),
    (["audit", "verify", "--config", "{cfg}", "--anchor", "12"], "--anchor"),
])
def test_errors_are_one_line(node: Path, tmp_path: Path, args: list[str], message: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHULIAN_CONFIG", raising=False)
    r = run(*[a.replace("{tmp}", str(tmp_path)).replace("{cfg}", str(node)) for a in args])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stderr.count("\n") == 1


def test_help_has_examples() -> None:
    for sub in ([], ["verify"], ["tail"], ["export"]):
        r = run("audit", *sub, "--help")
        assert r.exit_code == 0 and "Example" in r.output and "shulian audit" in r.output
