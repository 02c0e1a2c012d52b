"""Every example beside the standard, through both engines.

Valid examples are valid; each invalid example breaks the constraint its file
name gives (``<path>__<Constraint>.json``); the engines report the same set of
(path, constraint) pairs for every example.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.standard._paths import ontology_dir
from node.validation import get_validator

EXAMPLES = ontology_dir() / "examples"
TYPES = ("Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense")


def _cases(kind: str) -> list[tuple[str, Path]]:
    out = []
    for t in TYPES:
        for p in sorted((EXAMPLES / t / kind).glob("*.json")):
            out.append((t, p))
    return out


def test_every_type_has_valid_and_invalid_examples() -> None:
    for t in TYPES:
        assert list((EXAMPLES / t / "valid").glob("*.json")), t
        assert list((EXAMPLES / t / "invalid").glob("*.json")), t


@pytest.mark.parametrize(("record_type", "path"), _cases("valid"), ids=lambda x: getattr(x, "stem", x))
def test_valid_example(record_type: str, path: Path, full_standard: Path) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    fast = get_validator("fast", full_standard).validate(record, record_type)
    ref = get_validator("shacl", full_standard).validate(record, record_type)
    assert fast.valid, fast.violations
    assert ref.valid, ref.violations
    assert fast.keys == ref.keys


@pytest.mark.parametrize(("record_type", "path"), _cases("invalid"), ids=lambda x: getattr(x, "stem", x))
def test_invalid_example(record_type: str, path: Path, full_standard: Path) -> None:
    field, constraint = path.stem.split("__")
    record = json.loads(path.read_text(encoding="utf-8"))
    fast = get_validator("fast", full_standard).validate(record, record_type)
    ref = get_validator("shacl", full_standard).validate(record, record_type)
    assert not fast.valid
    assert not ref.valid
    assert (field, constraint) in fast.keys, fast.violations
    assert fast.keys == ref.keys
    for v in fast.violations:
        assert v.message_zh and v.message_en, v


def test_warning_does_not_make_a_record_invalid(full_standard: Path) -> None:
    record = json.loads((EXAMPLES / "Person" / "valid" / "sex-parity-warning.json").read_text(encoding="utf-8"))
    for engine in ("fast", "shacl"):
        rep = get_validator(engine, full_standard).validate(record, "Person")
        assert rep.valid
        assert [(v.path, v.constraint, v.severity) for v in rep.violations] == [("sex", "SexMatchesId", "Warning")]


def test_shipped_standard_knows_provinces_only() -> None:
    record = json.loads((EXAMPLES / "Person" / "valid" / "beijing-chaoyang.json").read_text(encoding="utf-8"))
    v = get_validator("fast")
    assert ("householdDivision", "Node") in v.validate(record, "Person").keys
    assert v.validate({**record, "householdDivision": "110000"}, "Person").valid
