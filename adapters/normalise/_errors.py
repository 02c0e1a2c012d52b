"""The one exception a normaliser raises for a value it cannot bring onto the standard."""

from __future__ import annotations

__all__ = ["NormaliseError"]


class NormaliseError(ValueError):
    """A value cannot be normalised.

    ``constraint`` is a short machine-readable code (``date``, ``identity-number``,
    ``division``, ``amount``, ``crosswalk`` ...); ``reason`` and ``reason_zh`` say
    what is wrong in English and Chinese. The mapping engine turns it into a
    reject naming the row and the column.
    """

    def __init__(self, constraint: str, reason: str, reason_zh: str) -> None:
        super().__init__(reason)
        self.constraint = constraint
        self.reason = reason
        self.reason_zh = reason_zh
