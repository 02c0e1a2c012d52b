"""`shulian-conform fixture init|load` and the parameter file: what lands in the node, and clear errors."""

from __future__ import annotations

import datetime as dt
import json
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance_node_kit import KitNode, invoke, make_node, messages, outcomes

from conformance.fixture import PARAMS, default_fixture, read_fixture, read_params
from node.errors import InputError
from node.federation import load_node_directory
from node.policy import load_list
from node.store import Store


def test_init_writes_the_ca_independent_pieces(tmp_path: Path) -> None:
    d = tmp_path / "fx"
    r = invoke(["fixture", "init", str(d)])
    assert r.exit_code == 0, r.output
    fixture = read_fixture(d)
    assert fixture == default_fixture()
    assert {p.name for p in (d / "records").iterdir()} == {f"{ds.id}.jsonl" for ds in fixture.datasets}
    for c in fixture.consumers:
        assert {p.name for p in (d / "consumers" / c.role).iterdir()} == {"signing.pem", "encryption.pem"}
    readme = (d / "FIXTURE.md").read_text(encoding="utf-8")
    assert fixture.consumer("granted").code in readme and "keep:6:4" in readme
    key = (d / "consumers" / "granted" / "signing.pem").read_bytes()
    again = invoke(["fixture", "init", str(d)])
    assert again.exit_code == 2 and "--force" in again.output
    assert invoke(["fixture", "init", str(d), "--force"]).exit_code == 0
    assert (d / "consumers" / "granted" / "signing.pem").read_bytes() == key  # keys are kept


def test_the_fixture_records_conform_and_the_grants_are_as_documented() -> None:
    from node.validation import get_validator

    fixture = default_fixture()
    v = get_validator("fast")
    for ds in fixture.datasets:
        for r in ds.records:
            report = v.validate(dict(r), ds.record_type)
            assert report.valid, (r["id"], report.violations, report.error)
    granted = fixture.grant("granted")
    assert set(granted.items) == {"birthDate", "identityNumber", "name"}
    assert granted.until == dt.date(2099, 12, 31) and fixture.grant("expired").until == dt.date(2020, 1, 1)
    assert fixture.ungranted_item not in granted.items and fixture.other_purpose not in granted.purposes


def test_load_puts_the_fixture_into_the_node(kit_node: KitNode) -> None:
    cfg = kit_node.config()
    fixture = read_fixture(kit_node.fixture_dir)
    assert {d.id for d in fixture.datasets} <= {d.id for d in cfg.datasets}
    assert fixture.consumer("granted").code in {p.code for p in cfg.peers}
    directory = load_node_directory(cfg)  # signature verified with the federation CA
    assert {c.code for c in fixture.consumers} <= directory.codes
    assert cfg.responsibility_list is not None
    policy = load_list(cfg.responsibility_list)
    cond = policy.dataset(fixture.dataset("conditional").id)
    by_consumer = {g.consumer_code: g for g in cond.grants}
    grant = by_consumer[fixture.consumer("granted").code]
    assert {k: r.spec for k, r in grant.masking} == {"identityNumber": "keep:6:4", "name": "keep-first:1"}
    assert policy.dataset(fixture.dataset("not_shared").id).basis_text == fixture.dataset("not_shared").basis
    with Store(cfg.store) as store:
        for ds in fixture.datasets:
            assert {r.id for r in store.iter_records(ds.id)} >= {str(r["id"]) for r in ds.records}
    params = read_params(kit_node.params)
    assert set(PARAMS) - set(params) == {"tls_server_name"}
    assert Path(kit_node.fixture_dir / params["cert"]).is_file()  # relative to the parameter file
    assert params["params_dir"] == str(kit_node.params.parent.resolve())
    assert (kit_node.config_path.parent / "node.toml.before-fixture").is_file()


def test_load_twice_changes_nothing_but_the_certificates(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    before = tomllib.loads(node.config_path.read_text(encoding="utf-8"))
    members = len(load_node_directory(node.config()))
    r = invoke(["fixture", "load", str(node.fixture_dir), "--config", str(node.config_path), "--ca-dir",
                str(node.ca_dir), "--params", str(tmp_path / "elsewhere" / "p.toml")])
    assert r.exit_code == 0, r.output
    assert tomllib.loads(node.config_path.read_text(encoding="utf-8")) == before
    assert len(load_node_directory(node.config())) == members
    with Store(node.config().store) as store:
        assert store.count_records("conformance-people") == 6
    moved = read_params(tmp_path / "elsewhere" / "p.toml")
    assert (tmp_path / "elsewhere" / moved["ca"]).resolve() == (node.fixture_dir / "ca.pem").resolve()


def test_load_refuses_another_ca_and_a_missing_fixture(kit_node: KitNode, tmp_path: Path) -> None:
    other = tmp_path / "other-ca"
    assert invoke(["ca", "init", str(other)], node_cli=True).exit_code == 0
    before = kit_node.config_path.read_bytes()
    r = invoke(["fixture", "load", str(kit_node.fixture_dir), "--config", str(kit_node.config_path), "--ca-dir",
                str(other)])
    assert r.exit_code == 2 and "not the federation CA the node trusts" in r.output
    assert kit_node.config_path.read_bytes() == before
    (tmp_path / "empty").mkdir()
    r = invoke(["fixture", "load", str(tmp_path / "empty"), "--config", str(kit_node.config_path), "--ca-dir",
                str(kit_node.ca_dir)])
    assert r.exit_code == 2 and "fixture init" in r.output and "Traceback" not in r.output


def test_parameter_files_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("granted_items = [1, 2]\n", encoding="utf-8")
    with pytest.raises(InputError, match="granted_items must be a string"):
        read_params(bad)
    bad.write_text("not toml at all = = \n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        read_params(bad)
    ok = tmp_path / "ok.toml"
    ok.write_text('granted_items = ["name", "sex"]\nretries = 3\n', encoding="utf-8")
    assert read_params(ok) == {"granted_items": "name,sex", "retries": "3", "params_dir": str(tmp_path.resolve())}
    r = invoke(["node", "--target", "127.0.0.1:9", "--params", str(tmp_path / "missing.toml"), "--out",
                str(tmp_path / "r")])
    assert r.exit_code == 2 and "no such file" in r.output


@pytest.fixture()
def listening() -> Iterator[str]:
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


def test_without_credentials_every_case_says_what_to_pass(listening: str, tmp_path: Path) -> None:
    r = invoke(["node", "--target", listening, "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    got, said = outcomes(summary), messages(summary)
    implemented = {i for i, o in got.items() if o not in ("untested", "inapplicable")}  # KFK: no --kafka
    assert implemented and {got[i] for i in implemented} == {"cantTell"}
    assert all("--params FILE" in said[i] for i in implemented), said
    assert r.exit_code == 1
