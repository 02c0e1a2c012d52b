"""A node made the way an operator makes one: ``shulian init``, then ``shulian datasets add``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli

PROVIDER = "91110000600037341L"
CONSUMER = "11110000000000001R"
OTHER = "11110000000000002W"

POPULATION_ARGS = [
    "population", "--type", "Person", "--title-zh", "户籍人口基本信息", "--title-en", "Registered population",
    "--description", "户籍人口的公民身份号码、姓名、性别、民族、出生日期和户籍地。",
    "--resource-code", "101001001/000001", "--update-cycle", "每日", "--sharing-type", "有条件共享",
    "--sharing-conditions", "仅限履行法定职责所必需", "--sharing-basis", "《中华人民共和国个人信息保护法》第三十四条",
    "--keyword", "人口"]
LICENCES_ARGS = [
    "licences", "--type", "ElectronicLicense", "--title-zh", "居住证电子证照信息", "--title-en", "Residence permits",
    "--description", "居住证电子证照。", "--resource-code", "105002/000002", "--update-cycle", "实时",
    "--sharing-type", "无条件共享", "--sharing-method", "共享平台"]


def run(*args: str) -> Result:
    """``shulian ARGS`` through the real root group (stdout and stderr kept apart)."""
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def node_toml(tmp_path: Path) -> Path:
    """A node with a conditional Person dataset and an unconditional ElectronicLicense dataset."""
    node = tmp_path / "node"
    r = run("init", str(node), "--department", "北京市公安局", "--code", PROVIDER, "--level", "provincial",
            "--division", "110000", "--listen", "127.0.0.1:50051")
    assert r.exit_code == 0, r.stderr
    config = node / "node.toml"
    for args in (POPULATION_ARGS, LICENCES_ARGS):
        r = run("datasets", "add", *args, "--config", str(config))
        assert r.exit_code == 0, r.stderr
    return config
