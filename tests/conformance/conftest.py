"""Fixtures for the conformance kit's tests: runs of the shipped manifests, and a broken copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformance import Run, RunOptions, load_manifests, manifests_dir, run_cases
from node.standard._paths import ontology_dir


@pytest.fixture(scope="session")
def data_manifests() -> list[Path]:
    return [manifests_dir() / "records.ttl", manifests_dir() / "catalogs.ttl"]


@pytest.fixture(scope="session")
def shipped_run(full_standard: Path, data_manifests: list[Path]) -> Run:
    """The data manifests over the shipped examples, reference engine, full division list."""
    return run_cases(load_manifests(data_manifests), RunOptions(engine="shacl", standard_dir=full_standard))


@pytest.fixture()
def kit_copy(tmp_path: Path) -> Path:
    """A copy of the kit's manifests and the standard's examples with the same relative layout.

    Returns the copied manifests folder; the examples are at ``../../ontology/examples``.
    """
    root = tmp_path / "copy"
    shutil.copytree(manifests_dir(), root / "conformance" / "manifests")
    shutil.copytree(ontology_dir() / "examples", root / "ontology" / "examples")
    return root / "conformance" / "manifests"
