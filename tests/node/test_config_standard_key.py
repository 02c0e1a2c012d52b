"""[node] standard: the node validates against the standard folder its config names."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import cli
from node.config import load_config
from node.errors import ConfigError
from node.service import NodeCore
from node.store import Store

CODE = "91110000600037341L"


def _node(tmp_path: Path, standard: str) -> Path:
    ca = tmp_path / "ca"
    assert CliRunner().invoke(cli, ["ca", "init", str(ca)]).exit_code == 0
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "n"), "--department", "甲", "--code", CODE, "--level",
                                 "city", "--division", "110100", "--listen", "127.0.0.1:0", "--ca-dir", str(ca)])
    assert r.exit_code == 0, r.stderr
    path = tmp_path / "n" / "node.toml"
    text = path.read_text(encoding="utf-8").replace("[node]\n", f'[node]\nstandard = "{standard}"\n', 1)
    path.write_text(text, encoding="utf-8")
    return path


def test_node_validates_with_the_configured_standard(tmp_path: Path, full_standard: Path) -> None:
    cfg = load_config(_node(tmp_path, str(full_standard)), env={})
    assert cfg.standard == full_standard
    from node.pki import load_signing_key

    with Store(cfg.store) as store:
        core = NodeCore(cfg, store, signing_key=load_signing_key(cfg.signing_key))
        rec = {"id": "p1", "identityNumber": "11010519491231002X", "name": "王秀英", "sex": "2", "ethnicity": "01",
               "birthDate": "1949-12-31", "householdDivision": "110105"}
        assert core.validator.validate(rec, "Person").valid  # a county code: only the full list knows it


def test_a_folder_that_is_not_a_standard_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    with pytest.raises(ConfigError) as exc:
        load_config(_node(tmp_path, str(bogus)), env={})
    assert "node.standard" in str(exc.value) and "node.toml" in str(exc.value)
