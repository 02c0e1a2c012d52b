"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed set of examples (a red CI must mean a regression, not a
# lucky draw); developers' runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
DIVISION_CSVS = [SHARED_DATA / "divisions" / n for n in ("provinces.csv", "cities.csv", "areas.csv")]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared test data is missing: expected {SHARED_DATA} (a checkout of shared/ beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def full_standard(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A copy of the shipped standard with the full real division list imported."""
    from node.standard._paths import ontology_dir
    from node.standard.divisions import import_divisions

    target = tmp_path_factory.mktemp("standard") / "ontology"
    shutil.copytree(ontology_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    import_divisions(DIVISION_CSVS, target)
    return target
