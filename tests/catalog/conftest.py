"""A configured node (node.toml made with node.config.new_config_dict, a signing key, three datasets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.catalog.registry import dataset_table
from node.config import NodeConfig, load_config, new_config_dict, write_config_file
from node.pki import generate_signing_key
from node.store import Store

PROVIDER = "91110000600037341L"
CONSUMER = "11110000000000001R"

# one dataset of each sharing type, over three record types
POPULATION = dataset_table(
    id="population", record_type="Person", title_zh="户籍人口基本信息", title_en="Registered population",
    description="户籍人口的公民身份号码、姓名、性别、民族、出生日期和户籍地。", resource_code="101001001/000001",
    update_cycle="每日", sharing_type="有条件共享", sharing_conditions="仅限履行法定职责所必需",
    sharing_basis="《中华人民共和国个人信息保护法》第三十四条", keywords=["人口", "population"])
LICENCES = dataset_table(
    id="licences", record_type="ElectronicLicense", title_zh="居住证电子证照信息", title_en="Residence permits",
    description="居住证电子证照：证照编号、持证人、发证机关和有效期。", resource_code="105002/000002",
    update_cycle="irregular", sharing_type="unconditional", sharing_method="共享平台", open_to_public=True)
SECRET = dataset_table(
    id="secret-units", record_type="LegalEntity", title_zh="涉密单位信息", title_en="Classified units",
    description="涉密单位的法人信息。", resource_code="3010001/1", update_cycle="yearly", sharing_type="不予共享",
    sharing_basis="《中华人民共和国保守国家秘密法》")


def write_node(directory: Path, datasets: list[dict[str, Any]], **extra: Any) -> Path:
    """node.toml (department, store, keys) with ``datasets``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    data = new_config_dict(name="北京市公安局", code=PROVIDER, level="provincial", division="110000",
                           listen="127.0.0.1:50051", federation="federation.json")
    data["datasets"] = datasets
    data.update(extra)
    generate_signing_key(directory / "keys" / "signing.pem")
    path = directory / "node.toml"
    write_config_file(path, data)
    return path


@pytest.fixture
def make_node(tmp_path: Path) -> Callable[..., NodeConfig]:
    def make(datasets: list[dict[str, Any]] | None = None, name: str = "node", **extra: Any) -> NodeConfig:
        path = write_node(tmp_path / name, [POPULATION, LICENCES, SECRET] if datasets is None else datasets,
                          **extra)
        return load_config(path, env={}, check_files=False)

    return make


@pytest.fixture
def node_cfg(make_node: Callable[..., NodeConfig]) -> NodeConfig:
    return make_node()


@pytest.fixture
def store(node_cfg: NodeConfig) -> Iterator[Store]:
    with Store(node_cfg.store) as st:
        yield st
