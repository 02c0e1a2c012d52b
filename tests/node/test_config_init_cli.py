"""`shulian init`: writes a working configuration (keys, certificate, federation membership)."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import cli
from node.config import load_config
from node.federation import load_directory, load_node_directory
from node.pki import check_peer, load_ca, load_encryption_key, load_signing_key

CODE_A = "91110000600037341L"
CODE_B = "91110108551385082Q"


def init(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["init", *args])
    return r.exit_code, r.stdout, r.stderr


def test_init_without_ca_writes_config_and_keys(tmp_path: Path) -> None:
    node = tmp_path / "node-a"
    code, out, err = init(str(node), "--department", "北京市某局", "--code", CODE_A, "--level", "city",
                          "--division", "110100", "--listen", "127.0.0.1:0")
    assert code == 0, err
    assert "next steps" in out
    cfg = load_config(node / "node.toml", env={}, check_files=False)
    assert cfg.department.name == "北京市某局" and cfg.department.code == CODE_A
    assert cfg.listen == "127.0.0.1:0" and cfg.durability == "full"
    assert cfg.store == node / "data" / "store.db"
    load_signing_key(cfg.signing_key)
    assert cfg.encryption_key is not None
    load_encryption_key(cfg.encryption_key)
    assert stat.S_IMODE(cfg.signing_key.stat().st_mode) == 0o600
    raw = tomllib.loads((node / "node.toml").read_text(encoding="utf-8"))
    assert raw["tls"] == {"ca": "tls/ca.pem", "cert": "tls/node.pem", "key": "tls/node.key"}


def test_init_with_ca_is_ready_to_run(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    assert CliRunner().invoke(cli, ["ca", "init", str(ca_dir)]).exit_code == 0
    code, out, err = init(str(tmp_path / "a"), "--department", "甲", "--code", CODE_A, "--level", "city",
                          "--division", "110100", "--listen", "127.0.0.1:50061", "--ca-dir", str(ca_dir))
    assert code == 0, err
    code, out, err = init(str(tmp_path / "b"), "--department", "乙", "--code", CODE_B, "--level", "county",
                          "--division", "110108", "--listen", "0.0.0.0:50062", "--address", "127.0.0.1:50062",
                          "--ca-dir", str(ca_dir), "--host", "node-b.example")
    assert code == 0, err
    ca = load_ca(ca_dir)
    for name, dept in (("a", CODE_A), ("b", CODE_B)):
        cfg = load_config(tmp_path / name / "node.toml", env={})  # every referenced file exists
        assert cfg.policy.hash_key is not None and len(cfg.policy.hash_key) == 32
        directory = load_node_directory(cfg)
        assert directory == load_directory(cfg.federation, ca.cert)
        assert check_peer(cfg.tls.cert.read_bytes(), cfg.tls.ca.read_bytes(), directory) == dept
    directory = load_directory(ca_dir / "federation.json", ca.cert)
    assert directory.member(CODE_B).address == "127.0.0.1:50062"
    assert directory.member(CODE_A).address == "127.0.0.1:50061"
    assert directory.version == 2


def test_init_refuses_overwrite_and_keeps_keys_with_force(tmp_path: Path) -> None:
    args = [str(tmp_path / "n"), "--department", "甲", "--code", CODE_A, "--level", "city", "--division", "110100"]
    assert init(*args)[0] == 0
    key_before = (tmp_path / "n" / "keys" / "signing.pem").read_bytes()
    code, _, err = init(*args)
    assert code == 2 and "exists" in err and err.startswith("error: ")
    assert init(*args, "--force")[0] == 0
    assert (tmp_path / "n" / "keys" / "signing.pem").read_bytes() == key_before


@pytest.mark.parametrize(("override", "message"), [
    (("--code", "91110000600037341M"), "--code: unified social credit code"),
    (("--division", "1101"), "--division: division code"),
    (("--listen", "nowhere"), "--listen: address"),
    (("--ca-dir", "{tmp}/missing-ca"), "no CA here"),
    (("--department", " "), "must not be empty"),
])
def test_init_bad_input_is_one_line_exit_2(tmp_path: Path, override: tuple[str, str], message: str) -> None:
    args = {"--department": "甲", "--code": CODE_A, "--level": "city", "--division": "110100"}
    args[override[0]] = override[1].replace("{tmp}", str(tmp_path))
    flat = [x for kv in args.items() for x in kv]
    code, _, err = init(str(tmp_path / "n"), *flat)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "n" / "node.toml").exists()


def test_init_help_has_example() -> None:
    r = CliRunner().invoke(cli, ["init", "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "shulian init" in r.output


@pytest.mark.integration
def test_real_command_prints_no_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "shulian"
    proc = subprocess.run([str(exe), "init", str(tmp_path / "x"), "--department", "甲", "--code", "bad",
                           "--level", "city", "--division", "110100"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --code") and "Traceback" not in proc.stderr
