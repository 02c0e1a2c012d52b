"""``shulian list``: import, show, export, grant, revoke, check, through the real root group."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from rdflib import Graph
from rdflib.compare import isomorphic

from node.cli import cli
from node.policy import load_list, load_validated, to_graph

from .conftest import EXAMPLES, PROVIDER, RSJ, YBJ


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def list_file(tmp_path):
    path = tmp_path / "list.ttl"
    shutil.copy(EXAMPLES / "valid" / "list.ttl", path)
    return path


def test_help_has_examples(runner):
    for args in (["list"], *[["list", c] for c in ("show", "import", "export", "grant", "revoke", "check")]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, args


def test_import_writes_a_valid_list(runner, tmp_path):
    out = tmp_path / "out.ttl"
    result = runner.invoke(
        cli, ["list", "import", str(EXAMPLES / "list-zh-gb18030.csv"), "-o", str(out), "--provider", PROVIDER]
    )
    assert result.exit_code == 0, result.output
    assert "imported 3 dataset(s), 2 grant(s) from 14 row(s) (gb18030)" in result.output
    assert "ignored columns: 备注" in result.output
    assert load_validated(out) == load_list(EXAMPLES / "valid" / "list.ttl")


def test_import_reports_bad_rows_and_writes_nothing(runner, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_bytes("信息资源代码,共享类型,信息项\nD1,部分共享,姓名\nD2,1,身份证\n".encode("gb18030"))
    out = tmp_path / "out.ttl"
    result = runner.invoke(cli, ["list", "import", str(csv), "-o", str(out)])
    assert result.exit_code == 2
    assert "row 2, column 共享类型 (B)" in result.output and "row 3, column 信息项 (C)" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_show_json_and_table(runner, list_file):
    result = runner.invoke(cli, ["list", "show", "--list", str(list_file), "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    rsj_id = next(
        r
        for r in rows
        if r["consumer"] == RSJ and r["item"] == "identityNumber" and r["dataset"] == "101/000001"
    )
    assert rsj_id["masking"] == "keep:6:4" and rsj_id["until"] == "2026-12-31"
    assert rsj_id["sharing_type_zh"] == "有条件共享" and rsj_id["purposes"] == ["社会保险参保资格审核"]
    withheld = next(r for r in rows if r["item"] == "ethnicity")
    assert withheld["sharing_type_zh"] == "不予共享" and withheld["basis"]
    secret = next(r for r in rows if r["dataset"] == "105/000009")
    assert secret["sharing_type"] == "3" and secret["basis"] == "《中华人民共和国保守国家秘密法》"
    table = runner.invoke(cli, ["list", "show", "--list", str(list_file)])
    assert table.exit_code == 0
    for text in ("有条件共享", "无条件共享", "不予共享", "keep:6:4", "全体成员"):
        assert text in table.output


def test_export_odrl(runner, list_file, tmp_path):
    result = runner.invoke(cli, ["list", "export", "--list", str(list_file), "--format", "odrl"])
    assert result.exit_code == 0
    exported = Graph().parse(data=result.output, format="json-ld")
    assert isomorphic(exported, to_graph(load_list(list_file)))
    out = tmp_path / "list.jsonld"
    result = runner.invoke(cli, ["list", "export", "--list", str(list_file), "-o", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text(encoding="utf-8"))["@context"]["odrl"]


def test_grant_then_revoke(runner, list_file):
    args = ["list", "grant", "--list", str(list_file), "--dataset", "101/000001", "--consumer", YBJ]
    args += ["--items", "identityNumber,性别", "--purpose", "医保待遇核查", "--purpose", "异地就医"]
    args += ["--until", "2027-06-30", "--mask", "identityNumber=keep:6:4", "--basis", "《医疗保障条例》"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    grant = load_validated(list_file).dataset("101/000001").grants_for(YBJ)[0]
    assert grant.items == ("identityNumber", "sex") and grant.purposes == ("医保待遇核查", "异地就医")
    assert grant.masking_map["identityNumber"].spec == "keep:6:4" and grant.basis == "《医疗保障条例》"
    assert grant.grant_id in result.output
    result = runner.invoke(
        cli, ["list", "revoke", "--list", str(list_file), "--dataset", "101/000001", "--consumer", YBJ]
    )
    assert result.exit_code == 0 and "revoked 1 grant(s)" in result.output
    assert load_validated(list_file).dataset("101/000001").grants_for(YBJ) == ()
    assert load_list(list_file).dataset("101/000001").grants_for(RSJ)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dataset", "101/000001", "--items", "ethnicity"], "withheld"),
        (["--dataset", "102/000001", "--items", "name"], "only to conditional"),
        (["--dataset", "999/000001", "--items", "name"], "not in the responsibility list"),
        (["--dataset", "101/000001", "--items", "name", "--mask", "name"], "--mask"),
        (["--dataset", "101/000001", "--items", "name", "--mask", "sex=redact"], "does not cover"),
    ],
)
def test_grant_errors_are_clear_and_leave_the_file(runner, list_file, extra, message):
    before = list_file.read_bytes()
    args = [
        "list",
        "grant",
        "--list",
        str(list_file),
        "--consumer",
        YBJ,
        "--purpose",
        "P",
        "--until",
        "2027-01-01",
    ]
    result = runner.invoke(cli, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert list_file.read_bytes() == before


def test_grant_bad_until(runner, list_file):
    args = ["list", "grant", "--list", str(list_file), "--dataset", "101/000001", "--consumer", YBJ]
    result = runner.invoke(cli, [*args, "--items", "name", "--purpose", "P", "--until", "2027-02-30"])
    assert result.exit_code == 2 and "--until '2027-02-30': not a real date" in result.output


def test_revoke_unknown_grant(runner, list_file):
    result = runner.invoke(
        cli, ["list", "revoke", "--list", str(list_file), "--dataset", "101/000001", "--consumer", YBJ]
    )
    assert result.exit_code == 2 and "has no grant for consumer" in result.output


def test_check(runner, list_file):
    ok = runner.invoke(cli, ["list", "check", "--list", str(list_file)])
    assert ok.exit_code == 0 and "conforms" in ok.output
    bad = runner.invoke(
        cli, ["list", "check", "--list", str(EXAMPLES / "invalid" / "grant-withheld-item.ttl"), "--json"]
    )
    assert bad.exit_code == 1
    assert [v["shape"] for v in json.loads(bad.output)["violations"]] == ["slp:GrantNotWithheld"]


def test_commands_refuse_an_invalid_list(runner):
    result = runner.invoke(
        cli, ["list", "show", "--list", str(EXAMPLES / "invalid" / "conditional-without-basis.ttl")]
    )
    assert result.exit_code == 1 and "slp:BasisRequired" in result.output


def test_missing_list_file(runner, tmp_path):
    result = runner.invoke(cli, ["list", "show", "--list", str(tmp_path / "nope.ttl")])
    assert result.exit_code == 2 and "no such file" in result.output
