"""Validation results: what both engines report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Violation", "RecordReport", "valid_report"]


@dataclass(frozen=True, slots=True, order=True)
class Violation:
    path: str
    constraint: str
    severity: str
    message_zh: str
    message_en: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "constraint": self.constraint,
            "severity": self.severity,
            "message": {"zh": self.message_zh, "en": self.message_en},
        }

    @property
    def key(self) -> tuple[str, str]:
        return (self.path, self.constraint)


@dataclass(frozen=True, slots=True)
class RecordReport:
    """The verdict on one record.

    ``valid`` is False when any result has severity Violation (warnings and
    infos are reported but do not make a record invalid), or when the record
    could not be validated at all (``error`` says why: not an object, unknown type).
    """

    id: str | None
    type: str | None
    valid: bool
    violations: tuple[Violation, ...] = field(default=())
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "valid": self.valid,
            "violations": [v.to_json() for v in self.violations],
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @property
    def keys(self) -> set[tuple[str, str]]:
        return {v.key for v in self.violations}

    def summary(self) -> str:
        if self.error:
            return self.error
        return "; ".join(f"{v.path}: {v.constraint}" for v in self.violations if v.severity == "Violation")


_new = object.__new__
_set_id, _set_type, _set_valid, _set_violations, _set_error = (
    RecordReport.__dict__[name].__set__ for name in ("id", "type", "valid", "violations", "error")
)


def valid_report(rid: str | None, record_type: str | None) -> RecordReport:
    """``RecordReport(rid, record_type, True)``, made without the frozen dataclass's ``__init__``
    (five ``object.__setattr__`` calls): the slots are set directly. The report of every valid
    record is made here, so it is worth the half microsecond."""
    report: RecordReport = _new(RecordReport)
    _set_id(report, rid)
    _set_type(report, record_type)
    _set_valid(report, True)
    _set_violations(report, ())
    _set_error(report, None)
    return report
