"""Typed cell values (Excel, SQL) to the text the mapping engine works on."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

__all__ = ["cell_text"]


def cell_text(value: Any) -> str | None:
    """None stays None; dates become ISO dates; numbers never go through a lossy float format."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)  # shortest round-trip form, then read as Decimal downstream
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, _dt.datetime):
        if value.time() == _dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("binary data")
    return str(value)
