"""Fixtures for the kit's self-test: one node with the kit's fixture loaded, shared by the session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conformance_node_kit as kit  # noqa: E402


@pytest.fixture(scope="session")
def kit_node(tmp_path_factory: pytest.TempPathFactory) -> kit.KitNode:
    """A CA, a node made by `shulian init`, and the fixture written and loaded by `shulian-conform fixture`."""
    return kit.make_node(tmp_path_factory.mktemp("kit-node"))
