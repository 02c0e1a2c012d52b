"""Fixtures for the tests of the standard (vocabulary, code lists, divisions, catalog profile)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rdflib import Graph

_REPO = Path(__file__).resolve().parents[2]
_SHARED_DATA = _REPO / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def ontology_dir() -> Path:
    """The shipped standard in the source tree."""
    return _REPO / "ontology"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert _SHARED_DATA.is_dir(), f"shared test data not found at {_SHARED_DATA.resolve()} (expected <repo>/../shared/data)"
    return _SHARED_DATA


@pytest.fixture(scope="session")
def division_csvs(shared_data: Path) -> list[Path]:
    """The real national list: 31 provinces, ~340 prefectures, ~2,980 counties."""
    return [shared_data / "divisions" / f for f in ("provinces.csv", "cities.csv", "areas.csv")]


@pytest.fixture(scope="session")
def dcat_ap_shapes(shared_data: Path) -> Graph:
    """The official DCAT-AP 3.0.1 shapes (mandatory properties, cardinalities), read from the shared folder."""
    return Graph().parse(shared_data / "dcat-ap-3.0.1" / "shapes.ttl", format="turtle")


@pytest.fixture()
def standard_copy(tmp_path: Path, ontology_dir: Path) -> Path:
    """A writable copy of the shipped standard (ontology folder)."""
    dest = tmp_path / "ontology"
    shutil.copytree(ontology_dir, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest
