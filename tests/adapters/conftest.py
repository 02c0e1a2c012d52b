"""Fixtures for the adapter tests: the real division list, the standard with it imported, a validator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "adapters" / "examples"


@pytest.fixture(scope="session")
def division_csvs(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "divisions").glob("*.csv"))


@pytest.fixture(scope="session")
def division_index(division_csvs: list[Path]) -> Any:
    from adapters.normalise import DivisionIndex, load_division_csvs

    return DivisionIndex(load_division_csvs(division_csvs))


@pytest.fixture(scope="session")
def validator(full_standard: Path) -> Any:
    """The standard's fast validator over the standard with every division imported."""
    from adapters.engine import load_validator

    return load_validator(full_standard)


@pytest.fixture(scope="session")
def divisions_from_standard(full_standard: Path) -> Callable[[], Any]:
    from adapters.engine import division_source

    return division_source((), full_standard)


@pytest.fixture
def write_mapping(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a mapping file (TOML by default) into the test's folder and return its path."""

    def write(text: str, name: str = "mapping.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
