"""Dates in the forms local data uses, to ISO 8601 ``YYYY-MM-DD`` (GB/T 7408.1)."""

from __future__ import annotations

import datetime as _dt
import re

from adapters.normalise._errors import NormaliseError
from adapters.normalise._text import halfwidth

__all__ = ["normalise_date", "parse_date"]

# 2020-01-02, 2020-1-2, 2020/1/2, 2020.01.02, 2020年1月2日, optionally followed by a
# time (which is dropped): "2020-01-02 08:30", "2020-01-02T08:30:00+08:00".
_SEPARATED = re.compile(
    r"([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?"
    r"(?:[ T][0-9]{1,2}[:时][0-9]{1,2}(?:[:分][0-9]{1,2}(?:\.[0-9]+)?秒?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
    re.ASCII,
)
# 20200102 (basic form), optionally followed by a basic-form time.
_BASIC = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T?[0-9]{4,6})?", re.ASCII)
_MIN_YEAR = 1000


def parse_date(value: str) -> _dt.date:
    """Parse one date string; raise :class:`NormaliseError` when it is not a calendar date."""
    return _dt.date(*_parts(value))


def _parts(value: str) -> tuple[int, int, int]:
    """Year, month and day of a date string in a known form, checked against the calendar."""
    text = value if value.isascii() else halfwidth(value)
    match = _SEPARATED.fullmatch(text) or _BASIC.fullmatch(text)
    if match is None:
        text = text.strip()
        match = _SEPARATED.fullmatch(text) or _BASIC.fullmatch(text)
    if match is None:
        raise NormaliseError(
            "date",
            f"not a date in a known form (2020-01-02, 20200102, 2020年1月2日, 2020/1/2, 2020.01.02): {value!r}",
            f"无法识别的日期格式（可用 2020-01-02、20200102、2020年1月2日、2020/1/2、2020.01.02）：{value}",
        )
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    if _valid(year, month, day):
        return year, month, day
    if year < _MIN_YEAR:
        raise NormaliseError("date", f"year {year} out of range in {value!r}", f"年份超出范围：{value}")
    try:
        _dt.date(year, month, day)
    except ValueError as exc:
        raise NormaliseError(
            "date", f"not a calendar date: {value!r} ({exc})", f"不是有效的日历日期：{value}"
        ) from exc
    raise AssertionError("unreachable: _valid and date() disagree")  # pragma: no cover


def normalise_date(value: str) -> str:
    """Return ``YYYY-MM-DD``; fast paths for the ISO and basic forms, the general parser otherwise."""
    n = len(value)
    if n == 10 and value[4] == "-" and value[5:] in _ISO_MONTH_DAYS:
        year = value[:4]
        if year.isdigit() and year.isascii() and year >= "1000" and (value[5:] != "02-29" or _leap(int(year))):
            return value
    elif n == 8 and value[4:] in _BASIC_MONTH_DAYS:
        year = value[:4]
        if year.isdigit() and year.isascii() and year >= "1000" and (value[4:] != "0229" or _leap(int(year))):
            return f"{year}-{value[4:6]}-{value[6:]}"
    year_, month, day = _parts(value)
    return f"{year_:04d}-{month:02d}-{day:02d}"


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


_ISO_MONTH_DAYS = frozenset(f"{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, _DAYS[m] + 1))
_BASIC_MONTH_DAYS = frozenset(f"{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, _DAYS[m] + 1))


def _valid(year: int, month: int, day: int) -> bool:
    if year < _MIN_YEAR or not 1 <= month <= 12 or not 1 <= day <= _DAYS[month]:
        return False
    return month != 2 or day < 29 or (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))

