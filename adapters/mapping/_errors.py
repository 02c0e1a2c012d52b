"""The error a field raises for one row: what the rejects file reports."""

from __future__ import annotations

__all__ = ["FieldError"]


class FieldError(Exception):
    """A property could not be made from a row: names the column, the value and the reason."""

    def __init__(self, column: str, value: str, constraint: str, reason: str, reason_zh: str) -> None:
        super().__init__(reason)
        self.column = column
        self.value = value
        self.constraint = constraint
        self.reason = reason
        self.reason_zh = reason_zh
