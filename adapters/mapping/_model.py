"""The parsed form of a mapping file (frozen: a mapping is loaded once and compiled once)."""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.crosswalk import Crosswalk
from adapters.readers import ReaderOptions

__all__ = ["RECORD_TYPES", "NormaliserRef", "FieldSpec", "IdSpec", "Mapping"]

# The standard's record types (docs/dev/NOTES.md, "record JSON form").
RECORD_TYPES = ("Person", "LegalEntity", "SocialInsuranceEnrollment", "ElectronicLicense")


@dataclass(frozen=True)
class NormaliserRef:
    name: str
    options: MappingABC[str, Any]
    key: str  # where it is in the mapping file, for messages


@dataclass(frozen=True)
class FieldSpec:
    """How one property of the target record is made from a source row."""

    property: str
    key: str
    columns: tuple[str, ...] = ()  # one column, or several to concatenate
    value: str | None = None  # a constant instead of columns
    join: str = ""  # separator for several columns
    split: str | None = None  # split the (single) column on this separator ...
    index: int = 0  # ... and take this part (0-based; negative counts from the end)
    normalise: tuple[NormaliserRef, ...] = ()
    crosswalk: str | None = None  # name in Mapping.crosswalks, applied after the normalisers
    required: bool = False
    default: str | None = None
    fallback: FieldSpec | None = None  # used when this one yields no value


@dataclass(frozen=True)
class IdSpec:
    """How the record id is derived: exactly one of template, hash, property."""

    template: str | None = None  # "le-{creditCode}"; placeholders are properties or {row}
    hash: tuple[str, ...] = ()  # properties hashed (SHA-256, hex) after prefix
    property: str | None = None  # a property's value, after prefix
    prefix: str = ""
    length: int = 20  # hex characters kept of a hash
    salt: str = ""
    duplicates: str = "reject"  # or "keep"


@dataclass(frozen=True)
class Mapping:
    type: str
    id: IdSpec
    fields: tuple[FieldSpec, ...]
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    crosswalks: MappingABC[str, Crosswalk] = field(default_factory=dict)
    null_values: frozenset[str] = frozenset({""})
    include_type: bool = True
    description: str = ""
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "<mapping>"

    def uses_normaliser(self, name: str) -> bool:
        def walk(spec: FieldSpec | None) -> bool:
            while spec is not None:
                if any(n.name == name for n in spec.normalise):
                    return True
                spec = spec.fallback
            return False

        return any(walk(f) for f in self.fields)
