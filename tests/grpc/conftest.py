"""Fixtures for the gRPC tests: a federation built once per session, copied per test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc_testkit as kit  # noqa: E402

POPULATION = 1200
ENTERPRISES = 20


@pytest.fixture(scope="session")
def federation_template(tmp_path_factory: pytest.TempPathFactory) -> kit.Federation:
    root = tmp_path_factory.mktemp("federation")
    fed = kit.make_federation(root)
    cfg = fed.provider.config()
    kit.load_records(cfg, "population", [kit.person(i) for i in range(POPULATION)])
    kit.load_records(cfg, "enterprises", [kit.enterprise(i) for i in range(ENTERPRISES)])
    return fed


def _copy(template: kit.Federation, tmp_path: Path) -> kit.Federation:
    nodes: dict[str, kit.Node] = {}
    for name, node in template.nodes.items():
        target = tmp_path / name
        shutil.copytree(node.dir, target)
        nodes[name] = kit.Node(name, node.code, target)
    return kit.Federation(template.root, template.ca_dir, nodes)


@pytest.fixture()
def fed(federation_template: kit.Federation, tmp_path: Path) -> kit.Federation:
    """A private copy of the federation (its nodes' folders; the CA and directory are shared, read-only)."""
    return _copy(federation_template, tmp_path)


@pytest.fixture(scope="module")
def module_fed(federation_template: kit.Federation, tmp_path_factory: pytest.TempPathFactory) -> kit.Federation:
    """A copy shared by one module's tests (for property tests, which run many examples)."""
    return _copy(federation_template, tmp_path_factory.mktemp("module-fed"))
