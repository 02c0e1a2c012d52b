"""The standard's fast validator, as the mapping engine uses it (node.validation, docs/dev/NOTES.md API)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from node.errors import ConfigError

__all__ = ["Validator", "Report", "Violation", "load_validator", "validate_batch"]

log = logging.getLogger(__name__)


class Violation(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def constraint(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def message_zh(self) -> str: ...
    @property
    def message_en(self) -> str: ...


class Report(Protocol):
    @property
    def valid(self) -> bool: ...
    @property
    def violations(self) -> Sequence[Violation]: ...


class Validator(Protocol):
    def validate(self, record: Any, record_type: str | None = None) -> Report: ...


def load_validator(standard_dir: str | Path | None = None) -> Validator:
    """``node.validation.get_validator("fast"[, standard_dir=...])``."""
    try:
        from node.validation import get_validator
    except ImportError as exc:
        raise ConfigError(
            f"the standard's validator (node.validation) cannot be loaded: {exc}; "
            "map with --no-validate to write unvalidated records"
        ) from exc
    if standard_dir is None:
        found: Validator = get_validator("fast")
    else:
        found = get_validator("fast", standard_dir=standard_dir)
    return found


def validate_batch(validator: Validator, records: Iterable[dict[str, Any]], record_type: str) -> list[Report]:
    """Reports in record order: ``validate_many`` when the validator has it, else one by one."""
    many = getattr(validator, "validate_many", None)
    if many is not None:
        return list(many(records, record_type))
    return [validator.validate(r, record_type) for r in records]
