"""What a mapping run produced, in numbers that add up: rows in = rows out + rows rejected."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Reject", "MapReport", "REJECT_COLUMNS"]

REJECT_COLUMNS = ("row", "column", "value", "property", "stage", "constraint", "reason", "reason_zh")


@dataclass(frozen=True, slots=True)
class Reject:
    """One reason one input row was rejected (a row may have several)."""

    row: int
    column: str
    value: str
    property: str
    stage: str  # read | mapping | id | validation
    constraint: str
    reason: str
    reason_zh: str

    def as_row(self) -> list[str]:
        return [str(self.row), self.column, self.value, self.property, self.stage, self.constraint,
                self.reason, self.reason_zh]  # fmt: skip


@dataclass
class MapReport:
    mapping: str
    input: str
    output: str
    rejects: str
    type: str
    validated: bool
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    reject_entries: int = 0
    warnings: int = 0
    elapsed_s: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)
    standard: str | None = None
    by_constraint: Counter[str] = field(default_factory=Counter)
    by_column: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_rejected

    @property
    def exit_code(self) -> int:
        return 0 if self.rows_rejected == 0 else 1

    def to_dict(self) -> dict[str, Any]:
        rate = self.rows_in / self.elapsed_s if self.elapsed_s > 0 else None
        return {
            "mapping": self.mapping,
            "input": self.input,
            "output": self.output,
            "rejects": self.rejects,
            "type": self.type,
            "validated": self.validated,
            "standard": self.standard,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_rejected": self.rows_rejected,
            "balanced": self.balanced,
            "reject_entries": self.reject_entries,
            "warnings": self.warnings,
            "rejects_by_stage": dict(sorted(self.by_stage.items())),
            "rejects_by_constraint": dict(sorted(self.by_constraint.items())),
            "rejects_by_column": dict(sorted(self.by_column.items())),
            "source": self.source,
            "elapsed_s": round(self.elapsed_s, 3),
            "rows_per_s": round(rate) if rate is not None else None,
        }
